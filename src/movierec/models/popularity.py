"""Popularity: rank items by how many training users liked them."""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.models.base import Recommender


class Popularity(Recommender):
    """Score of item i = number of positive training interactions (rating >= threshold,
    default 4; 0 counts every rating).

    With ``half_life_days`` set, each interaction is weighted by
    0.5 ** (age_in_days / half_life_days), the age measured from the latest training
    timestamp, so recent popularity counts more. Ties are broken by the raw count of all
    ratings, then by item index.
    """

    name = "popularity"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "half_life_days": {
            "type": "float",
            "low": 7.0,
            "high": 3650.0,
            "log": True,
            "grid": [30, 365, 3650],
        }
    }

    def __init__(self, threshold: float = 4.0, half_life_days: float | None = None) -> None:
        self.threshold = threshold
        self.half_life_days = half_life_days

    def _fit(self, train: Dataset) -> None:
        self._check(
            self.half_life_days is None or self.half_life_days > 0, "half_life_days must be > 0"
        )
        pos = train.ratings >= self.threshold
        w = np.ones(int(pos.sum()), dtype=np.float64)
        if self.half_life_days is not None:
            age = (train.timestamps.max() - train.timestamps[pos]) / 86400.0
            w = 0.5 ** (age / self.half_life_days)
        counts = np.bincount(train.items[pos], weights=w, minlength=train.n_items)
        # a tiny tie-break by total count keeps the order stable and meaningful
        tie = train.item_counts() / (train.n_ratings + 1.0)
        self.popularity_ = (counts + 1e-3 * tie).astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (users.size, self.n_items_)).copy()

    def _dot_users(self, users: np.ndarray) -> np.ndarray:
        return np.ones((users.size, 1), dtype=np.float32)

    def _dot_items(self) -> np.ndarray:
        return self.popularity_[:, None]

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        return self.popularity_.copy()
