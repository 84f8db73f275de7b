"""Test helpers for the serving tests: tiny artifacts on the checkerboard, saved as a
compare run (results.json + models/), with IMDb/TMDB links."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import polars as pl
from contract import N_ITEMS, checkerboard

from movierec.artifacts import save
from movierec.data.dataset import Dataset
from movierec.models import make_model

MODELS = {
    "popularity": {},
    "ials": {"factors": 8, "iterations": 6, "random_state": 0},
    "ease": {"l2": 10.0, "threshold": 4.0},
    "itemknn": {"k": 20, "threshold": 4.0},
    "svd": {"n_factors": 8, "n_epochs": 15, "random_state": 0},
}
BEST = "ease"
COLD_RAW = 60  # in the id map, but no training rating (the contract's cold user)


def train_data() -> Dataset:
    """The checkerboard's training part with links (movie k: imdb 1000+k, tmdb 2000+k)."""
    _, train = checkerboard()
    raw = [k * 10 + 7 for k in range(N_ITEMS)]
    links = pl.DataFrame(
        {
            "item": raw,
            "imdb": [1000 + k for k in range(N_ITEMS)],
            "tmdb": [2000 + k for k in range(N_ITEMS)],
        },
        schema={"item": pl.Int64, "imdb": pl.Int64, "tmdb": pl.Int64},
    )
    return dataclasses.replace(train, links=links)


def build_run(root: Path, models: dict | None = None) -> Path:
    """Fit the models on the checkerboard and save them as a compare run folder."""
    train = train_data()
    run = root / "run"
    for label, params in (models or MODELS).items():
        m = make_model(label, **params).fit(train)
        save(m, run / "models" / label, train=train, extra={"label": label, "trained_on": "all"})
    (run / "results.json").write_text(json.dumps({"best": BEST, "order": list(MODELS)}))
    return run


def user_raw(train: Dataset, dense: int) -> int:
    return int(train.user_map.raw[dense])


__all__ = ["BEST", "COLD_RAW", "MODELS", "build_run", "np", "train_data", "user_raw"]
