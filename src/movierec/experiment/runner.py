"""`movierec compare`: train every configured model, evaluate it, and write the report.

Everything is written into a staging folder beside the output folder and moved into place
only when the whole run has succeeded, so a run that fails halfway leaves no report that
looks complete (and the previous complete run, if any, stays as it was).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from movierec.errors import ConfigError
from movierec.evaluation.evaluator import EvalResult, _clean, evaluate
from movierec.experiment.config import ExperimentConfig
from movierec.models.base import Recommender

RATING_METRICS = ("rmse", "mae")


@dataclass
class CompareResult:
    """Where the run wrote its files, the printed table and every number of the report."""

    out: Path
    table: str
    results: dict[str, Any]


class _Progress:
    """Model and epoch on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.label = ""

    def say(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{text}")
            sys.stderr.flush()

    def epoch(self, epoch: int, model: Recommender) -> bool:
        self.say(f"fitting {self.label}: epoch {epoch + 1}")
        return False

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _better_first(primary: str) -> bool:
    """True when larger values of ``primary`` are better."""
    return primary.split("@")[0] not in RATING_METRICS


def _ranked(summary: dict[str, dict[str, float]], primary: str) -> list[str]:
    desc = _better_first(primary)

    def key(label: str) -> float:
        v = summary[label].get(primary, math.nan)
        if v is None or math.isnan(v):
            return math.inf
        return -v if desc else v

    return sorted(summary, key=key)


def production_stats(
    model: Recommender, artifact: Path, users: np.ndarray, k: int, seed: int
) -> dict[str, float]:
    """Artifact size, single-user recommend latency (median, p99 over up to 1,000 users)
    and batch throughput (users per second), measured here."""
    size = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
    rng = np.random.default_rng(seed)
    sample = rng.choice(users, size=min(1000, users.size), replace=False)
    model.recommend(sample[:1], k=k)  # warm caches and compiled kernels
    lat = []
    for u in sample:
        t = time.perf_counter()
        model.recommend([u], k=k)
        lat.append(time.perf_counter() - t)
    batch = users[: min(users.size, 20000)]
    t = time.perf_counter()
    model.recommend(batch, k=k)
    thr = batch.size / max(time.perf_counter() - t, 1e-9)
    return {
        "artifact_mb": size / 2**20,
        "latency_ms_median": float(np.median(lat) * 1000),
        "latency_ms_p99": float(np.percentile(lat, 99) * 1000),
        "throughput_users_s": float(thr),
        "latency_users": int(sample.size),
    }


def _fit_all(
    cfg: ExperimentConfig, train: Any, progress: _Progress
) -> tuple[dict[str, Recommender], dict[str, float], dict[str, str]]:
    fitted: dict[str, Recommender] = {}
    fit_s: dict[str, float] = {}
    skipped: dict[str, str] = {}
    for label, spec in cfg.models.items():
        if spec.optional and not spec.available():
            skipped[label] = f"{spec.model} is not installed (optional)"
            continue
        model = cfg.build_model(label)
        progress.label = label
        progress.say(f"fitting {label}")
        t = time.perf_counter()
        try:
            model.fit(train, callback=progress.epoch)
        except (ConfigError, MemoryError) as e:
            # e.g. EASE on a catalogue too large for its dense matrix: stated, not hidden
            skipped[label] = str(e) or type(e).__name__
            continue
        fit_s[label] = time.perf_counter() - t
        fitted[label] = model
    progress.done()
    if not fitted:
        raise ConfigError(
            "no model could be fitted: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    return fitted, fit_s, skipped


def _significance(res: EvalResult, best: str, metric: str) -> dict[str, Any]:
    out = {}
    for label in res.models:
        if label != best:
            out[label] = res.compare(best, label, metric=metric)
    return out


def compare(
    cfg: ExperimentConfig,
    out: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    track: str | bool | None = None,
    progress: bool = True,
) -> CompareResult:
    """Run the experiment of ``cfg`` and write report.html, results.json, per_user.parquet,
    plots and model artifacts into the output folder.

    Parameters
    ----------
    cfg : ExperimentConfig
    out : path, optional
        Output folder (overrides ``cfg.output``).
    data : path, optional
        Folder of MovieLens files to use instead of ``cfg.dataset`` (overrides ``cfg.data``).
    track : str or bool, optional
        Log to MLflow: True for the default sqlite URI in the output folder, or a URI.
    progress : bool
        Show model and epoch on a terminal.
    """
    from movierec import artifacts
    from movierec.evaluation.analysis import learning_curve
    from movierec.experiment import report

    t_start = time.perf_counter()
    if data is not None:
        cfg = cfg.model_copy(update={"data": Path(data)})
    out = Path(out if out is not None else cfg.output).expanduser()
    prog = _Progress(progress)
    prog.say("loading data")
    ds = cfg.load_dataset()
    split = cfg.make_split(ds)
    fitted, fit_s, skipped = _fit_all(cfg, split.train, prog)

    m = cfg.metrics
    common = {"k": m.k, "threshold": m.threshold, "fit": False, "bucket_edges": tuple(cfg.buckets)}
    prog.say("evaluating on test")
    test = evaluate(fitted, split, part="test", **common)
    for label, s in fit_s.items():
        test.summary[label]["fit_s"] = s
    primary = m.primary
    order = _ranked(test.summary, primary)
    best = order[0]
    val = None
    if split.validation.n_ratings and np.any(split.validation.ratings >= m.threshold):
        # the report needs validation only for the best model's validation-to-test drop
        prog.say(f"evaluating {best} on validation")
        val = evaluate({best: fitted[best]}, split, part="validation", **common)
    prog.done()
    per_user_metric = primary if "@" in primary else f"ndcg@{test.primary_k}"

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    stage.chmod(0o755)
    try:
        production = {}
        known = np.flatnonzero(split.train.user_counts() > 0)
        for label, model in fitted.items():
            prog.say(f"saving and timing {label}")
            path = artifacts.save(
                model, stage / "models" / label, train=split.train, extra={"label": label}
            )
            production[label] = production_stats(model, path, known, test.primary_k, cfg.seed)
        curve = None
        if cfg.learning_curve.enabled and val is not None:
            prog.say(f"learning curve of {best}")
            curve = learning_curve(
                fitted[best],
                split,
                sizes=tuple(cfg.learning_curve.sizes),
                metric=per_user_metric,
                seed=cfg.seed,
                threshold=m.threshold,
            )
        prog.done()
        drop = None
        if val is not None and primary in val.summary[best]:
            v, t = val.summary[best][primary], test.summary[best][primary]
            drop = {"model": best, "metric": primary, "validation": v, "test": t, "drop": v - t}
        results = {
            "dataset": ds.stats(),
            "synthetic": ds.synthetic,
            "split": split.report(),
            "config": json.loads(cfg.model_dump_json()),
            "primary": primary,
            "order": order,
            "best": best,
            "test": test.to_json(),
            "validation": None if val is None else val.to_json(),
            "validation_to_test": drop,
            "significance": _significance(test, best, per_user_metric),
            "significance_metric": per_user_metric,
            "buckets": test.buckets(per_user_metric).to_dicts(),
            "learning_curve": None if curve is None else curve.to_dicts(),
            "production": production,
            "skipped": skipped,
            "seconds": None,
        }
        per_user = test.per_user.with_columns(pl.lit("test").alias("part"))
        if val is not None:
            per_user = pl.concat(
                [per_user, val.per_user.with_columns(pl.lit("validation").alias("part"))],
                how="diagonal",
            )
        per_user.write_parquet(stage / "per_user.parquet")
        table = test.table()
        results["seconds"] = time.perf_counter() - t_start
        results = _clean(json.loads(json.dumps(results, default=_json_default)))
        report.write(stage, results, ds, split, fitted, test, curve, table)
        (stage / "results.json").write_text(json.dumps(results, indent=1))
        _replace_dir(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if track or cfg.tracking.enabled:
        _track(cfg, track, out, results)
    return CompareResult(out=out, table=table, results=results)


def _track(
    cfg: ExperimentConfig, track: str | bool | None, out: Path, results: dict[str, Any]
) -> None:
    """Log every model's params, test metrics and timings, and the report, to MLflow."""
    from movierec.experiment.tracking import Tracker, default_uri

    uri = track if isinstance(track, str) else (cfg.tracking.uri or default_uri(out))
    tracker = Tracker(uri, cfg.tracking.experiment)
    summary = results["test"]["summary"]
    for label in results["order"]:
        s = summary[label]
        tracker.log_model_run(
            label,
            params={"model": cfg.models[label].model, **cfg.models[label].params},
            metrics={
                k: v for k, v in s.items() if isinstance(v, (int, float)) and not k.endswith("_s")
            },
            timings={
                k: v for k, v in s.items() if k.endswith("_s") and isinstance(v, (int, float))
            },
            artifacts=[out / "report.html", out / "results.json"],
            tags={"dataset": results["dataset"]["name"], "best": str(label == results["best"])},
        )


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def _replace_dir(stage: Path, out: Path) -> None:
    """Move ``stage`` to ``out``, replacing a previous run only once the new one is whole."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
