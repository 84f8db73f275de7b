"""Baselines: the global mean and regularized user/item biases."""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.models.base import Recommender, biased_vectors, biases


class GlobalMean(Recommender):
    """Predicts the training mean rating for every pair: r_hat = mu."""

    rating_model = True
    name = "globalmean"

    def __init__(self) -> None:
        pass

    def _fit(self, train: Dataset) -> None:
        self.mu_ = float(train.ratings.mean())

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(users.size, self.mu_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.full((users.size, self.n_items_), self.mu_, dtype=np.float32)


class Biases(Recommender):
    """User and item biases (Surprise's BaselineOnly with ALS).

    r_hat(u, i) = mu + b_u + b_i, minimizing
    sum (r_ui - mu - b_u - b_i)^2 + reg_u sum b_u^2 + reg_i sum b_i^2
    by ``n_epochs`` rounds of alternating closed-form updates (items, then users).
    """

    rating_model = True
    name = "biases"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "reg_u": {"type": "float", "low": 0.5, "high": 50.0, "log": True, "grid": [2, 5, 15, 30]},
        "reg_i": {"type": "float", "low": 0.5, "high": 50.0, "log": True, "grid": [2, 5, 10, 25]},
    }

    def __init__(self, reg_u: float = 15.0, reg_i: float = 10.0, n_epochs: int = 10) -> None:
        self.reg_u = reg_u
        self.reg_i = reg_i
        self.n_epochs = n_epochs

    def _fit(self, train: Dataset) -> None:
        self._check(self.reg_u >= 0 and self.reg_i >= 0, "reg_u and reg_i must be >= 0")
        self._check(self.n_epochs >= 1, "n_epochs must be >= 1")
        self.mu_, self.bu_, self.bi_ = biases(train, self.reg_u, self.reg_i, self.n_epochs)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.mu_ + self.bu_[users] + self.bi_[items]

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = self.mu_ + self.bu_[users][:, None] + self.bi_[None, :]
        return s.astype(np.float32)

    def _dot_users(self, users: np.ndarray) -> np.ndarray:
        return biased_vectors(None, self.mu_ + self.bu_[users], 1.0, users.size)

    def _dot_items(self) -> np.ndarray:
        return biased_vectors(None, 1.0, self.bi_, self.n_items_)
