"""``movierec train --engine spark`` and ``movierec compare --engine spark``."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from movierec.atomic import stage_dir
from movierec.errors import ConfigError
from movierec.spark import io, session
from movierec.spark import split as spark_split
from movierec.spark.evaluate import evaluate, rating_errors
from movierec.spark.export import export
from movierec.spark.train import SPARK_MODELS, fit


def source(cfg: Any, data: str | os.PathLike | None = None) -> str:
    """Where Spark reads the data: ``data``, the config's ``data``, a URI or folder in
    ``dataset``, or the local copy of a release name (fetched and cached first)."""
    if data is not None:
        return str(data)
    if cfg.data is not None:
        text = str(cfg.data)
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:/[^/]", text):  # a URI read as a path
            raise ConfigError(
                f"data: {text!r} looks like a URI turned into a path; put URIs in `dataset:` "
                "or pass --data URI"
            )
        return text
    name = str(cfg.dataset)
    from movierec.data import fetch

    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", name) or name not in fetch.RELEASES:
        return name
    return str(fetch.fetch(name))


def _spark_model(cfg: Any, label: str) -> Any:
    spec = cfg.spec(label)
    if spec.model not in SPARK_MODELS:
        raise ConfigError(
            f"model {label!r} ({spec.model}) has no Spark MLlib version; the Spark engine "
            f"trains {', '.join(SPARK_MODELS)} (use --engine local for the others)"
        )
    return cfg.build_model(label)


def _split(cfg: Any, data: io.SparkData) -> spark_split.SparkSplit:
    return spark_split.make_split(data, cfg.split.kind, **cfg.split_params())


def train(
    cfg: Any,
    label: str,
    out: str | os.PathLike,
    master: str | None = None,
    on: str = "all",
    data: str | os.PathLike | None = None,
) -> str:
    """Fit the model labelled ``label`` with MLlib and save a movierec artifact in ``out``."""
    if on not in ("all", "train"):
        raise ConfigError(f"unknown --on {on!r}; choose all (serving) or train (the split's part)")
    model = _spark_model(cfg, label)
    spark = session(master)
    sd = io.read(spark, source(cfg, data))
    split = _split(cfg, sd) if on == "train" else None
    part = split.train if split is not None else sd.ratings
    f = fit(sd, part, model)
    metrics: dict[str, float] = {}
    if split is not None and f.kind == "als":
        metrics["validation_rmse"] = rating_errors(f, split.validation)["rmse"]
    extra = {
        "label": label,
        "config": cfg.model_dump(mode="json"),
        "trained_on": on,
        "split": None if split is None else {"kind": split.kind, "params": split.params},
        "metrics": {k: v for k, v in metrics.items() if math.isfinite(v)},
        "master": spark.sparkContext.master,
    }
    _, ds, path = export(f, sd, part, out, extra=extra)
    what = f"{split.kind} train part" if split is not None else "all ratings"
    lines = [
        f"trained {label} ({type(model).__name__}) with Spark MLlib on {sd.label}, {what} "
        f"(trained_on={on}, master {spark.sparkContext.master}): {ds.n_ratings:,} ratings, "
        f"{ds.n_users:,} users, {ds.n_items:,} movies in {f.fit_s:.1f} s",
        "MLlib params: " + ", ".join(f"{k}={v}" for k, v in f.mllib.items()),
        *(f"note: {n}" for n in f.notes),
    ]
    if "validation_rmse" in metrics:
        lines.append(f"validation RMSE {metrics['validation_rmse']:.4f}")
    lines.append(f"saved to {path}")
    if split is not None:
        split.close()
    sd.close()
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.4f}" if isinstance(v, float) and math.isfinite(v) else "-"


def compare(
    cfg: Any,
    out: str | os.PathLike | None = None,
    data: str | os.PathLike | None = None,
    master: str | None = None,
) -> tuple[str, Path]:
    """Fit and evaluate the config's Spark models (als, ials) on its split, in Spark.

    Each model is fitted on train and evaluated on validation; then refitted on train +
    validation (``refit: true``) and evaluated once on test, the training and validation
    movies excluded. Writes ``results.json``, ``results.txt`` and one artifact per model
    (``artifacts/<label>``, fitted on what the test evaluation used) into ``out``
    (default: the config's output folder + ``-spark``). Returns (table text, folder).
    """
    from pyspark import StorageLevel

    labels = [lb for lb, s in cfg.available_models().items() if s.model in SPARK_MODELS]
    skipped = {
        lb: f"{s.model}: no Spark MLlib version; run it with --engine local"
        for lb, s in cfg.models.items()
        if s.model not in SPARK_MODELS
    }
    if not labels:
        raise ConfigError(
            f"the config has no model the Spark engine trains ({', '.join(SPARK_MODELS)})"
        )
    models = {lb: _spark_model(cfg, lb) for lb in labels}
    folder = Path(out) if out is not None else Path(f"{cfg.output}-spark")
    ks = tuple(cfg.metrics.k)
    thr = float(cfg.metrics.threshold)
    t_all = time.perf_counter()
    spark = session(master)
    sd = io.read(spark, source(cfg, data))
    sp = _split(cfg, sd)
    trainval = (
        sp.train.unionByName(sp.validation).persist(StorageLevel.MEMORY_AND_DISK)
        if cfg.refit
        else sp.train
    )
    history = trainval if cfg.refit else sp.train.unionByName(sp.validation)
    results: dict[str, Any] = {}
    finals: dict[str, Any] = {}
    for lb, m in models.items():
        f = fit(sd, sp.train, m)
        val = evaluate(f, sp.validation, sp.train, ks, thr) if _has(sp.validation, thr) else {}
        final = fit(sd, trainval, m) if cfg.refit else f
        test = evaluate(final, sp.test, history, ks, thr)
        finals[lb] = final
        results[lb] = {
            "model": cfg.spec(lb).model,
            "mllib": final.mllib,
            "notes": final.notes,
            "fit_s": f.fit_s,
            "refit_s": final.fit_s if cfg.refit else None,
            "validation": val,
            "test": test,
        }
    stage = stage_dir(folder.parent, f".{folder.name}.tmp-")
    train_ds = None
    for lb, final in finals.items():
        _, train_ds, _ = export(
            final,
            sd,
            trainval,
            stage / "artifacts" / lb,
            extra={"label": lb, "trained_on": "train+validation" if cfg.refit else "train"},
            train_ds=train_ds,
        )
    primary = cfg.metrics.primary
    head = [
        "model",
        f"{primary} (val)",
        f"{primary} (test)",
        "recall@10 (test)" if 10 in ks else f"recall@{ks[0]} (test)",
        "rmse (test)",
        "users",
        "fallback",
        "fit_s",
    ]
    rk = 10 if 10 in ks else ks[0]
    rows = [head]
    for lb, r in results.items():
        rows.append(
            [
                lb,
                _fmt(r["validation"].get(primary)),
                _fmt(r["test"].get(primary)),
                _fmt(r["test"].get(f"recall@{rk}")),
                _fmt(r["test"].get("rmse")),
                str(int(r["test"]["users_evaluated"])),
                str(int(r["test"]["users_fallback"])),
                f"{r['fit_s']:.1f}",
            ]
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
    table = "\n".join(
        "  ".join(
            c.ljust(w) if j == 0 else c.rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )
    notes = [
        f"{sd.label}: split {sp.kind}, Spark master {spark.sparkContext.master}; "
        f"relevance rating >= {thr:g}; full catalogue of {sd.n_items:,} movies, "
        "training (and validation) movies excluded",
        *(f"not run on Spark: {lb} ({why})" for lb, why in skipped.items()),
    ]
    text = "\n".join([notes[0], "", table, "", *notes[1:]])
    payload = {
        "engine": "spark",
        "dataset": sd.label,
        "split": {"kind": sp.kind, "params": sp.params},
        "k": list(ks),
        "threshold": thr,
        "refit": bool(cfg.refit),
        "models": results,
        "skipped": skipped,
        "seconds": time.perf_counter() - t_all,
    }
    (stage / "results.json").write_text(json.dumps(_clean(payload), indent=1))
    (stage / "results.txt").write_text(text + "\n")
    _swap(stage, folder)
    if cfg.refit:
        trainval.unpersist()
    sp.close()
    sd.close()
    return text, folder


def _has(df: Any, threshold: float) -> bool:
    """Whether ``df`` holds a relevant rating (something to evaluate)."""
    from pyspark.sql import functions as F

    return bool(df.filter(F.col("rating") >= threshold).limit(1).count())


def _swap(stage: Path, folder: Path) -> None:
    import shutil

    if folder.exists():
        old = stage_dir(folder.parent, f".{folder.name}.old-")
        os.replace(folder, old / "a")
        os.replace(stage, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(stage, folder)


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x
