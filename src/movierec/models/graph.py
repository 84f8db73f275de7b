"""P3alpha and RP3beta: item-item similarity from random walks on the user-item graph."""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.kernels.graph import walk_topk
from movierec.models.base import Recommender
from movierec.models.itemknn import (
    check_recency,
    fold_in_vector,
    interaction_matrix,
    neighbour_scores,
)


def neighbours_csr(nbr: np.ndarray, sim: np.ndarray, n: int) -> sp.csr_matrix:
    """n x n CSR from a kernel's padded (neighbours, weights) rows (-1 = padding, at the end)."""
    keep = nbr >= 0
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    return sp.csr_matrix((sim[keep], nbr[keep], indptr), shape=(n, n))


def l1_rows(x: sp.csr_matrix) -> sp.csr_matrix:
    """Each row of ``x`` divided by its sum (empty rows stay empty)."""
    s = np.asarray(x.sum(axis=1)).ravel()
    s[s == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / s) @ x)


class NeighbourScoring:
    """Scoring shared by models with a sparse item x item ``similarity_`` and a users x items
    ``user_items_``: a user's scores are ``x_u S``."""

    similarity_: sp.csr_matrix
    user_items_: sp.csr_matrix
    n_items_: int

    def _score(self, users: np.ndarray) -> np.ndarray:
        return neighbour_scores(self.user_items_, self.similarity_, users)

    def neighbour_product(self) -> tuple[sp.csr_matrix, sp.csr_matrix, None, None]:
        return self.user_items_, self.similarity_, None, None

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        # non-neighbours get -inf so similar_items lists only the kept neighbours
        rows = self.similarity_[items]
        out = np.full((items.size, self.n_items_), -np.inf, dtype=np.float32)
        out[np.repeat(np.arange(items.size), np.diff(rows.indptr)), rows.indices] = rows.data
        return out

    def _fold_in_row(self, it: np.ndarray, vals: np.ndarray) -> np.ndarray:
        x = sp.csr_matrix((vals, (np.zeros(it.size, np.int64), it)), shape=(1, self.n_items_))
        return neighbour_scores(x, self.similarity_, np.zeros(1, np.int64))[0]


