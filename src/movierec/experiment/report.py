"""The self-contained HTML report of `movierec compare`, with its matplotlib plots.

The page is rendered from the Jinja2 template ``templates/report.html.j2`` (autoescaped);
the plots are PNG files embedded as data URIs, so the one file is the whole report.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from movierec.data.dataset import Dataset  # noqa: E402
from movierec.evaluation.evaluator import EvalResult  # noqa: E402
from movierec.models.base import Recommender  # noqa: E402
from movierec.split import Split  # noqa: E402

#: Every section the report has, by HTML id (the browser test checks them all).
SECTIONS = (
    "summary", "data", "split", "tuning", "drop", "models", "significance", "buckets",
    "plots", "production", "skipped",
)  # fmt: skip
WELL_KNOWN = ("star wars", "empire strikes back", "return of the jedi", "toy story", "godfather")


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _errorbar_curve(ax: Any, test: EvalResult, metric: str, models: list[str]) -> None:
    for label in models:
        s = test.summary[label]
        ks = [k for k in test.k if f"{metric}@{k}" in s]
        y = [s[f"{metric}@{k}"] for k in ks]
        e = [s.get(f"{metric}@{k}_se", 0.0) for k in ks]
        ax.errorbar(ks, y, yerr=e, marker="o", capsize=3, label=label)
    ax.set_xlabel("K")
    ax.set_ylabel(f"{metric}@K")
    ax.legend(fontsize=7, ncol=2)


def plot_all(
    folder: Path,
    results: dict[str, Any],
    ds: Dataset,
    split: Split,
    fitted: dict[str, Recommender],
    test: EvalResult,
    curve: pl.DataFrame | None,
) -> list[tuple[str, Path, str]]:
    """Write every plot as PNG into ``folder/plots``; returns (title, path, one-line caption)."""
    out = folder / "plots"
    out.mkdir(parents=True, exist_ok=True)
    plots: list[tuple[str, Path, str]] = []
    order = results["order"]
    metric = results["significance_metric"]

    fig, ax = plt.subplots(figsize=(5, 3))
    vals, counts = np.unique(ds.ratings, return_counts=True)
    ax.bar([f"{v:g}" for v in vals], counts, color="#4c72b0")
    ax.set_xlabel("rating")
    ax.set_ylabel("ratings")
    plots.append(
        (
            "Rating distribution",
            _save(fig, out / "ratings.png"),
            "How often each rating value was given in the whole data set.",
        )
    )

    fig, ax = plt.subplots(figsize=(5, 3))
    per_movie = np.sort(ds.item_counts())[::-1]
    ax.plot(np.arange(1, per_movie.size + 1), per_movie)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("movie rank by ratings")
    ax.set_ylabel("ratings")
    plots.append(
        (
            "Ratings per movie",
            _save(fig, out / "long_tail.png"),
            "The long tail: a few movies get most ratings, most get a handful (log-log).",
        )
    )

    fig, ax = plt.subplots(figsize=(6, 3.2))
    y = [test.summary[m].get(metric, math.nan) for m in order]
    e = [test.summary[m].get(f"{metric}_se", 0.0) for m in order]
    ax.bar(order, y, yerr=e, capsize=3, color="#55a868")
    ax.set_ylabel(metric)
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    plots.append(
        (
            f"{metric} per model",
            _save(fig, out / "metric_bars.png"),
            f"Test {metric} (held out) of every model with standard-error bars, in validation order.",
        )
    )

    for name in ("ndcg", "hit"):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        _errorbar_curve(ax, test, name, order[:8])
        plots.append(
            (
                f"{name}@K",
                _save(fig, out / f"{name}_at_k.png"),
                f"Test {name}@K for K in {list(test.k)} (the top models on validation), with standard errors.",
            )
        )

    b = pl.DataFrame(results["buckets"])
    if b.height:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        buckets = [x for x in ("cold", "medium", "warm") if x in set(b["bucket"].to_list())]
        width = 0.8 / max(len(order), 1)
        for j, label in enumerate(order):
            sub = b.filter(pl.col("model") == label)
            means = [
                sub.filter(pl.col("bucket") == x)["mean"].to_list() or [math.nan] for x in buckets
            ]
            ax.bar(np.arange(len(buckets)) + j * width, [m[0] for m in means], width, label=label)
        ax.set_xticks(np.arange(len(buckets)) + 0.4 - width / 2, buckets)
        ax.set_ylabel(metric)
        ax.legend(fontsize=6, ncol=3)
        plots.append(
            (
                "Per-activity buckets",
                _save(fig, out / "buckets.png"),
                f"Test {metric} for users with few (cold), some (medium) and many (warm) training ratings.",
            )
        )

    if curve is not None and curve.height:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        x = curve["size"].to_numpy() * 100
        for part in ("train", "validation"):
            col = f"{part}_{metric}"
            ax.errorbar(
                x,
                curve[col].to_numpy(),
                yerr=curve[f"{col}_se"].to_numpy(),
                marker="o",
                capsize=3,
                label=part,
            )
        ax.set_xscale("log")
        ax.set_xlabel("% of training data")
        ax.set_ylabel(metric)
        ax.legend()
        plots.append(
            (
                f"Learning curve of {results['best']}",
                _save(fig, out / "learning_curve.png"),
                "Train vs validation metric as the best model sees more training data.",
            )
        )

    norms = {}
    for label, m in fitted.items():
        try:
            v = np.asarray(m.item_vectors(), dtype=np.float64)
        except Exception:  # models without item vectors have no factor norms
            continue
        if v.ndim == 2 and v.shape[1] <= 1024:
            norms[label] = np.linalg.norm(v, axis=1)
    if norms:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for label, n in list(norms.items())[:6]:
            ax.hist(n, bins=40, histtype="step", label=label)
        ax.set_xlabel("item factor norm")
        ax.set_ylabel("items")
        ax.legend(fontsize=7)
        plots.append(
            (
                "Factor norms",
                _save(fig, out / "factor_norms.png"),
                "Distribution of item factor norms of the factor models (popular items tend to be longer).",
            )
        )

    content = next((m for m in fitted.values() if hasattr(m, "top_terms")), None)
    picks = _well_known(ds, split.train)
    if content is not None and picks:
        terms: dict[str, dict[str, float]] = {}
        for i in picks:
            terms[_title(ds, i)] = dict(content.top_terms(int(i), 6))
        vocab = sorted({t for d in terms.values() for t in d})[:30]
        mat = np.array([[d.get(t, 0.0) for t in vocab] for d in terms.values()])
        fig, ax = plt.subplots(figsize=(max(5, len(vocab) * 0.3), 0.5 * len(terms) + 1.5))
        ax.imshow(mat, aspect="auto", cmap="viridis")
        ax.set_xticks(range(len(vocab)), vocab, rotation=70, fontsize=7)
        ax.set_yticks(range(len(terms)), list(terms), fontsize=7)
        plots.append(
            (
                "TF-IDF top terms",
                _save(fig, out / "tfidf_terms.png"),
                "The highest TF-IDF terms (title, genres, tags) of a few well-known movies.",
            )
        )

        cf = _cf_model(fitted)
        if cf is not None and len(picks) >= 3:
            items = np.asarray(picks, dtype=np.int64)
            sim = 0.5 * _cos(cf, items) + 0.5 * _cos(content, items)
            from scipy.cluster.hierarchy import leaves_list, linkage

            order_idx = leaves_list(linkage(1 - sim[np.triu_indices(len(items), 1)], "average"))
            sim = sim[np.ix_(order_idx, order_idx)]
            names = [_title(ds, items[j]) for j in order_idx]
            fig, ax = plt.subplots(figsize=(6, 5))
            im = ax.imshow(sim, cmap="magma", vmin=0, vmax=1)
            ax.set_xticks(range(len(names)), names, rotation=70, fontsize=6)
            ax.set_yticks(range(len(names)), names, fontsize=6)
            fig.colorbar(im)
            plots.append(
                (
                    "Hybrid item similarity",
                    _save(fig, out / "hybrid_similarity.png"),
                    "Mean of CF and content cosine similarity between a few movies, clustered (average linkage).",
                )
            )
    return plots


def _title(ds: Dataset, i: int) -> str:
    row = ds.item_table.row(int(i), named=True)
    return f"{row['title']} ({row['year']})" if row["year"] else row["title"]


def _well_known(ds: Dataset, train: Dataset, n: int = 8) -> list[int]:
    """Item indices of a few famous movies where present, topped up by the most rated."""
    titles = [t.lower() for t in ds.item_table["title"].to_list()]
    counts = train.item_counts()
    picks: list[int] = []
    for key in WELL_KNOWN:
        hits = [i for i, t in enumerate(titles) if key in t and counts[i] > 0]
        picks += sorted(hits, key=lambda i: -counts[i])[:2]
    for i in np.argsort(-counts):
        if len(picks) >= n:
            break
        if int(i) not in picks:
            picks.append(int(i))
    return list(dict.fromkeys(picks))[:n]


def _cf_model(fitted: dict[str, Recommender]) -> Recommender | None:
    for m in fitted.values():
        for sub in getattr(m, "models_", [m]):
            try:
                sub.item_vectors()
                return sub
            except Exception:  # not a factor model
                continue
    return None


def _cos(model: Recommender, items: np.ndarray) -> np.ndarray:
    s = np.asarray(model._similar_scores(items), dtype=np.float64)[:, items]
    return np.clip(s, 0, 1)


# -- HTML ------------------------------------------------------------------------------------
BUCKET_NAMES = ("cold", "medium", "warm")
MODEL_METRICS = ("ndcg", "recall", "precision", "map", "mrr", "hit", "coverage", "novelty",
                 "diversity")  # fmt: skip


def _num(v: Any, digits: int = 4) -> str:
    """A table cell: 4 decimals, thousands separators for large numbers and ints, "-" for none."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _pm(s: dict[str, Any], key: str) -> str:
    v, se = s.get(key), s.get(f"{key}_se")
    if isinstance(v, float) and isinstance(se, float):
        return f"{v:.4f} ± {se:.4f}"
    return _num(v)


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("movierec.experiment", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    return env


def context(results: dict[str, Any], plots: list[tuple[str, Path, str]]) -> dict[str, Any]:
    """What the template shows: ``results`` plus the tables' rows, already formatted."""
    order = results["order"]
    primary = results["primary"]
    metric = results["significance_metric"]
    k = metric.split("@")[1] if "@" in metric else "10"
    test = results["test"]["summary"]
    val = results["validation"]["summary"]
    cols = [f"{c}@{k}" for c in MODEL_METRICS]
    if any("rmse" in test[m] for m in order):
        cols += ["rmse", "mae"]
    models = [
        {
            "label": m,
            "best": m == results["best"],
            "validation": _pm(val[m], primary),
            # the standard error beside the primary metric only (all of them: results.json)
            "test": [_pm(test[m], c) if c == primary else _num(test[m].get(c)) for c in cols],
            "fallback": _num(int(test[m].get("users_fallback", 0))),
            "fit_s": "shared" if test[m].get("fit_s") is None else _num(test[m]["fit_s"], 2),
        }
        for m in order
    ]
    sig = [
        {
            "pair": f"{results['best']} vs {m}",
            "n": _num(d.get("n")),
            "diff": _num(d.get("mean_diff")),
            "t": _num(d.get("t_pvalue")),
            "t_holm": _num(d.get("t_pvalue_holm")),
            "w": _num(d.get("wilcoxon_pvalue")),
            "w_holm": _num(d.get("wilcoxon_pvalue_holm")),
            "significant": "yes" if (d.get("t_pvalue_holm") or 1.0) < 0.05 else "no",
        }
        for m, d in results["significance"].items()
    ]
    cells: dict[tuple[str, str], str] = {}
    for b in results["buckets"]:
        mean, se, n = b.get("mean"), b.get("se"), b.get("n")
        txt = _num(mean) if not isinstance(se, float) else f"{mean:.4f} ± {se:.4f}"
        cells[(b["model"], b["bucket"])] = f"{txt} (n={n:,})" if mean is not None else "-"
    present = {b["bucket"] for b in results["buckets"]}
    buckets = [x for x in BUCKET_NAMES if x in present]
    lo, hi = results["test"]["bucket_edges"]
    bucket_heads = {
        "cold": f"cold (< {lo})",
        "medium": f"medium ({lo}-{hi - 1})",
        "warm": f"warm (≥ {hi})",
    }
    split = results["split"]
    return {
        "r": results,
        "st": results["dataset"],
        "k": k,
        "cols": cols,
        "models": models,
        "sig": sig,
        "bucket_cols": [bucket_heads[b] for b in buckets],
        "bucket_rows": [[m, *(cells.get((m, b), "-") for b in buckets)] for m in order],
        "split_rows": [
            [
                p,
                d["ratings"],
                d["users"],
                d["movies"],
                d["cold_users"],
                d["cold_movies"],
                d["mean_rating"],
            ]
            for p, d in split["parts"].items()
        ],
        "production": [
            [
                m,
                p["artifact_mb"],
                p["latency_ms_median"],
                p["latency_ms_p99"],
                p.get("latency_users"),
                p["throughput_users_s"],
            ]
            for m, p in results["production"].items()
        ],
        "tuned": results.get("tuned") or {},
        "tuning": results.get("tuning") or {},
        "hist": ", ".join(f"{a}: {b:,}" for a, b in results["dataset"]["rating_histogram"].items()),
        "plots": [
            {"title": t, "caption": c, "alt": p.stem, "src": _data_uri(p)} for t, p, c in plots
        ],
    }


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def render(results: dict[str, Any], plots: list[tuple[str, Path, str]]) -> str:
    """The report page (images embedded)."""
    return _env().get_template("report.html.j2").render(**context(results, plots))


def write(
    folder: Path,
    results: dict[str, Any],
    ds: Dataset,
    split: Split,
    fitted: dict[str, Recommender],
    test: EvalResult,
    curve: pl.DataFrame | None,
) -> Path:
    """Plot everything and write ``folder/report.html``."""
    plots = plot_all(folder, results, ds, split, fitted, test, curve)
    results["plots"] = [
        {"title": t, "file": str(p.relative_to(folder)), "caption": c} for t, p, c in plots
    ]
    path = folder / "report.html"
    path.write_text(render(results, plots), encoding="utf-8")  # inside the run's staging folder
    return path
