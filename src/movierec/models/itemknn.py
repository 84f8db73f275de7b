"""Item-kNN: cosine similarity between items' rating vectors, top-k neighbours per item."""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.kernels.itemknn import cosine_topk
from movierec.kernels.sparse_dense import rows_times_csr, rows_times_dense
from movierec.models.base import Recommender

WEIGHTINGS = ("none", "bm25", "tfidf")
SIMILARITIES = ("cosine", "dot")


def interaction_matrix(
    train: Dataset,
    threshold: float,
    binary: bool,
    recency: float | None = None,
    floor: float = 0.2,
) -> sp.csr_matrix:
    """Users x items float32 CSR of interactions: ratings >= ``threshold``, 1 or the rating.

    With ``recency`` (a number of ratings) each interaction is multiplied by
    ``floor + exp(-p / recency)``, p = 0 for the user's latest interaction, 1 for the one
    before (order: timestamp, then item index), so recent tastes weigh more.
    """
    keep = train.ratings >= threshold
    u, i, r = train.users[keep], train.items[keep], train.ratings[keep]
    vals = np.ones(u.size, np.float32) if binary else r.astype(np.float32)
    if recency is not None:
        order = np.lexsort((i, train.timestamps[keep], u))
        ends = np.cumsum(np.bincount(u, minlength=train.n_users))
        pos = np.empty(u.size, dtype=np.float64)
        pos[order] = ends[u[order]] - 1 - np.arange(u.size)
        vals = vals * recency_weight(pos, recency, floor)
    x = sp.csr_matrix((vals, (u, i)), shape=(train.n_users, train.n_items), dtype=np.float32)
    x.sum_duplicates()
    x.sort_indices()
    return x


