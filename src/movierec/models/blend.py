"""Linear blend (stacking) of rating models, its weights learned on ratings the sub-models
did not train on."""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.models.base import Recommender
from movierec.models.hybrid import ModelSpec, _build, _specs, fit_shared

DEFAULT_MODELS = {"bayesmf": {}, "svdpp": {}, "knnbaseline": {}}


def per_user_holdout(train: Dataset, fraction: float, seed: int | None) -> np.ndarray:
    """Mask of ``floor(fraction * n_u)`` random ratings of every user u (users with one
    rating keep it), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    users = train.users.astype(np.int64)
    order = np.lexsort((rng.random(users.size), users))
    counts = np.bincount(users, minlength=train.n_users)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    pos = np.arange(users.size) - starts[users[order]]
    held = np.zeros(users.size, dtype=bool)
    held[order] = pos < np.floor(fraction * counts[users[order]])
    return held


class RatingBlend(Recommender):
    r"""Linear stacking of rating models: :math:`\hat r = w_0 + \sum_m w_m \hat r_m`.

    ``fit(train)`` holds out a random ``holdout`` fraction of every user's ratings (seeded
    by ``random_state``), fits each sub-model on the rest, predicts the held-out ratings
    with each, and learns the weights and intercept there (ridge least squares, or
    non-negative least squares): the weights are learned on ratings no sub-model saw.
    Then, with ``refit`` (default), every sub-model is fitted again on all of ``train``,
    and those serve (they are a little better than the ones the weights were learned
    for, which slightly favours the weights of models that gain most from more data).

    Parameters
    ----------
    models : dict name -> params, or list of (name, params)
        Registered rating models (default: bayesmf, svdpp, knnbaseline with their
        defaults).
    holdout : float
        Fraction of each user's training ratings the weights are learned on, in (0, 1).
    method : {"ridge", "nnls"}
        Least squares with an L2 penalty ``reg`` per held-out rating on the weights (not
        the intercept), or non-negative weights.
    reg : float
        The ridge penalty (``method="ridge"``).
    refit : bool
        Refit the sub-models on all of ``train`` after learning the weights.
    random_state : int or None
        Seed of the internal split, and of every sub-model whose params leave it unset.

    Attributes
    ----------
    models_ : list of fitted sub-models.
    weights_ : float64 array, one weight per sub-model.  intercept_ : float
    holdout_rmse_ : list of float
        RMSE on the internal held-out ratings of each sub-model, then of the blend.
    """

    rating_model = True
    name = "blend"
    #: sub-models set their own BLAS limits
    blas_threads = None
    search_space = {
        "reg": {"type": "float", "low": 1e-4, "high": 1.0, "log": True, "grid": [1e-3, 1e-1]},
    }

    def __init__(
        self,
        models: ModelSpec | None = None,
        holdout: float = 0.2,
        method: str = "ridge",
        reg: float = 1e-3,
        refit: bool = True,
        random_state: int | None = 0,
    ) -> None:
        self.models = models
        self.holdout = holdout
        self.method = method
        self.reg = reg
        self.refit = refit
        self.random_state = random_state

    def _fit(self, train: Dataset) -> None:
        from movierec.models import model_class

        specs = _specs(DEFAULT_MODELS if self.models is None else self.models)
        self._check(len(specs) >= 1, "give at least one sub-model, e.g. models={'svd': {}}")
        for n, _ in specs:
            self._check(model_class(n).rating_model, f"{n!r} does not predict ratings")
        self._check(0 < self.holdout < 1, f"holdout must lie in (0, 1), got {self.holdout}")
        self._check(self.method in ("ridge", "nnls"), "method must be 'ridge' or 'nnls'")
        self._check(self.reg >= 0, f"reg must be >= 0, got {self.reg}")
        held = per_user_holdout(train, float(self.holdout), self.random_state)
        self._check(held.any(), "too few ratings per user to hold any out for the weights")
        inner, part = train.subset(~held), train.subset(held)
        subs = [_build(n, p, self.random_state).fit(inner) for n, p in specs]
        x = np.column_stack([m.predict(part.users, part.items) for m in subs]).astype(np.float64)
        y = part.ratings.astype(np.float64)
        xm, ym = x.mean(axis=0), y.mean()
        xc, yc = x - xm, y - ym
        if self.method == "nnls":
            from scipy.optimize import nnls

            w = nnls(xc, yc)[0]
        else:
            gram = xc.T @ xc + self.reg * y.size * np.eye(x.shape[1])
            w = np.linalg.solve(gram, xc.T @ yc)
        self.weights_ = np.asarray(w, dtype=np.float64)
        self.intercept_ = float(ym - xm @ w)
        fit = x @ w + self.intercept_
        self.holdout_rmse_ = [float(np.sqrt(np.mean((c - y) ** 2))) for c in (*x.T, fit)]
        if self.refit:
            subs = [fit_shared(_build(n, p, self.random_state), train) for n, p in specs]
        self.models_ = subs

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        out = np.full(users.size, self.intercept_, dtype=np.float64)
        for w, m in zip(self.weights_, self.models_, strict=True):
            out += w * m.predict(users, items)
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        out = np.full((users.size, self.n_items_), self.intercept_, dtype=np.float32)
        for w, m in zip(self.weights_, self.models_, strict=True):
            out += np.float32(w) * m.score(users)
        return out

    def _dot_items(self) -> np.ndarray | None:
        # a blend of dot-product models is one: the sub-models' vectors side by side
        parts = [m.dot_items() for m in self.models_]
        if any(V is None for V in parts):
            return None
        return np.hstack([*parts, np.ones((self.n_items_, 1), np.float32)])

    def _dot_users(self, users: np.ndarray) -> np.ndarray:
        parts = [
            np.float32(w) * m._dot_users(users)
            for w, m in zip(self.weights_, self.models_, strict=True)
        ]
        return np.hstack([*parts, np.full((users.size, 1), self.intercept_, np.float32)])

    def fold_in(self, items: Any, ratings: Any) -> np.ndarray:
        """The weighted sum of the sub-models' fold-in scores (each must support fold-in)."""
        self._require_fitted()
        out = np.full(self.n_items_, self.intercept_, dtype=np.float32)
        for w, m in zip(self.weights_, self.models_, strict=True):
            out += np.float32(w) * np.asarray(m.fold_in(items, ratings), dtype=np.float32)
        return out