class RatedNeighbourScoring(NeighbourScoring):
    """Neighbour scoring of the interaction matrix (``threshold``, ``binary`` and optional
    ``recency`` weighting, as ItemKNN), for the models whose similarity is fitted on it."""

    threshold: float
    binary: bool
    recency: float | None
    recency_floor: float

    def _set_user_items(self, train: Dataset, x: sp.csr_matrix) -> None:
        """``x`` (the fitted interactions) itself, or re-weighted by recency."""
        self.user_items_ = (
            x
            if self.recency is None
            else interaction_matrix(
                train, self.threshold, self.binary, self.recency, self.recency_floor
            )
        )

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Scores of a new user: ``x_new W`` (the same as a trained user's, exactly)."""
        self._require_fitted()  # type: ignore[attr-defined]
        it, vals = fold_in_vector(
            items, ratings, self.threshold, self.binary, self.recency, self.recency_floor
        )
        return self._fold_in_row(it, vals)


class P3alpha(RatedNeighbourScoring, Recommender):
    r"""P3alpha (Cooper et al. 2014), as in Dacrema et al. 2019: a three-step random walk.

    With X the interactions (ratings >= ``threshold``; 1 or the rating), P_ui = X
    row-normalized (user -> item) and P_iu = X^T row-normalized (item -> user), each entry
    raised to ``alpha``, the item-item weights are :math:`W = P_{iu}^{\alpha}
    P_{ui}^{\alpha}` (diagonal zero), computed by a numba kernel through the sparse
    structure; each item keeps its ``k`` largest, optionally row-normalized
    (``normalize``). A user's scores are :math:`x_u W`; a new user's the same (exact
    fold-in).

    Parameters
    ----------
    k : int
        Neighbours kept per item.
    alpha : float
        Exponent of the transition probabilities (1: the plain walk).
    normalize : bool
        Divide each kept row of W by its sum.
    threshold, binary : float, bool
        Ratings below ``threshold`` are not interactions; they count 1 or the rating.
    recency, recency_floor : float or None, float
        At scoring time weight a user's interactions by ``recency_floor + exp(-p /
        recency)``, p = how many of hers are more recent (as in ItemKNN and EASE); W is
        unaffected. ``fold_in`` then takes the pairs in time order (last = latest).
    """

    name = "p3alpha"
    search_space = {
        "k": {"type": "int", "low": 10, "high": 1000, "log": True, "grid": [50, 100, 200, 500]},
        "alpha": {"type": "float", "low": 0.0, "high": 2.0, "grid": [0.5, 0.8, 1.0, 1.2]},
        "normalize": {"type": "categorical", "choices": [True, False]},
    }

    def __init__(
        self,
        k: int = 100,
        alpha: float = 1.0,
        normalize: bool = False,
        threshold: float = 0.0,
        binary: bool = True,
        recency: float | None = None,
        recency_floor: float = 0.2,
    ) -> None:
        self.k = k
        self.alpha = alpha
        self.normalize = normalize
        self.threshold = threshold
        self.binary = binary
        self.recency = recency
        self.recency_floor = recency_floor

    def _beta(self) -> float:
        return 0.0

    def _fit(self, train: Dataset) -> None:
        self._check(int(self.k) >= 1, f"k must be >= 1, got {self.k}")
        self._check(self.alpha >= 0, f"alpha must be >= 0, got {self.alpha}")
        beta = self._beta()
        self._check(beta >= 0, f"beta must be >= 0, got {beta}")
        check_recency(self)
        x = interaction_matrix(train, self.threshold, self.binary)
        x.eliminate_zeros()
        self._check(x.nnz > 0, f"no training rating is >= threshold={self.threshold}")
        pui = l1_rows(x.astype(np.float64))
        piu = l1_rows(x.T.tocsr().astype(np.float64))
        if self.alpha != 1.0:
            pui.data **= self.alpha
            piu.data **= self.alpha
        pui.sort_indices()
        piu.sort_indices()
        deg = np.diff(x.tocsc().indptr).astype(np.float64)
        colw = np.zeros(self.n_items_)
        colw[deg > 0] = deg[deg > 0] ** -beta
        nbr, sim = walk_topk(
            piu.indptr.astype(np.int64),
            piu.indices.astype(np.int32),
            piu.data,
            pui.indptr.astype(np.int64),
            pui.indices.astype(np.int32),
            pui.data,
            colw,
            int(self.k),
            16 * nb.get_num_threads(),
        )
        w = neighbours_csr(nbr, sim, self.n_items_)
        self.similarity_ = (l1_rows(w) if self.normalize else w).astype(np.float32)
        self._set_user_items(train, x)


class RP3beta(P3alpha):
    r"""RP3beta (Paudel et al. 2017): P3alpha with a popularity penalty.

    Column j of the walk weights is divided by the popularity of j (its number of
    interactions) raised to ``beta``: :math:`W_{ij} = (P_{iu}^{\alpha}
    P_{ui}^{\alpha})_{ij} / \deg(j)^{\beta}` before the top-``k`` cut, so long-tail items
    get a fair share of the neighbourhoods. ``beta=0`` is P3alpha. Other parameters as
    :class:`P3alpha`.
    """

    name = "rp3beta"
    search_space = {
        **P3alpha.search_space,
        "beta": {"type": "float", "low": 0.0, "high": 1.0, "grid": [0.2, 0.4, 0.6, 0.8]},
    }

    def __init__(
        self,
        k: int = 100,
        alpha: float = 1.0,
        beta: float = 0.5,
        normalize: bool = False,
        threshold: float = 0.0,
        binary: bool = True,
        recency: float | None = None,
        recency_floor: float = 0.2,
    ) -> None:
        super().__init__(k, alpha, normalize, threshold, binary, recency, recency_floor)
        self.beta = beta

    def _beta(self) -> float:
        return float(self.beta)
