"""`movierec compare`: train every configured model, choose on validation, report on test.

Every model is fitted on the training part and evaluated on validation; the best model
(and everything that depends on the choice: the validation-to-test drop, the learning
curve, the reference of the significance tests) is chosen there. Then every model is
refitted on train + validation (``refit: true``, the default: the validation ratings are
history by test time) and evaluated once on test, the held-out estimate.

Everything is written into a staging folder beside the output folder and moved into place
only when the whole run has succeeded, so a run that fails halfway leaves no report that
looks complete (and the previous complete run, if any, stays as it was).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from movierec.atomic import check_interrupt, stage_dir
from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.evaluation.analysis import _align, _fmt, holm
from movierec.evaluation.curves import learning_curve
from movierec.evaluation.evaluator import EvalResult, _clean, eta, evaluate_models
from movierec.evaluation.metrics import lower_is_better
from movierec.experiment.config import ExperimentConfig
from movierec.experiment.tuning import validation_test_rank_correlation
from movierec.models.base import Recommender
from movierec.models.hybrid import fit_shared, shared_fits
from movierec.split import Split


@dataclass
class CompareResult:
    """Where the run wrote its files, the printed table and every number of the report."""

    out: Path
    table: str
    results: dict[str, Any]


class _Progress:
    """Model, epoch and users evaluated, with the time left, on a terminal; silent otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.label = ""
        self.start = time.perf_counter()

    def say(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{text}")
            sys.stderr.flush()

    def fitting(self, label: str) -> None:
        self.label, self.start = label, time.perf_counter()

    def epoch(self, epoch: int, model: Recommender) -> bool:
        total = next(
            (
                int(v)
                for n in ("n_epochs", "iterations", "epochs")
                if isinstance(v := getattr(model, n, None), int | float) and v >= 1
            ),
            0,
        )
        of = f"/{total} {eta(self.start, epoch + 1, total)}" if total else ""
        self.say(f"fitting {self.label}: epoch {epoch + 1}{of}")
        return False

    def evaluating(self, part: str) -> Any:
        """The evaluator's progress callback for one phase (all models, one pass)."""
        start = time.perf_counter()

        def show(label: str, done: int, total: int) -> None:
            self.say(f"evaluating on {part}: {done:,}/{total:,} users {eta(start, done, total)}"
                     + (f" ({label})" if label else ""))  # fmt: skip

        return show if self.enabled else None

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _ranked(summary: dict[str, dict[str, float]], primary: str) -> list[str]:
    desc = not lower_is_better(primary)

    def key(label: str) -> float:
        v = summary[label].get(primary, math.nan)
        if v is None or math.isnan(v):
            return math.inf
        return -v if desc else v

    return sorted(summary, key=key)


def production_stats(
    model: Recommender,
    artifact: Path,
    users: np.ndarray,
    k: int,
    seed: int,
    budget_s: float = 2.0,
) -> dict[str, float]:
    """Artifact size (its own files; shared sub-models and training data are counted where
    they are stored), single-user recommend latency (median, p99 over up to 1,000 random
    users, fewer (at least 50) once ``budget_s`` seconds are spent) and batch throughput
    (users per second over batches of 1,000 users: up to 20,000, fewer (at least one
    batch) once ``budget_s`` seconds are spent), measured here."""
    size = sum(f.stat().st_size for f in artifact.rglob("*") if f.is_file())
    rng = np.random.default_rng(seed)
    sample = rng.choice(users, size=min(1000, users.size), replace=False)
    model.recommend(sample[:1], k=k)  # warm caches and compiled kernels
    lat: list[float] = []
    start = time.perf_counter()
    for u in sample:
        t = time.perf_counter()
        model.recommend([u], k=k)
        lat.append(time.perf_counter() - t)
        if len(lat) >= 50 and t - start > budget_s:
            break
    # batches of 1,000 users until 20,000 are served or ``budget_s`` seconds are spent
    done, t = 0, time.perf_counter()
    while done < min(users.size, 20000) and (done == 0 or time.perf_counter() - t < budget_s):
        model.recommend(users[done : done + 1000], k=k)
        done = min(users.size, done + 1000)
    thr = done / max(time.perf_counter() - t, 1e-9)
    return {
        "artifact_mb": size / 2**20,
        "latency_ms_median": float(np.median(lat) * 1000),
        "latency_ms_p99": float(np.percentile(lat, 99) * 1000),
        "throughput_users_s": float(thr),
        "latency_users": len(lat),
    }


def _fit_all(
    cfg: ExperimentConfig, train: Dataset, labels: list[str], progress: _Progress
) -> tuple[dict[str, Recommender], dict[str, float], dict[str, str]]:
    """Fit the models of ``labels`` on ``train``; a sub-model or model with the same class
    and params as one fitted before (EASE in ``ease`` and in the hybrids) is fitted once:
    a model that was already fitted that way gets fit_s NaN (its time is the other's)."""
    fitted: dict[str, Recommender] = {}
    fit_s: dict[str, float] = {}
    skipped: dict[str, str] = {}
    with shared_fits():
        for label in labels:
            spec = cfg.models[label]
            if spec.optional and not spec.available():
                skipped[label] = f"{spec.model} is not installed (optional)"
                continue
            progress.fitting(label)
            progress.say(f"fitting {label} on {train.name}")
            t = time.perf_counter()
            try:
                built = cfg.build_model(label)
                model = fit_shared(built, train, callback=progress.epoch)
            except (ConfigError, MemoryError) as e:
                # e.g. EASE on a catalogue too large for its dense matrix: stated, not hidden
                skipped[label] = str(e) or type(e).__name__
                continue
            fit_s[label] = time.perf_counter() - t if model is built else math.nan
            fitted[label] = model
    progress.done()
    if not fitted:
        raise ConfigError(
            "no model could be fitted: " + "; ".join(f"{k}: {v}" for k, v in skipped.items())
        )
    return fitted, fit_s, skipped


def _evaluate(
    models: dict[str, Recommender],
    target: Dataset,
    history: Dataset,
    exclude: Dataset,
    part: str,
    cfg: ExperimentConfig,
    fit_s: dict[str, float],
    progress: _Progress | None = None,
) -> EvalResult:
    """Every model on the relevant ratings of ``target``, in one pass over blocks of users;
    ``exclude``'s items are removed from each user's candidates, ``history`` gives the
    activity buckets and popularity."""
    m = cfg.metrics
    frames, summary = [], {}
    got = evaluate_models(
        models,
        target,
        history=history,
        exclude=exclude,
        k=tuple(m.k),
        threshold=m.threshold,
        bucket_edges=tuple(cfg.buckets),
        progress=None if progress is None else progress.evaluating(part),
    )
    for label, (per_user, s) in got.items():
        s["fit_s"] = fit_s.get(label, math.nan)
        frames.append(per_user)
        summary[label] = s
    return EvalResult(
        per_user=pl.concat(frames),
        summary=summary,
        k=tuple(m.k),
        threshold=float(m.threshold),
        part=part,
        bucket_edges=tuple(cfg.buckets),  # type: ignore[arg-type]
    )


def with_validation(split: Split) -> Dataset:
    """The training and validation ratings as one data set (same id maps), in (user, item)
    order: what the models know by the time of the test part."""
    tr, va = split.train, split.validation
    users = np.concatenate([tr.users, va.users])
    items = np.concatenate([tr.items, va.items])
    order = np.lexsort((items, users))
    return dataclasses.replace(
        tr,
        users=users[order],
        items=items[order],
        ratings=np.concatenate([tr.ratings, va.ratings])[order],
        timestamps=np.concatenate([tr.timestamps, va.timestamps])[order],
        name=f"{tr.name.removesuffix(':train')}:train+validation",
        notes=dict(tr.notes),
    )


def significance(res: EvalResult, best: str, metric: str) -> dict[str, Any]:
    """Paired tests of ``best`` against every other model on ``metric``, with Holm's
    adjustment across these comparisons (``t_pvalue_holm``, ``wilcoxon_pvalue_holm``)."""
    out = {label: res.compare(best, label, metric=metric) for label in res.models if label != best}
    labels = list(out)
    for test in ("t_pvalue", "wilcoxon_pvalue"):
        adj = holm([out[x][test] for x in labels])
        for x, p in zip(labels, adj, strict=True):
            out[x][f"{test}_holm"] = float(p)
    return out


def _tune(
    cfg: ExperimentConfig, split: Split, prog: _Progress
) -> tuple[ExperimentConfig, dict[str, dict[str, Any]], dict[str, Any]]:
    """Tune the models of ``cfg.tuning`` inside the training part (validation and test
    untouched) and put the chosen params into the config."""
    t = getattr(cfg, "tuning", None)
    if t is None or not getattr(t, "enabled", False):
        return cfg, {}, {}
    from movierec.experiment import tuning

    fn = getattr(tuning, "tune_for_compare", None)
    if fn is None:
        return cfg, {}, {}
    report: dict[str, Any] = {}
    chosen = fn(cfg, split, progress=prog, report=report)
    prog.done()
    models = dict(cfg.models)
    for label, params in chosen.items():
        spec = models[label]
        models[label] = spec.model_copy(update={"params": {**spec.params, **params}})
    return cfg.model_copy(update={"models": models}), chosen, report


def _table(val: EvalResult, test: EvalResult, order: list[str], primary: str) -> str:
    """The terminal table: validation primary metric (the choice), then test (held out)."""
    k = test.primary_k
    cols = [primary] + [c for c in (f"ndcg@{k}", f"recall@{k}", f"hit@{k}") if c != primary]
    if any("rmse" in s for s in test.summary.values()) and "rmse" not in cols:
        cols.append("rmse")
    head = ["model", f"validation {primary}", *(f"test {c}" for c in cols), "fallback", "fit_s"]
    rows = [head]
    for label in order:
        s, v = test.summary.get(label, {}), val.summary[label]
        cells = [label, _fmt(v.get(primary, math.nan))]
        for c in cols:
            x = s.get(c, math.nan)
            cells.append(f"{_fmt(x)} ± {_fmt(s[c + '_se'])}" if c + "_se" in s else _fmt(x))
        fit = s.get("fit_s", math.nan)
        cells += [
            str(int(s.get("users_fallback", 0))),
            "shared" if math.isnan(fit) else _fmt(fit, 2),
        ]
        rows.append(cells)
    return _align(rows)


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

    Raises
    ------
    ConfigError
        The split has no validation rating >= the relevance threshold (nothing to choose
        the best model on), or no model could be fitted.
    """
    from movierec import artifacts
    from movierec.experiment import report

    t_start = time.perf_counter()
    if data is not None:
        cfg = cfg.model_copy(update={"data": Path(data)})
    out = Path(out if out is not None else cfg.output).expanduser()
    prog = _Progress(progress)
    prog.say("loading data")
    ds = cfg.load_dataset()
    split = cfg.make_split(ds)
    m = cfg.metrics
    if not np.any(split.validation.ratings >= m.threshold):
        raise ConfigError(
            f"compare chooses the best model on validation, but the split has no validation "
            f"rating >= {m.threshold:g}: give it a validation part (split.n_val >= 1, "
            "val_fraction > 0 or a middle fraction)"
        )
    if not np.any(split.test.ratings >= m.threshold):
        raise ConfigError(f"the split has no test rating >= {m.threshold:g}; give it a test part")
    cfg, tuned, tuning_report = _tune(cfg, split, prog)

    # 1. fit on train, evaluate on validation, choose there
    fitted, fit_s, skipped = _fit_all(cfg, split.train, list(cfg.models), prog)
    prog.say("evaluating on validation")
    val = _evaluate(
        fitted, split.validation, split.train, split.train, "validation", cfg, fit_s, prog
    )
    primary = m.primary
    order = _ranked(val.summary, primary)
    best = order[0]
    best_proto = fitted[best].clone()
    # 2. the test part: refit on train + validation (or keep the train fits), test once
    trainval = with_validation(split)
    if cfg.refit:
        del fitted  # free the train-only fits before refitting
        final, refit_s, failed = _fit_all(
            cfg, trainval, [x for x in cfg.models if x in order], prog
        )
        history = trainval
    else:
        final, refit_s, failed = fitted, fit_s, {}
        history = split.train
    if best not in final:
        raise ConfigError(f"the best model on validation, {best}, failed to refit: {failed[best]}")
    skipped.update({k: f"refit on train + validation: {v}" for k, v in failed.items()})
    order = [x for x in order if x in final]
    prog.say("evaluating on test")
    test = _evaluate(final, split.test, history, trainval, "test", cfg, refit_s, prog)
    prog.done()
    per_user_metric = primary if "@" in primary else f"ndcg@{test.primary_k}"

    out.parent.mkdir(parents=True, exist_ok=True)
    stage = stage_dir(out.parent, f".{out.name}.tmp-")
    stage.chmod(0o755)
    try:
        prog.say("saving the models")
        on = "train+validation" if cfg.refit else "train"
        paths = artifacts.save_run(
            final, stage / "models", history, extra={k: {"trained_on": on} for k in final}
        )
        production = {}
        known = np.flatnonzero(history.user_counts() > 0)
        for label in order:
            prog.say(f"timing {label}")
            production[label] = production_stats(
                final[label], paths[label], known, test.primary_k, cfg.seed
            )
        curve = None
        if cfg.learning_curve.enabled:
            prog.say(f"learning curve of {best}")
            curve = learning_curve(
                best_proto,
                split,
                sizes=tuple(cfg.learning_curve.sizes),
                metric=per_user_metric,
                seed=cfg.seed,
                threshold=m.threshold,
            )
        prog.done()
        drop = None
        if primary in val.summary[best] and primary in test.summary[best]:
            v, t = val.summary[best][primary], test.summary[best][primary]
            drop = {"model": best, "metric": primary, "validation": v, "test": t, "drop": v - t}
        results = {
            "dataset": ds.stats(),
            "synthetic": ds.synthetic,
            "split": split.report(),
            "config": json.loads(cfg.model_dump_json()),
            "primary": primary,
            "chosen_on": "validation",
            "refit": bool(cfg.refit),
            "order": order,
            "best": best,
            "validation": val.to_json(),
            "test": test.to_json(),
            "validation_to_test": drop,
            "rank_correlation": validation_test_rank_correlation(
                val.summary, test.summary, primary
            ),
            "tuned": tuned,
            "tuning": tuning_report,
            "significance": significance(test, best, per_user_metric),
            "significance_metric": per_user_metric,
            "buckets": test.buckets(per_user_metric).to_dicts(),
            "learning_curve": None if curve is None else curve.to_dicts(),
            "production": production,
            "skipped": skipped,
            "seconds": None,
        }
        per_user = pl.concat(
            [
                val.per_user.with_columns(pl.lit("validation").alias("part")),
                test.per_user.with_columns(pl.lit("test").alias("part")),
            ],
            how="diagonal",
        )
        per_user.write_parquet(stage / "per_user.parquet")
        table = _table(val, test, order, primary)
        results["seconds"] = time.perf_counter() - t_start
        results = _clean(json.loads(json.dumps(results, default=_json_default)))
        report.write(stage, results, ds, split, final, test, curve)
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
    """Log every model's params, validation and test metrics and timings, and the report,
    to MLflow."""
    from movierec.experiment.tracking import Tracker, default_uri

    uri = track if isinstance(track, str) else (cfg.tracking.uri or default_uri(out))
    tracker = Tracker(uri, cfg.tracking.experiment)
    summary = results["test"]["summary"]
    val = results["validation"]["summary"]
    primary = results["primary"]
    for label in results["order"]:
        s = summary[label]
        metrics = {
            k: v for k, v in s.items() if isinstance(v, (int, float)) and not k.endswith("_s")
        }
        if isinstance(val[label].get(primary), (int, float)):
            metrics[f"validation_{primary}"] = val[label][primary]
        tracker.log_model_run(
            label,
            params={"model": cfg.models[label].model, **cfg.models[label].params},
            metrics=metrics,
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
    check_interrupt()
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        os.replace(out, old)
    os.replace(stage, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
