"""A sequential baseline: item-to-item transitions weighted by recency."""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.kernels.sequential import transition_topk
from movierec.kernels.sparse import coo_to_csr_order
from movierec.models.base import Recommender
from movierec.models.graph import NeighbourScoring, l1_rows, neighbours_csr


class SequentialTransitions(NeighbourScoring, Recommender):
    r"""Next-item ranking from item-to-item transitions in users' time-ordered histories.

    Each user's training interactions (ratings >= ``threshold``) are ordered by
    (timestamp, item index), as :func:`movierec.split.temporal_per_user` orders them.
    Every item i at position p adds ``decay ** (d - 1)`` to :math:`T_{ij}` for the item j
    at position p + d, 1 <= d <= ``window`` (and ``backward`` times that to
    :math:`T_{ji}`: MovieLens users rate many movies in one sitting, so the order within
    a session is partly arbitrary). Rows of T keep their ``k`` largest entries and, with
    ``normalize``, are divided by their sum (transition probabilities). A user's scores
    are :math:`\sum_{t < n_{last}} \text{recency\_decay}^t\, T_{i_t}` over her
    ``n_last`` latest items (t = 0 the latest), plus ``pop_weight`` times the items'
    training popularity scaled to [0, 1] (it orders the items no transition reaches).
    ``fold_in`` takes a new user's pairs in time order (last = latest).

    Parameters
    ----------
    window : int
        How many following items each item leads to.
    decay : float
        Weight factor per extra step of distance within the window.
    backward : float
        Weight of the reverse transitions (0: forward only).
    n_last : int
        How many of the user's latest items score.
    recency_decay : float
        Weight factor per step back from the latest item.
    k : int
        Transitions kept per item.
    normalize : bool
        Divide each row of T by its sum.
    pop_weight : float
        Weight of the popularity term.
    threshold : float
        Ratings below it are not interactions.
    """

    name = "sequential"
    search_space = {
        "window": {"type": "int", "low": 1, "high": 20, "log": True, "grid": [1, 3, 5, 10]},
        "decay": {"type": "float", "low": 0.1, "high": 1.0, "grid": [0.5, 0.8, 1.0]},
        "backward": {"type": "float", "low": 0.0, "high": 1.0, "grid": [0.0, 0.5, 1.0]},
        "n_last": {"type": "int", "low": 1, "high": 50, "log": True, "grid": [1, 3, 5, 10]},
        "recency_decay": {"type": "float", "low": 0.1, "high": 1.0, "grid": [0.5, 0.8, 1.0]},
    }

    def __init__(
        self,
        window: int = 20,
        decay: float = 0.8,
        backward: float = 0.5,
        n_last: int = 5,
        recency_decay: float = 0.5,
        k: int = 200,
        normalize: bool = True,
        pop_weight: float = 0.01,
        threshold: float = 0.0,
    ) -> None:
        self.window = window
        self.decay = decay
        self.backward = backward
        self.n_last = n_last
        self.recency_decay = recency_decay
        self.k = k
        self.normalize = normalize
        self.pop_weight = pop_weight
        self.threshold = threshold

    def _fit(self, train: Dataset) -> None:
        for name in ("window", "n_last", "k"):
            v = getattr(self, name)
            self._check(int(v) >= 1, f"{name} must be >= 1, got {v}")
        for name in ("decay", "recency_decay"):
            v = getattr(self, name)
            self._check(0 < v <= 1, f"{name} must be in (0, 1], got {v}")
        self._check(self.backward >= 0, f"backward must be >= 0, got {self.backward}")
        self._check(self.pop_weight >= 0, f"pop_weight must be >= 0, got {self.pop_weight}")
        keep = train.ratings >= self.threshold
        self._check(bool(keep.any()), f"no training rating is >= threshold={self.threshold}")
        u, i, ts = train.users[keep], train.items[keep], train.timestamps[keep]
        order = np.lexsort((i, ts, u))
        u, i = u[order], i[order].astype(np.int32)
        indptr, _ = coo_to_csr_order(u, self.n_users_)
        n = self.n_items_
        counts = np.diff(indptr)
        occ = np.argsort(i, kind="stable")
        occ_indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(i, minlength=n), out=occ_indptr[1:])
        nbr, val = transition_topk(
            i,
            np.repeat(indptr[:-1], counts),
            np.repeat(indptr[1:], counts),
            occ_indptr,
            occ.astype(np.int64),
            int(self.window),
            float(self.decay),
            float(self.backward),
            int(self.k),
            16 * nb.get_num_threads(),
        )
        w = neighbours_csr(nbr, val, n)
        self.similarity_ = (l1_rows(w) if self.normalize else w).astype(np.float32)
        # each user's n_last latest items, weighted recency_decay ** (steps back)
        ends = np.repeat(indptr[1:], counts)
        back = ends - 1 - np.arange(u.size)
        last = back < int(self.n_last)
        self.user_items_ = sp.csr_matrix(
            (self._weights(back[last]), (u[last], i[last])), shape=(self.n_users_, n)
        )
        cnt = np.bincount(i, minlength=n).astype(np.float32)
        self.popularity_ = cnt / max(float(cnt.max()), 1.0)

    def _weights(self, back: np.ndarray) -> np.ndarray:
        return (float(self.recency_decay) ** back.astype(np.float64)).astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = super()._score(users)
        if self.pop_weight:
            s += np.float32(self.pop_weight) * self.popularity_[None, :]
        return s

    def neighbour_product(self) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray | None, None]:
        x, s, _, _ = super().neighbour_product()
        pop = np.float32(self.pop_weight) * self.popularity_ if self.pop_weight else None
        return x, s, pop, None

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Scores of a new user from (item, rating) pairs in time order (last = latest)."""
        self._require_fitted()
        it = np.asarray(items, dtype=np.int64)[np.asarray(ratings) >= self.threshold]
        it = it[::-1][: int(self.n_last)]
        s = self._fold_in_row(it, self._weights(np.arange(it.size)))
        if self.pop_weight:
            s += np.float32(self.pop_weight) * self.popularity_
        return s
