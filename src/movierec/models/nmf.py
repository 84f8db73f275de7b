"""Non-negative matrix factorization (Surprise's NMF, Luo et al. 2014)."""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.kernels.nmf import nmf_accumulate, nmf_apply, nmf_bias_sgd, scatter
from movierec.models.base import Recommender, biased_vectors, factor_scores


class NMF(Recommender):
    r"""Non-negative matrix factorization by multiplicative updates on observed ratings.

    Predicts :math:`\hat r_{ui} = p_u^\top q_i` (plus :math:`\mu + b_u + b_i` when
    ``biased``) with :math:`p_u, q_i \ge 0`. Each epoch updates, over the observed ratings,

    .. math::

        p_{uf} \leftarrow p_{uf} \frac{\sum_{i \in I_u} q_{if} r_{ui}}
            {\sum_{i \in I_u} q_{if} \hat r_{ui} + |I_u| \lambda_u p_{uf}}, \qquad
        q_{if} \leftarrow q_{if} \frac{\sum_{u \in U_i} p_{uf} r_{ui}}
            {\sum_{u \in U_i} p_{uf} \hat r_{ui} + |U_i| \lambda_i q_{if}}

    (both from the factors at the start of the epoch); when ``biased``, the biases take
    one SGD pass per epoch first: :math:`b_u \mathrel{+}= \gamma_u (e_{ui} - \lambda_{bu}
    b_u)` and likewise :math:`b_i`. Parameter names and defaults are Surprise's; with
    non-negative initial factors the factors stay non-negative.

    Parameters
    ----------
    n_factors, n_epochs : int
    biased : bool
        Add the global mean and SGD-learned user/item biases (prone to overfitting).
    reg_pu, reg_qi : float
        Factor regularization (per rating) of users and items.
    reg_bu, reg_bi, lr_bu, lr_bi : float
        Bias regularization and learning rates (``biased`` only).
    init_low, init_high : float
        Initial factors are uniform on [init_low, init_high]; init_low must be >= 0.
    random_state : int

    Attributes
    ----------
    mu_ : float
    pu_, qi_ : float64 non-negative factors.  bu_, bi_ : float64 biases (zero unless biased).
    """

    rating_model = True
    name = "nmf"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "n_factors": {"type": "int", "low": 5, "high": 60, "log": True, "grid": [10, 15, 30]},
        "n_epochs": {"type": "int", "low": 20, "high": 100, "grid": [50, 80]},
        "reg_pu": {
            "type": "float",
            "low": 0.001,
            "high": 0.5,
            "log": True,
            "grid": [0.02, 0.06, 0.2],
        },
        "reg_qi": {
            "type": "float",
            "low": 0.001,
            "high": 0.5,
            "log": True,
            "grid": [0.02, 0.06, 0.2],
        },
    }

    def __init__(
        self,
        n_factors: int = 15,
        n_epochs: int = 50,
        biased: bool = False,
        reg_pu: float = 0.06,
        reg_qi: float = 0.06,
        reg_bu: float = 0.02,
        reg_bi: float = 0.02,
        lr_bu: float = 0.005,
        lr_bi: float = 0.005,
        init_low: float = 0.0,
        init_high: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.n_epochs = n_epochs
        self.biased = biased
        self.reg_pu = reg_pu
        self.reg_qi = reg_qi
        self.reg_bu = reg_bu
        self.reg_bi = reg_bi
        self.lr_bu = lr_bu
        self.lr_bi = lr_bi
        self.init_low = init_low
        self.init_high = init_high
        self.random_state = random_state

    def _fit(self, train: Dataset) -> None:
        self._check(
            isinstance(self.n_factors, int | np.integer) and self.n_factors >= 1,
            f"n_factors must be an integer >= 1, got {self.n_factors!r}",
        )
        self._check(self.n_epochs >= 1, f"n_epochs must be >= 1, got {self.n_epochs}")
        self._check(
            0 <= self.init_low <= self.init_high,
            f"need 0 <= init_low <= init_high, got {self.init_low}, {self.init_high}",
        )
        self._check(
            min(self.reg_pu, self.reg_qi, self.reg_bu, self.reg_bi) >= 0,
            "regularization terms must be >= 0",
        )
        self._check(min(self.lr_bu, self.lr_bi) >= 0, "learning rates must be >= 0")
        csr = train.csr()
        u_ptr = csr.indptr.astype(np.int64)
        u_idx, u_r = csr.indices.astype(np.int32), csr.data.astype(np.float64)
        # CSC order of the same entries; perm[t] is the CSC position of CSR entry t
        order = np.argsort(u_idx, kind="stable")
        perm = np.empty_like(order)
        perm[order] = np.arange(order.size)
        rows = np.repeat(np.arange(train.n_users, dtype=np.int32), np.diff(u_ptr))
        i_ptr = np.zeros(train.n_items + 1, dtype=np.int64)
        np.cumsum(np.bincount(u_idx, minlength=train.n_items), out=i_ptr[1:])
        i_idx, i_r = rows[order], u_r[order]

        rng = np.random.default_rng(self.random_state)
        k = int(self.n_factors)
        lo, hi = float(self.init_low), float(self.init_high)
        self.pu_ = rng.uniform(lo, hi, (train.n_users, k))
        self.qi_ = rng.uniform(lo, hi, (train.n_items, k))
        self.bu_ = np.zeros(train.n_users)
        self.bi_ = np.zeros(train.n_items)
        self.mu_ = float(train.ratings.mean()) if self.biased else 0.0
        off_u, off_i = np.zeros(u_r.size), np.zeros(u_r.size)
        num_u, den_u = np.empty((train.n_users, k)), np.empty((train.n_users, k))
        num_i, den_i = np.empty((train.n_items, k)), np.empty((train.n_items, k))
        for epoch in range(self.n_epochs):
            if self.biased:
                nmf_bias_sgd(
                    u_ptr, u_idx, u_r, self.pu_, self.qi_, self.bu_, self.bi_, self.mu_,
                    float(self.lr_bu), float(self.reg_bu), float(self.lr_bi),
                    float(self.reg_bi), off_u,
                )  # fmt: skip
                scatter(perm, off_u, off_i)
            nmf_accumulate(u_ptr, u_idx, u_r, self.pu_, self.qi_, off_u, num_u, den_u)
            nmf_accumulate(i_ptr, i_idx, i_r, self.qi_, self.pu_, off_i, num_i, den_i)
            nmf_apply(u_ptr, self.pu_, num_u, den_u, float(self.reg_pu))
            nmf_apply(i_ptr, self.qi_, num_i, den_i, float(self.reg_qi))
            if self._epoch_done(epoch):
                break

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        dot = np.einsum("ij,ij->i", self.pu_[users], self.qi_[items])
        return self.mu_ + self.bu_[users] + self.bi_[items] + dot

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = factor_scores(self.pu_[users], self.qi_)
        s += self.bi_[None, :]
        s += (self.mu_ + self.bu_[users])[:, None]
        return s.astype(np.float32)

    def _dot_users(self, users: np.ndarray) -> np.ndarray:
        return biased_vectors(self.pu_[users], self.mu_ + self.bu_[users], 1.0, users.size)

    def _dot_items(self) -> np.ndarray:
        return biased_vectors(self.qi_, 1.0, self.bi_, self.n_items_)

    def item_vectors(self) -> np.ndarray:
        """The non-negative item factors ``qi_``."""
        return self.qi_