def neighbour_scores(
    x: sp.csr_matrix, s: sp.csr_matrix | np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Dense float32 ``x[rows] @ s`` (users' interaction rows times a sparse or dense item x
    item matrix), by the parallel kernels: the neighbour models' scores of a block of users."""
    f32 = np.float32
    x = x.tocsr()  # no copy when already CSR
    rows = np.asarray(rows, np.int64)
    out = np.zeros((rows.size, s.shape[1]), dtype=f32)
    xd = np.asarray(x.data, f32)
    if isinstance(s, np.ndarray):
        rows_times_dense(x.indptr, x.indices, xd, rows, np.ascontiguousarray(s, f32), out)
    else:
        s = s.tocsr()
        sd = np.asarray(s.data, f32)
        rows_times_csr(x.indptr, x.indices, xd, rows, s.indptr, s.indices, sd, out)
    return out


def recency_weight(pos_from_end: np.ndarray, recency: float, floor: float) -> np.ndarray:
    """``floor + exp(-p / recency)`` for positions p counted back from the latest rating."""
    return (floor + np.exp(-np.asarray(pos_from_end, np.float64) / recency)).astype(np.float32)


def fold_in_vector(
    items: np.ndarray,
    ratings: np.ndarray,
    threshold: float,
    binary: bool,
    recency: float | None = None,
    floor: float = 0.2,
) -> tuple[np.ndarray, np.ndarray]:
    """(items, values) of a new user's interaction row; the pairs are taken in time order
    (the last pair is the latest) when ``recency`` is set."""
    items = np.asarray(items, dtype=np.int64)
    r = np.asarray(ratings, dtype=np.float32)
    keep = r >= threshold
    it = items[keep]
    vals = np.ones(it.size, np.float32) if binary else r[keep]
    if recency is not None:
        vals = vals * recency_weight(np.arange(it.size)[::-1], recency, floor)
    return it, vals


def bm25_weight(x: sp.csr_matrix, k1: float = 100.0, b: float = 0.8) -> sp.csr_matrix:
    """BM25 weighting of an items x users matrix, as ``implicit.nearest_neighbours``.

    ``w_iu = x_iu (k1 + 1) / (k1 ((1 - b) + b len_i / mean len) + x_iu) idf_u`` with
    ``idf_u = log(n_items) - log(1 + n_u)``, ``len_i`` the row sum of item i.
    """
    c = x.tocoo()
    n = float(c.shape[0])
    idf = np.log(n) - np.log1p(np.bincount(c.col, minlength=c.shape[1]))
    row_sums = np.asarray(x.sum(axis=1)).ravel()
    length_norm = (1.0 - b) + b * row_sums / max(row_sums.mean(), 1e-12)
    data = c.data * (k1 + 1.0) / (k1 * length_norm[c.row] + c.data) * idf[c.col]
    return sp.csr_matrix((data.astype(np.float32), (c.row, c.col)), shape=c.shape)


def tfidf_weight(x: sp.csr_matrix) -> sp.csr_matrix:
    """TF-IDF weighting of an items x users matrix: ``sqrt(x_iu) idf_u`` (as ``implicit``)."""
    c = x.tocoo()
    n = float(c.shape[0])
    idf = np.log(n) - np.log1p(np.bincount(c.col, minlength=c.shape[1]))
    data = np.sqrt(c.data) * idf[c.col]
    return sp.csr_matrix((data.astype(np.float32), (c.row, c.col)), shape=c.shape)


class ItemKNN(Recommender):
    r"""Item-based k-nearest neighbours with cosine similarity (top-N ranking).

    The user-item interaction matrix X holds ratings >= ``threshold``, as 1
    (``binary=True``) or as the rating. Optionally the items x users matrix is reweighted
    (``weighting="bm25"`` or ``"tfidf"``, the functions of the ``implicit`` library) before
    the similarity

    .. math:: s_{ij} = \frac{x_i \cdot x_j}{\lVert x_i \rVert \lVert x_j \rVert + \text{shrink}}

    (or the plain dot product, ``similarity="dot"``) is computed by a numba kernel through the sparse structure (never a dense
    n_items x n_items matrix); each item keeps its ``k`` most similar items. A user's score
    of item j is :math:`\sum_{i \in I_u} x_{ui} s_{ij}`, the similarity to her liked items
    (weighted by the rating when ``binary=False``).

    Parameters
    ----------
    k : int
        Neighbours kept per item.
    threshold : float
        Ratings below it are ignored (not interactions).
    binary : bool
        Interactions count 1 (True) or their rating (False).
    weighting : {"none", "bm25", "tfidf"}
    shrink : float
        Added to the cosine denominator; damps similarities resting on few users.
    similarity : {"cosine", "dot"}
        ``"dot"`` skips the norms (s_ij = x_i . x_j / (1 + shrink)); with ``weighting="bm25"``
        or ``"tfidf"`` that is exactly ``implicit``'s BM25Recommender / TFIDFRecommender,
        whose BM25 length normalization a cosine would cancel.
    bm25_k1, bm25_b : float
        BM25 parameters (only with ``weighting="bm25"``).
    recency : float or None
        When set, a user's interactions are weighted at scoring time by
        ``recency_floor + exp(-p / recency)``, p = how many of her interactions are more
        recent (0 for the latest); the similarities are unaffected. ``fold_in`` then takes
        the pairs in time order (last = latest).
    recency_floor : float
        The weight every interaction keeps however old (with ``recency``).
    """

    name = "itemknn"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "k": {"type": "int", "low": 10, "high": 1000, "log": True, "grid": [20, 50, 100, 200, 500]},
        "shrink": {"type": "float", "low": 0.0, "high": 200.0, "grid": [0, 10, 50]},
        "weighting": {"type": "categorical", "choices": ["none", "tfidf", "bm25"]},
        "binary": {"type": "categorical", "choices": [True, False]},
    }

    def __init__(
        self,
        k: int = 100,
        threshold: float = 0.0,
        binary: bool = True,
        weighting: str = "none",
        shrink: float = 0.0,
        similarity: str = "cosine",
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        recency: float | None = None,
        recency_floor: float = 0.2,
    ) -> None:
        self.k = k
        self.threshold = threshold
        self.binary = binary
        self.weighting = weighting
        self.shrink = shrink
        self.similarity = similarity
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.recency = recency
        self.recency_floor = recency_floor

    def _fit(self, train: Dataset) -> None:
        self._check(int(self.k) >= 1, f"k must be >= 1, got {self.k}")
        self._check(
            self.weighting in WEIGHTINGS,
            f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}",
        )
        self._check(
            self.similarity in SIMILARITIES,
            f"similarity must be one of {SIMILARITIES}, got {self.similarity!r}",
        )
        self._check(self.shrink >= 0, f"shrink must be >= 0, got {self.shrink}")
        check_recency(self)
        x = interaction_matrix(train, self.threshold, self.binary)
        self._check(x.nnz > 0, f"no training rating is >= threshold={self.threshold}")
        xt = x.T.tocsr()  # items x users
        if self.weighting == "bm25":
            xt = bm25_weight(xt, self.bm25_k1, self.bm25_b)
        elif self.weighting == "tfidf":
            xt = tfidf_weight(xt)
        xt.eliminate_zeros()
        xt.sort_indices()
        xu = xt.T.tocsr()
        xu.sort_indices()
        nbr, sim = cosine_topk(
            xt.indptr.astype(np.int64),
            xt.indices.astype(np.int32),
            xt.data.astype(np.float64),
            xu.indptr.astype(np.int64),
            xu.indices.astype(np.int32),
            xu.data.astype(np.float64),
            int(self.k),
            float(self.shrink),
            16 * nb.get_num_threads(),
            self.similarity == "cosine",
        )
        keep = nbr >= 0
        counts = keep.sum(axis=1)
        indptr = np.zeros(self.n_items_ + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        # rows of the kernel output are sorted best first; padding is at the end
        self.similarity_ = sp.csr_matrix(
            (sim[keep], nbr[keep], indptr), shape=(self.n_items_, self.n_items_)
        )
        self.user_items_ = (
            x
            if self.recency is None
            else interaction_matrix(
                train, self.threshold, self.binary, self.recency, self.recency_floor
            )
        )

    def _score(self, users: np.ndarray) -> np.ndarray:
        return neighbour_scores(self.user_items_, self.similarity_, users)

    def neighbour_product(self) -> tuple[sp.csr_matrix, sp.csr_matrix, None, None]:
        return self.user_items_, self.similarity_, None, None

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        # non-neighbours get -inf so similar_items lists only the kept neighbours
        rows = self.similarity_[items]
        out = np.full((items.size, self.n_items_), -np.inf, dtype=np.float32)
        r = np.repeat(np.arange(items.size), np.diff(rows.indptr))
        out[r, rows.indices] = rows.data
        return out

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Scores of a new user: ``sum_i x_i s_ij`` over her rated items at/above threshold."""
        self._require_fitted()
        it, vals = fold_in_vector(
            items, ratings, self.threshold, self.binary, self.recency, self.recency_floor
        )
        x = sp.csr_matrix((vals, (np.zeros(it.size, np.int64), it)), shape=(1, self.n_items_))
        return neighbour_scores(x, self.similarity_, np.zeros(1, np.int64))[0]


def check_recency(model: Recommender) -> None:
    rec, floor = model.recency, model.recency_floor  # type: ignore[attr-defined]
    model._check(rec is None or rec > 0, f"recency must be > 0 or None, got {rec}")
    model._check(floor >= 0, f"recency_floor must be >= 0, got {floor}")
