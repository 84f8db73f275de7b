"""A Spark fit as a normal movierec artifact (loads and serves without Spark).

The training part is collected onto the driver (about 20 bytes per rating) because an
artifact holds the training history (the users' seen movies, ``history.npz``); then the
movierec model object (:class:`~movierec.models.als.ALS` or
:class:`~movierec.models.ials.ImplicitALS`) gets the learned attributes a local ``fit``
would set, with the factors and biases from Spark, and :func:`movierec.artifacts.save`
writes it with the id maps, the movie table and checksums.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from movierec.artifacts import save
from movierec.data.dataset import Dataset
from movierec.models.base import Recommender
from movierec.spark.io import SparkData
from movierec.spark.train import SparkFit


def _base_state(m: Recommender, train: Dataset, fit: SparkFit) -> None:
    # what Recommender.fit sets before _fit (tests compare the attribute sets)
    csr = train.csr()
    m.n_users_ = train.n_users
    m.n_items_ = train.n_items
    m.seen_indptr_ = csr.indptr.astype(np.int64)
    m.seen_indices_ = csr.indices.astype(np.int32)
    m.user_count_ = np.diff(m.seen_indptr_).astype(np.int32)
    m.item_count_ = train.item_counts().astype(np.int32)
    m.rating_scale_ = tuple(train.rating_scale)
    if m.rating_model:
        m.global_mean_ = float(fit.stats.global_mean)
        m.fallback_bu_ = fit.stats.fallback_bu.astype(np.float64)
        m.fallback_bi_ = fit.stats.fallback_bi.astype(np.float64)


def to_model(fit: SparkFit, train: Dataset) -> Recommender:
    """The fitted movierec model of a Spark fit on ``train`` (the collected training part)."""
    m = fit.model.clone()
    _base_state(m, train, fit)
    if fit.kind == "als":
        m.mu_ = float(fit.mu)
        m.pu_ = fit.user_factors.astype(np.float32)
        m.bu_ = fit.bu.astype(np.float32)
        m.qi_ = fit.item_factors.astype(np.float32)
        m.bi_ = fit.bi.astype(np.float32)
    else:
        m.user_factors_ = fit.user_factors.astype(np.float32)
        m.item_factors_ = fit.item_factors.astype(np.float32)
    m.user_signal_ = None
    m.user_signal_ = m._signal_users(train)
    return m


def export(
    fit: SparkFit,
    data: SparkData,
    train: Any,
    out: str | os.PathLike,
    extra: dict[str, Any] | None = None,
    train_ds: Dataset | None = None,
) -> tuple[Recommender, Dataset, Any]:
    """Write the artifact of ``fit`` (trained on the DataFrame ``train``) to ``out``.

    Returns (the model, the collected training Dataset, the artifact path).
    """
    ds = train_ds if train_ds is not None else data.dataset(train, name=f"{data.name}:train")
    m = to_model(fit, ds)
    notes = {
        "engine": "spark",
        "mllib": fit.mllib,
        "notes": fit.notes,
        "fit_s": fit.fit_s,
    }
    path = save(m, out, train=ds, extra={**notes, **(extra or {})})
    return m, ds, path
