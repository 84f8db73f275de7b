"""Analysis of per-user results: mean and standard error, activity buckets, paired
significance tests and learning curves."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from scipy import stats

from movierec.errors import ConfigError

if TYPE_CHECKING:
    from movierec.evaluation.evaluator import EvalResult
    from movierec.models.base import Recommender
    from movierec.split import Split

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
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def learning_curve(
    model: Recommender,
    split: Split,
    sizes: tuple[float, ...] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    metric: str = "ndcg@10",
    seed: int = 0,
    threshold: float = 4.0,
    batch_size: int = 2048,
) -> pl.DataFrame:
    """Train on growing random subsets of the training ratings and score train and validation.

    The subsets are nested: one permutation of the training ratings (seeded by ``seed``)
    and the first ``size * n`` of them. For each size, an unfitted clone of ``model`` is
    fitted on the subset; ``train_<metric>`` scores its lists against the subset's own
    relevant ratings WITHOUT excluding them (how well it fits what it saw), and
    ``validation_<metric>`` against the validation part, excluding every item of the full
    training part (the same candidate set at every size). Users absent from a small subset
    are served by the model's fallback and still counted.

    Returns
    -------
    polars DataFrame with size, n_ratings, train_<metric>, train_<metric>_se,
    validation_<metric>, validation_<metric>_se, fit_s.
    """
    from movierec.evaluation.evaluator import ACCURACY, evaluate_model

    name, _, ks = metric.partition("@")
    if not ks.isdigit() or int(ks) < 1:
        raise ConfigError(f"metric must look like 'ndcg@10', got {metric!r}")
    k = int(ks)
    if name not in ACCURACY:
        raise ConfigError(f"unknown metric {name!r} in {metric!r}; choose one of {ACCURACY}")
    if split.validation.n_ratings == 0:
        raise ConfigError("the split has no validation ratings; use one with n_val >= 1")
    sizes = tuple(float(s) for s in sizes)
    if any(not 0 < s <= 1 for s in sizes):
        raise ConfigError(f"sizes must lie in (0, 1], got {sizes}")
    train = split.train
    perm = np.random.default_rng(seed).permutation(train.n_ratings)
    rows = []
    for s in sizes:
        n = max(1, int(round(s * train.n_ratings)))
        sub = train.subset(np.sort(perm[:n]), name=f"{train.name}[{s:g}]")
        m = model.clone()
        t0 = time.perf_counter()
        m.fit(sub)
        fit_s = time.perf_counter() - t0
        row: dict[str, Any] = {"size": s, "n_ratings": n}
        for label, target, exclude in (
            ("train", sub, None),
            ("validation", split.validation, train),
        ):
            per_user, _ = evaluate_model(
                m,
                target,
                history=sub,
                exclude=exclude,
                k=(k,),
                threshold=threshold,
                batch_size=batch_size,
            )
            mean, se = mean_se(per_user[metric].to_numpy()) if per_user.height else (np.nan,) * 2
            row[f"{label}_{metric}"] = mean
            row[f"{label}_{metric}_se"] = se
        row["fit_s"] = fit_s
        rows.append(row)
    return pl.DataFrame(rows)
