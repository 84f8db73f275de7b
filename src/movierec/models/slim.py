"""SLIM: sparse linear item-item model by non-negative ElasticNet (Ning & Karypis 2011)."""

from __future__ import annotations

import math

import numba as nb
import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.kernels.slim import slim_columns
from movierec.models.base import Recommender
from movierec.models.ease import item_gram
from movierec.models.graph import RatedNeighbourScoring
from movierec.models.itemknn import check_recency, interaction_matrix


class SLIM(RatedNeighbourScoring, Recommender):
    r"""SLIM with ElasticNet weights (Ning & Karypis 2011; Dacrema et al. 2019's setup).

    For every item j, with X the interactions (ratings >= ``threshold``; 1 or the rating)
    and n the number of users, the column :math:`w_j` solves scikit-learn's
    ``ElasticNet(alpha, l1_ratio, positive=True, fit_intercept=False)`` problem

    .. math:: \min_{w \ge 0,\ w_j = 0} \frac{1}{2n}\lVert x_j - X w\rVert^2
              + \alpha\rho \lVert w\rVert_1 + \frac{\alpha(1-\rho)}{2}\lVert w\rVert^2

    by a numba coordinate-descent kernel on the dense Gram matrix :math:`X^\top X`, columns
    in parallel; each column keeps its ``k`` largest weights (a sparse W). A user's scores
    are :math:`x_u W`; a new user's the same (exact fold-in).

    Items whose co-occurrence with j is at most :math:`n\alpha\rho` are provably zero in
    :math:`w_j`; of the rest, ``n_candidates`` with the largest co-occurrence are solved
    for (None: all, the exact solution). Memory: one dense m x m float32 Gram matrix
    (m = items used); above ``max_memory_gb`` a :class:`ConfigError` says how many fit, and
    ``max_items`` keeps only the m most popular items (the others get no weights, score 0,
    and are counted in ``items_excluded_``).

    Parameters
    ----------
    alpha, l1_ratio : float
        ElasticNet penalty and its L1 share (scikit-learn's names).
    k : int
        Weights kept per column.
    n_candidates : int or None
        Candidate items per column (largest co-occurrence first); None: all.
    max_iter, tol : int, float
        Coordinate-descent sweeps per column, and the relative change that stops them.
    max_items : int or None
        Keep only this many most popular items (None: all).
    max_memory_gb : float
        Refuse a dense Gram matrix above this size.
    threshold, binary : float, bool
        Ratings below ``threshold`` are not interactions; they count 1 or the rating.
    recency, recency_floor : float or None, float
        At scoring time weight a user's interactions by ``recency_floor + exp(-p /
        recency)`` (as in ItemKNN and EASE); W is unaffected.
    """

    name = "slim"
    search_space = {
        "alpha": {
            "type": "float",
            "low": 1e-2,
            "high": 10.0,
            "log": True,
            "grid": [0.1, 0.3, 1.0, 3.0],
        },
        "l1_ratio": {
            "type": "float",
            "low": 1e-4,
            "high": 0.5,
            "log": True,
            "grid": [0.001, 0.003, 0.01, 0.1],
        },
        "k": {"type": "int", "low": 20, "high": 500, "log": True, "grid": [50, 100, 200]},
    }

    def __init__(
        self,
        alpha: float = 1.0,
        l1_ratio: float = 0.003,
        k: int = 100,
        n_candidates: int | None = 1000,
        max_iter: int = 50,
        tol: float = 1e-4,
        max_items: int | None = None,
        max_memory_gb: float = 8.0,
        threshold: float = 0.0,
        binary: bool = True,
        recency: float | None = None,
        recency_floor: float = 0.2,
    ) -> None:
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.k = k
        self.n_candidates = n_candidates
        self.max_iter = max_iter
        self.tol = tol
        self.max_items = max_items
        self.max_memory_gb = max_memory_gb
        self.threshold = threshold
        self.binary = binary
        self.recency = recency
        self.recency_floor = recency_floor

    def _fit(self, train: Dataset) -> None:
        self._check(self.alpha > 0, f"alpha must be > 0, got {self.alpha}")
        self._check(0 <= self.l1_ratio <= 1, f"l1_ratio must be in [0, 1], got {self.l1_ratio}")
        self._check(int(self.k) >= 1, f"k must be >= 1, got {self.k}")
        nc = self.n_candidates
        self._check(nc is None or int(nc) >= 1, f"n_candidates must be >= 1 or None, got {nc}")
        self._check(int(self.max_iter) >= 1, f"max_iter must be >= 1, got {self.max_iter}")
        self._check(self.tol >= 0, f"tol must be >= 0, got {self.tol}")
        mi = self.max_items
        self._check(mi is None or int(mi) >= 1, f"max_items must be >= 1 or None, got {mi}")
        self._check(self.max_memory_gb > 0, "max_memory_gb must be > 0")
        check_recency(self)
        x = interaction_matrix(train, self.threshold, self.binary)
        x.eliminate_zeros()
        self._check(x.nnz > 0, f"no training rating is >= threshold={self.threshold}")
        n = self.n_items_
        m = n if mi is None else min(n, int(mi))
        need, limit = 4 * m * m, self.max_memory_gb * 2**30
        if need > limit:
            fit = int(math.isqrt(int(limit // 4)))
            raise ConfigError(
                f"SLIM: {m} items need a {need / 2**30:.3g} GiB dense Gram matrix, above "
                f"max_memory_gb={self.max_memory_gb}; the data has {n} items and about {fit} "
                f"fit. Restrict the items with max_items={fit} (keeps the most popular) or "
                "raise max_memory_gb"
            )
        counts = np.diff(x.tocsc().indptr)
        # most popular first, ties by lower index; kept sorted for a stable column order
        kept = np.sort(np.lexsort((np.arange(n), -counts))[:m]).astype(np.int32)
        xm = x[:, kept].tocsr() if m < n else x
        gram = item_gram(xm, np.float32)
        nu = float(train.n_users)
        src, wts = slim_columns(
            gram,
            nu * self.alpha * self.l1_ratio,
            nu * self.alpha * (1.0 - self.l1_ratio),
            0 if nc is None else int(nc),
            int(self.k),
            int(self.max_iter),
            float(self.tol),
            16 * nb.get_num_threads(),
        )
        del gram
        keep = src >= 0
        tgt = np.repeat(kept, keep.sum(axis=1))
        # row i of similarity_ is how much item i adds to every item's score
        self.similarity_ = sp.csr_matrix(
            (wts[keep], (kept[src[keep]], tgt)), shape=(n, n), dtype=np.float32
        )
        self.similarity_.sort_indices()
        self.kept_items_ = kept
        self.items_excluded_ = int(n - m)
        self._set_user_items(train, x)
