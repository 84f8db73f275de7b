"""EASE: the closed-form shallow autoencoder of Steck (2019)."""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.kernels.sparse_dense import gram_lower
from movierec.models.base import Recommender
from movierec.models.itemknn import (
    check_recency,
    fold_in_vector,
    interaction_matrix,
    neighbour_scores,
)

DTYPES = ("float32", "float64")


def mirror_lower(g: np.ndarray) -> None:
    """Copy the lower triangle of the square ``g`` onto its upper one, in place, in blocks."""
    n = g.shape[0]
    step = max(1, 4_000_000 // max(n, 1))
    for a in range(0, n, step):
        b = min(n, a + step)
        g[a:b, b:] = g[b:, a:b].T
        blk = g[a:b, a:b]
        blk[...] = np.tril(blk) + np.tril(blk, -1).T


def item_gram(x: sp.csr_matrix, dtype: str | type, full: bool = True) -> np.ndarray:
    """The dense item x item ``X^T X`` of the users x items CSR ``x``, in ``dtype``, summed in
    float64 on every core; only its lower triangle when ``full`` is False (the upper one is
    then uninitialised)."""
    x = x if x.has_sorted_indices else x.sorted_indices()
    xt = x.T.tocsr()
    g = np.empty((x.shape[1], x.shape[1]), dtype=dtype)
    gram_lower(xt.indptr, xt.indices, xt.data, x.indptr, x.indices, x.data, g)
    if full:
        mirror_lower(g)
    return g


def ease_weights(g: np.ndarray, l2: float) -> np.ndarray:
    """EASE item-item weights from the Gram matrix ``g`` (overwritten in place, returned).

    ``P = (G + l2 I)^-1`` by an in-place Cholesky inverse (LAPACK potrf/potri), then
    ``B = I - P diagMat(1 / diag(P))``, i.e. ``B_ij = -P_ij / P_jj`` and ``B_jj = 0``.
    Only one dense n x n array is ever held.
    """
    n = g.shape[0]
    g[np.diag_indices(n)] += l2
    potrf, potri = la.get_lapack_funcs(("potrf", "potri"), (g,))
    # g is symmetric: its transpose is the same matrix, Fortran-ordered, so LAPACK works in place
    f = g.T
    c, info = potrf(f, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        raise ConfigError(f"EASE: the Gram matrix + l2 I is not positive definite (info={info})")
    p, info = potri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise ConfigError(f"EASE: inversion failed (info={info}); increase l2")
    if not np.shares_memory(p, g):  # pragma: no cover - LAPACK wrapper copied
        g[...] = p.T
    mirror_lower(g)  # the inverse sits in g's lower triangle (C order)
    d = np.diag(g).copy()
    g /= -d[None, :]
    g[np.diag_indices(n)] = 0.0
    return g


class EASE(Recommender):
    r"""Embarrassingly Shallow AutoEncoder (Steck, WWW 2019) for top-N ranking.

    With X the users x items interaction matrix (ratings >= ``threshold``; 1 or the
    rating), EASE solves :math:`\min_B \lVert X - XB \rVert_F^2 + \lambda \lVert B
    \rVert_F^2` subject to :math:`\operatorname{diag}(B) = 0`, in closed form:

    .. math:: P = (X^\top X + \lambda I)^{-1}, \qquad
              B = I - P \,\operatorname{diagMat}(1 \oslash \operatorname{diag}(P)),

    so :math:`B_{ij} = -P_{ij} / P_{jj}` and :math:`B_{jj} = 0`. A user's scores are
    :math:`x_u B`; a new user's are :math:`x_{new} B` (exact fold-in).

    Memory: the Gram matrix is built and inverted in place, one dense m x m array of
    ``dtype`` (m = items used), plus an m x m float32 copy of B when ``dtype="float64"``.
    When that exceeds ``max_memory_gb`` a :class:`ConfigError` says how many items fit;
    ``max_items`` keeps only the m most popular training items (the rest get score -inf
    and are counted in ``items_excluded_``).

    Parameters
    ----------
    l2 : float
        The L2 penalty lambda (Steck uses a few hundred; tune on validation).
    threshold : float
        Ratings below it are not interactions.
    binary : bool
        Interactions count 1 (True) or their rating (False).
    max_items : int or None
        Keep only this many most popular items (None: all).
    max_memory_gb : float
        Refuse to allocate dense item x item matrices above this size.
    dtype : {"float64", "float32"}
        Precision of the Gram matrix and its inverse.
    recency : float or None
        When set, the user row :math:`x_u` used for scoring weights each interaction by
        ``recency_floor + exp(-p / recency)``, p = how many of her interactions are more
        recent (0 for the latest); B is learned from the unweighted X. On temporal splits
        this helps a lot (next items follow the latest tastes). ``fold_in`` then takes the
        pairs in time order (last = latest).
    recency_floor : float
        The weight every interaction keeps however old (with ``recency``).
    """

    name = "ease"
    #: fit is one Gram matrix and one inverse: LAPACK uses every core
    blas_threads = 0
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "l2": {
            "type": "float",
            "low": 1.0,
            "high": 10000.0,
            "log": True,
            "grid": [50, 200, 500, 1000, 3000],
        }
    }

    def __init__(
        self,
        l2: float = 500.0,
        threshold: float = 0.0,
        binary: bool = True,
        max_items: int | None = None,
        max_memory_gb: float = 8.0,
        dtype: str = "float64",
        recency: float | None = None,
        recency_floor: float = 0.2,
    ) -> None:
        self.l2 = l2
        self.threshold = threshold
        self.binary = binary
        self.max_items = max_items
        self.max_memory_gb = max_memory_gb
        self.dtype = dtype
        self.recency = recency
        self.recency_floor = recency_floor

    @staticmethod
    def memory_bytes(n_items: int, dtype: str = "float64") -> int:
        """Bytes of the dense item x item arrays EASE holds for ``n_items`` items."""
        itemsize = np.dtype(dtype).itemsize
        return n_items * n_items * (itemsize + (4 if itemsize != 4 else 0))

    def _fit(self, train: Dataset) -> None:
        self._check(self.l2 > 0, f"l2 must be > 0, got {self.l2}")
        self._check(self.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        self._check(
            self.max_items is None or int(self.max_items) >= 1,
            f"max_items must be >= 1 or None, got {self.max_items}",
        )
        self._check(self.max_memory_gb > 0, "max_memory_gb must be > 0")
        check_recency(self)
        x = interaction_matrix(train, self.threshold, self.binary)
        self._check(x.nnz > 0, f"no training rating is >= threshold={self.threshold}")
        n = self.n_items_
        m = n if self.max_items is None else min(n, int(self.max_items))
        need = self.memory_bytes(m, self.dtype)
        limit = self.max_memory_gb * 2**30
        if need > limit:
            per = np.dtype(self.dtype).itemsize + (4 if self.dtype != "float32" else 0)
            fit = int(math.isqrt(int(limit // per)))
            raise ConfigError(
                f"EASE: {m} items need {need / 2**30:.3g} GiB of dense item x item {self.dtype} "
                f"matrices, above max_memory_gb={self.max_memory_gb}; the data has {n} items "
                f"and about {fit} fit. Restrict the items with max_items={fit} (keeps the most "
                "popular), use dtype='float32', or raise max_memory_gb"
            )
        if m < n:
            counts = np.asarray((x != 0).sum(axis=0)).ravel()
            # most popular first, ties by lower index; kept sorted for stable column order
            order = np.lexsort((np.arange(n), -counts))
            kept = np.sort(order[:m]).astype(np.int32)
            x = x[:, kept].tocsr()
        else:
            kept = np.arange(n, dtype=np.int32)
        self.kept_items_ = kept
        self.items_excluded_ = int(n - m)
        g = item_gram(x, self.dtype, full=False)  # ease_weights reads the lower triangle
        self.weights_ = ease_weights(g, float(self.l2)).astype(np.float32, copy=False)
        if self.recency is not None:
            x = interaction_matrix(
                train, self.threshold, self.binary, self.recency, self.recency_floor
            )
            if m < n:
                x = x[:, kept].tocsr()
        self.user_items_ = x.astype(np.float32)

    def _expand(self, s: np.ndarray) -> np.ndarray:
        if self.items_excluded_ == 0:
            return np.asarray(s, dtype=np.float32)
        out = np.full((s.shape[0], self.n_items_), -np.inf, dtype=np.float32)
        out[:, self.kept_items_] = s
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._expand(neighbour_scores(self.user_items_, self.weights_, users))

    def neighbour_product(self) -> tuple[sp.csr_matrix, np.ndarray, None, np.ndarray]:
        return self.user_items_, self.weights_, None, self.kept_items_

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        # row i of B: how much liking i adds to every other item's score
        col = np.full(self.n_items_, -1, dtype=np.int64)
        col[self.kept_items_] = np.arange(self.kept_items_.size)
        c = col[items]
        out = np.full((items.size, self.kept_items_.size), -np.inf, dtype=np.float32)
        out[c >= 0] = self.weights_[c[c >= 0]]
        return self._expand(out)

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Scores of a new user: ``x_new B`` (the same as a trained user's, exactly)."""
        self._require_fitted()
        it, vals = fold_in_vector(
            items, ratings, self.threshold, self.binary, self.recency, self.recency_floor
        )
        col = np.full(self.n_items_, -1, dtype=np.int64)
        col[self.kept_items_] = np.arange(self.kept_items_.size)
        c = col[it]
        v = vals[c >= 0]
        x = np.zeros(self.kept_items_.size, dtype=np.float32)
        x[c[c >= 0]] = v
        return self._expand((x @ self.weights_)[None, :])[0]
