"""Neighbourhood model on baseline residuals (Surprise's KNNBaseline, pearson_baseline)."""

from __future__ import annotations

import numpy as np

from movierec.data.dataset import Dataset
from movierec.kernels.knn import knn_baseline_predict, pearson_baseline_sim
from movierec.models.base import Recommender, biases

#: Largest number of compared entities (items, or users when user-based) for which the
#: dense float32 similarity matrix is built: 20,000^2 x 4 bytes = 1.6 GB.
MAX_DENSE = 20_000


class KNNBaseline(Recommender):
    r"""k-nearest-neighbours on baseline residuals, item-based by default.

    Baselines :math:`b_{ui} = \mu + b_u + b_i` come from regularized ALS
    (``bsl_reg_u``, ``bsl_reg_i``, ``bsl_n_epochs``; Surprise's defaults). The similarity
    is the shrunk pearson-baseline correlation over the users :math:`U_{ij}` who rated
    both items:

    .. math::

        s_{ij} = \frac{\sum_{u \in U_{ij}} (r_{ui} - b_{ui})(r_{uj} - b_{uj})}
        {\sqrt{\sum_{U_{ij}} (r_{ui} - b_{ui})^2 \sum_{U_{ij}} (r_{uj} - b_{uj})^2}}
        \cdot \frac{|U_{ij}| - 1}{|U_{ij}| - 1 + \text{shrinkage}}

    and the prediction uses :math:`N^k_u(i)`, the ``k`` items rated by ``u`` most similar
    to ``i`` with :math:`s_{ij} > 0`:

    .. math::

        \hat r_{ui} = b_{ui} + \frac{\sum_{j \in N^k_u(i)} s_{ij} (r_{uj} - b_{uj})}
        {\sum_{j \in N^k_u(i)} s_{ij}}

    or :math:`b_{ui}` alone when fewer than ``min_k`` neighbours exist. With
    ``user_based=True`` the roles of users and items swap. The similarity matrix is dense,
    so the compared side is limited to :data:`MAX_DENSE` entities.

    Parameters
    ----------
    k, min_k : int
        Most and fewest neighbours used.
    shrinkage : float
        Shrinks similarities computed from few common ratings towards 0.
    user_based : bool
        Compare users instead of items.
    min_support : int
        Pairs with fewer common raters get similarity 0.
    bsl_reg_u, bsl_reg_i : float
        Baseline regularization of user and item biases.
    bsl_n_epochs : int
        Baseline ALS rounds.

    Attributes
    ----------
    mu_ : float.  bu_, bi_ : baseline biases.  sim_ : float32 (n, n) similarity matrix.
    """

    rating_model = True
    name = "knnbaseline"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "k": {"type": "int", "low": 10, "high": 200, "log": True, "grid": [20, 40, 80]},
        "min_k": {"type": "int", "low": 1, "high": 10, "grid": [1, 3, 5]},
        "shrinkage": {"type": "float", "low": 0.0, "high": 300.0, "grid": [0, 50, 100, 200]},
    }

    def __init__(
        self,
        k: int = 40,
        min_k: int = 1,
        shrinkage: float = 100.0,
        user_based: bool = False,
        min_support: int = 1,
        bsl_reg_u: float = 15.0,
        bsl_reg_i: float = 10.0,
        bsl_n_epochs: int = 10,
    ) -> None:
        self.k = k
        self.min_k = min_k
        self.shrinkage = shrinkage
        self.user_based = user_based
        self.min_support = min_support
        self.bsl_reg_u = bsl_reg_u
        self.bsl_reg_i = bsl_reg_i
        self.bsl_n_epochs = bsl_n_epochs

    def _sides(self, train: Dataset) -> tuple[tuple, tuple]:
        # (x-major, y-major) (indptr, indices, ratings); x is the compared side
        csr, csc = train.csr(), train.csc()
        u = (csr.indptr.astype(np.int64), csr.indices, csr.data)
        i = (csc.indptr.astype(np.int64), csc.indices, csc.data)
        return (u, i) if self.user_based else (i, u)

    def _fit(self, train: Dataset) -> None:
        self._check(self.k >= 1, f"k must be >= 1, got {self.k}")
        self._check(self.min_k >= 0, f"min_k must be >= 0, got {self.min_k}")
        self._check(self.shrinkage >= 0, f"shrinkage must be >= 0, got {self.shrinkage}")
        self._check(self.min_support >= 0, f"min_support must be >= 0, got {self.min_support}")
        self._check(self.bsl_n_epochs >= 1, "bsl_n_epochs must be >= 1")
        self._check(self.bsl_reg_u >= 0 and self.bsl_reg_i >= 0, "bsl_reg_* must be >= 0")
        side, n_x = ("users", train.n_users) if self.user_based else ("items", train.n_items)
        self._check(
            n_x <= MAX_DENSE,
            f"{n_x:,} {side} is too many for the dense similarity matrix (limit "
            f"{MAX_DENSE:,}, {4 * n_x * n_x / 1e9:.1f} GB needed); use the item-based "
            "model on fewer items (filter rare movies) or another model",
        )
        self.mu_, bu, bi = biases(train, self.bsl_reg_u, self.bsl_reg_i, self.bsl_n_epochs)
        self.bu_, self.bi_ = bu, bi
        xm, ym = self._sides(train)
        bx, by = (bu, bi) if self.user_based else (bi, bu)
        self.sim_ = pearson_baseline_sim(
            xm[0], xm[1], ym[0], ym[1], ym[2], self.mu_, bx, by,
            float(self.shrinkage), int(self.min_support),
        )  # fmt: skip
        # the y-major ratings used at prediction time
        self.y_indptr_, self.y_xs_, self.y_r_ = ym[0], ym[1].astype(np.int32), ym[2]

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        xs, ys = (users, items) if self.user_based else (items, users)
        bx, by = (self.bu_, self.bi_) if self.user_based else (self.bi_, self.bu_)
        return knn_baseline_predict(
            xs, ys, self.y_indptr_, self.y_xs_, self.y_r_, self.sim_, self.mu_, bx, by,
            int(self.k), int(self.min_k),
        )  # fmt: skip

    def _score(self, users: np.ndarray) -> np.ndarray:
        u = np.repeat(users, self.n_items_)
        i = np.tile(np.arange(self.n_items_, dtype=np.int64), users.size)
        return self._predict(u, i).reshape(users.size, self.n_items_).astype(np.float32)

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        if self.user_based:
            return super()._similar_scores(items)
        return self.sim_[items]
