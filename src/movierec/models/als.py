"""Explicit-feedback matrix factorization with biases, by alternating least squares."""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.kernels.als import als_half_step, als_half_step_cg, als_predict
from movierec.models.base import Recommender, biased_vectors, factor_scores


class ALS(Recommender):
    r"""Biased matrix factorization by alternating least squares (explicit ratings).

    Predicts :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i` and minimizes

    .. math::

        \sum_{(u,i)} (r_{ui} - \hat r_{ui})^2
        + \sum_u n_u (\lambda \lVert p_u\rVert^2 + \lambda_b b_u^2)
        + \sum_i n_i (\lambda \lVert q_i\rVert^2 + \lambda_b b_i^2)

    (weighted-lambda regularization, Zhou et al. 2008; with ``weighted=False`` the
    :math:`n_u, n_i` factors are dropped). :math:`\mu` is the training mean. Each epoch
    solves all users given the items, then all items given the users, rows in parallel;
    every row's :math:`(k+1)`-dimensional ridge system (factors and bias together) is
    solved exactly by Cholesky of its Gram matrix (``solver="cholesky"``, cost
    :math:`O(n (k+1)^2 / 2 + (k+1)^3 / 6)` per row of n ratings) or approximately by
    ``cg_steps`` warm-started conjugate-gradient steps that never form the Gram matrix
    (``solver="cg"``, :math:`O(2 n (k+1))` per step; Takacs et al. 2011). On ML-100K both
    reach the same RMSE to 1e-4, and CG is about 5x faster at k = 64.

    Parameters
    ----------
    n_factors : int
        Latent dimension k.
    n_epochs : int
        Number of (users, items) alternations.
    reg : float
        :math:`\lambda`, the factor weight (per rating when ``weighted``).
    reg_bias : float
        :math:`\lambda_b`, the bias weight (per rating when ``weighted``).
    weighted : bool
        Scale both weights by the row's number of ratings.
    solver : {"cg", "cholesky"}
        Conjugate gradient (fast, default) or the exact solve.
    cg_steps : int
        Conjugate-gradient steps per row and half-epoch (``solver="cg"``).
    init_std : float
        Standard deviation of the normal initial item factors.
    random_state : int
        Seed of the initial factors.

    Attributes
    ----------
    mu_ : float
    bu_, bi_ : float32 arrays of user and item biases.
    pu_, qi_ : float32 arrays (n_users x k), (n_items x k) of factors.
    """

    rating_model = True
    name = "als"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "n_factors": {"type": "int", "low": 10, "high": 200, "log": True, "grid": [10, 50, 100]},
        "n_epochs": {"type": "int", "low": 5, "high": 30, "grid": [10, 20]},
        # weighted reg is per rating, plain ridge reg per row: one wide range covers both
        "weighted": {"type": "categorical", "choices": [True, False]},
        "reg": {"type": "float", "low": 0.03, "high": 30.0, "log": True, "grid": [0.1, 1.0, 10.0]},
        "reg_bias": {"type": "float", "low": 3e-3, "high": 30.0, "log": True, "grid": [0.05, 3.0]},
    }

    def __init__(
        self,
        n_factors: int = 50,
        n_epochs: int = 15,
        reg: float = 0.12,
        reg_bias: float = 0.05,
        weighted: bool = True,
        solver: str = "cg",
        cg_steps: int = 3,
        init_std: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.reg = reg
        self.reg_bias = reg_bias
        self.weighted = weighted
        self.solver = solver
        self.cg_steps = cg_steps
        self.init_std = init_std
        self.random_state = random_state

    def _fit(self, train: Dataset) -> None:
        self._check(
            isinstance(self.n_factors, int | np.integer) and self.n_factors >= 1,
            f"n_factors must be an integer >= 1, got {self.n_factors!r}",
        )
        self._check(self.n_epochs >= 1, f"n_epochs must be >= 1, got {self.n_epochs}")
        self._check(self.reg >= 0 and self.reg_bias >= 0, "reg and reg_bias must be >= 0")
        self._check(self.init_std >= 0, "init_std must be >= 0")
        self._check(
            self.solver in ("cholesky", "cg"),
            f"solver must be 'cholesky' or 'cg', got {self.solver!r}",
        )
        self._check(self.cg_steps >= 1, f"cg_steps must be >= 1, got {self.cg_steps}")
        csr, csc = train.csr(), train.csc()
        u_ptr, i_ptr = csr.indptr.astype(np.int64), csc.indptr.astype(np.int64)
        rng = np.random.default_rng(self.random_state)
        k = int(self.n_factors)
        self.mu_ = float(train.ratings.mean())
        self.pu_ = np.zeros((train.n_users, k), dtype=np.float32)
        self.bu_ = np.zeros(train.n_users, dtype=np.float32)
        self.qi_ = rng.normal(0.0, self.init_std, (train.n_items, k)).astype(np.float32)
        self.bi_ = np.zeros(train.n_items, dtype=np.float32)
        args = (self.mu_, float(self.reg), float(self.reg_bias), bool(self.weighted))
        if self.solver == "cg":
            step, args = als_half_step_cg, (*args, int(self.cg_steps))
        else:
            step = als_half_step
        for epoch in range(self.n_epochs):
            step(u_ptr, csr.indices, csr.data, self.pu_, self.bu_, self.qi_, self.bi_, *args)
            step(i_ptr, csc.indices, csc.data, self.qi_, self.bi_, self.pu_, self.bu_, *args)
            if self._epoch_done(epoch):
                break

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return als_predict(users, items, self.pu_, self.qi_, self.bu_, self.bi_, self.mu_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = factor_scores(self.pu_[users], self.qi_)
        s += self.bi_[None, :]
        s += (self.mu_ + self.bu_[users])[:, None]
        return s.astype(np.float32, copy=False)

    def _dot_users(self, users: np.ndarray) -> np.ndarray:
        return biased_vectors(self.pu_[users], self.mu_ + self.bu_[users], 1.0, users.size)

    def _dot_items(self) -> np.ndarray:
        return biased_vectors(self.qi_, 1.0, self.bi_, self.n_items_)

    def item_vectors(self) -> np.ndarray:
        """The item factors ``qi_``."""
        return self.qi_

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Solve a new user's factors and bias from a few ratings (one ALS row solve)."""
        k = self.qi_.shape[1]
        p = np.zeros((1, k), dtype=np.float32)
        b = np.zeros(1, dtype=np.float32)
        order = np.argsort(items)
        als_half_step(
            np.array([0, len(items)], np.int64),
            np.asarray(items, np.int32)[order],
            np.asarray(ratings, np.float32)[order],
            p,
            b,
            self.qi_,
            self.bi_,
            self.mu_,
            float(self.reg),
            float(self.reg_bias),
            bool(self.weighted),
        )
        return self.mu_ + b[0] + self.bi_ + self.qi_ @ p[0]
