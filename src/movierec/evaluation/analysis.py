"""Analysis of per-user results: mean and standard error, activity buckets and paired
significance tests (learning curves are in :mod:`movierec.evaluation.curves`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from scipy import stats

from movierec.errors import ConfigError
from movierec.tables import text_table

if TYPE_CHECKING:
    from movierec.evaluation.evaluator import EvalResult

BUCKETS = ("cold", "medium", "warm")


def mean_se(values: Any) -> tuple[float, float]:
    """(mean, standard error of the mean) of the finite values; SE = sd (ddof 1) / sqrt(n).

    Empty input gives (NaN, NaN); a single value gives SE NaN.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return float(v.mean()), se


def bucket_labels(n_train: np.ndarray, edges: tuple[int, int] = (20, 100)) -> np.ndarray:
    """ "cold" below edges[0] training ratings, "medium" below edges[1], else "warm"."""
    lo, hi = edges
    if not 0 <= lo <= hi:
        raise ConfigError(f"bucket_edges must be two increasing counts, got {edges}")
    n = np.asarray(n_train)
    return np.array(BUCKETS, dtype=object)[(n >= lo).astype(int) + (n >= hi).astype(int)]


def bucket_table(per_user: pl.DataFrame, metric: str = "ndcg@10") -> pl.DataFrame:
    """Mean, standard error and user count of ``metric`` per model and activity bucket."""
    if metric not in per_user.columns:
        raise ConfigError(f"no metric {metric!r}; available: {_metric_columns(per_user)}")
    rows = []
    for (model, bucket), g in per_user.group_by(["model", "bucket"], maintain_order=True):
        m, se = mean_se(g[metric].to_numpy())
        rows.append({"model": model, "bucket": bucket, "mean": m, "se": se, "n": g.height})
    schema = {"model": pl.String, "bucket": pl.String, "mean": pl.Float64, "se": pl.Float64}
    out = pl.DataFrame(rows, schema={**schema, "n": pl.Int64})
    order = pl.col("bucket").replace_strict(
        {b: i for i, b in enumerate(BUCKETS)}, default=len(BUCKETS)
    )
    return out.sort([pl.col("model"), order])


def _metric_columns(per_user: pl.DataFrame) -> list[str]:
    return [c for c in per_user.columns if "@" in c]


def paired_test(a: Any, b: Any) -> dict[str, float]:
    """Paired comparison of two models' per-user values on the same users (same order).

    Returns n, mean_a, mean_b, mean_diff (a - b), its standard error, the paired t-test
    (scipy.stats.ttest_rel) and Wilcoxon signed-rank (scipy.stats.wilcoxon) statistics and
    two-sided p-values. Pairs with a NaN on either side are dropped. When every difference
    is zero the p-values are 1.
    """
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    if x.shape != y.shape:
        raise ConfigError("paired_test needs two arrays of the same length")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    d = x - y
    mean_d, se_d = mean_se(d)
    out = {
        "n": int(d.size),
        "mean_a": float(x.mean()) if x.size else float("nan"),
        "mean_b": float(y.mean()) if y.size else float("nan"),
        "mean_diff": mean_d,
        "se_diff": se_d,
        "t_stat": float("nan"),
        "t_pvalue": float("nan"),
        "wilcoxon_stat": float("nan"),
        "wilcoxon_pvalue": float("nan"),
    }
    if d.size < 2:
        return out
    if not np.any(d):
        out.update(t_stat=0.0, t_pvalue=1.0, wilcoxon_stat=0.0, wilcoxon_pvalue=1.0)
        return out
    t = stats.ttest_rel(x, y)
    w = stats.wilcoxon(x, y)
    out.update(
        t_stat=float(t.statistic),
        t_pvalue=float(t.pvalue),
        wilcoxon_stat=float(w.statistic),
        wilcoxon_pvalue=float(w.pvalue),
    )
    return out


def holm(pvalues: Any) -> np.ndarray:
    """Holm's step-down adjustment of p-values for several comparisons (family-wise error).

    The i-th smallest of m p-values becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``;
    rejecting where the adjusted p < alpha keeps the chance of any false rejection below
    alpha. NaN p-values stay NaN and do not count in m.
    """
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adj = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adj)
    return out


def _fmt(v: float, digits: int = 4) -> str:
    return "nan" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def format_buckets(result: EvalResult, metric: str | None = None) -> str:
    """Aligned text table of ``metric`` (default NDCG at the primary K) per activity bucket:
    one row per model, one column per bucket with mean ± se (n users)."""
    metric = metric or f"ndcg@{result.primary_k}"
    t = result.buckets(metric)
    edges = result.bucket_edges
    heads = {
        "cold": f"cold (<{edges[0]})",
        "medium": f"medium ({edges[0]}-{edges[1] - 1})",
        "warm": f"warm (>={edges[1]})",
    }
    models = list(dict.fromkeys(result.per_user["model"].to_list()))
    cells: dict[tuple[str, str], str] = {}
    for r in t.iter_rows(named=True):
        cells[(r["model"], r["bucket"])] = f"{_fmt(r['mean'])} ± {_fmt(r['se'])} (n={r['n']})"
    header = [f"{metric} by training activity", *(heads[b] for b in BUCKETS)]
    rows = [[m, *(cells.get((m, b), "-") for b in BUCKETS)] for m in models]
    return _align([header, *rows])


def _align(rows: list[list[str]]) -> str:
    """rows[0] is the header; the first column left-aligned, the others right-aligned."""
    return text_table(rows[1:], rows[0], right=range(1, len(rows[0])))
