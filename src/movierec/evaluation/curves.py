"""Learning curves: a model trained on growing parts of the training data."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl

from movierec.errors import ConfigError
from movierec.evaluation.analysis import mean_se
from movierec.evaluation.evaluator import evaluate_model
from movierec.evaluation.metrics import ACCURACY
from movierec.models.base import Recommender
from movierec.split import Split

__all__ = ["learning_curve"]


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
