"""Bayesian personalized ranking (Rendle et al. 2009) by pairwise SGD."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.kernels.bpr import bpr_epoch, bpr_epoch_strata, group_by_item_block
from movierec.models.base import Recommender, factor_scores

NEGATIVES = ("uniform", "popularity")
#: Blocks of users and of items in the parallel schedule (fixed, so results do not depend
#: on the thread count; at most this many threads work at once).
STRATA = 16
#: ``parallel=True`` starts threads only from this many positives: below it an epoch lasts
#: milliseconds and waking threads for every round costs more than it saves.
PARALLEL_MIN_POSITIVES = 200_000


class BPR(Recommender):
    r"""Matrix factorization trained to rank each user's positives above other items.

    A positive is a rating >= ``threshold``. Each epoch draws as many (u, i, j) triples as
    there are positives: (u, i) uniformly among the positives, j uniformly over the
    catalogue (or by popularity, see ``negatives``; a j that u liked is skipped), and takes an SGD step that maximises

    .. math::

        \ln \sigma(\hat x_{ui} - \hat x_{uj})
        - \lambda (\|w_u\|^2 + \|h_i\|^2 + \|h_j\|^2 + b_i^2 + b_j^2)

    with :math:`\hat x_{ui} = w_u \cdot h_i + b_i`. As in the ``implicit`` library the item
    bias :math:`b_i` is an extra factor column whose user-side value is fixed to 1.

    Parameters
    ----------
    factors : int
        Latent dimension f (the bias column comes on top).
    learning_rate : float
    regularization : float
        :math:`\lambda`.
    iterations : int
        Epochs.
    threshold : float
        The lowest positive rating.
    negatives : {"uniform", "popularity"}
        How j is drawn: uniformly over the catalogue, or in proportion to the item's
        number of positives (the item of a uniformly drawn positive, as the ``implicit``
        library does), which pushes popular items down harder.
    parallel : bool
        True: each epoch runs on all numba threads without races and without locks. Users
        and items are cut into ``STRATA`` random blocks (items re-cut every epoch) and
        the epoch is ``STRATA`` rounds in which every user block trains against its own
        item block, positives and negatives both drawn inside it (stratified SGD as in
        DSGD, Gemulla et al. 2011). The same seed gives the same factors, whatever the
        number of threads. Threads start from ``PARALLEL_MIN_POSITIVES`` positives on.
        False: one thread over the whole catalogue (the reference schedule); the same
        seed also gives the same result.
    random_state : int
        Seed of the initial factors (uniform in [-0.5/f, 0.5/f]) and of the samplers.

    Attributes
    ----------
    user_factors_ : float32 (n_users, f + 1), the last column is 1
    item_factors_ : float32 (n_items, f + 1), the last column is the item bias
    """

    name = "bpr"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "factors": {"type": "int", "low": 16, "high": 256, "log": True, "grid": [32, 64, 128]},
        "learning_rate": {
            "type": "float",
            "low": 0.001,
            "high": 0.2,
            "log": True,
            "grid": [0.01, 0.05],
        },
        "regularization": {
            "type": "float",
            "low": 1e-05,
            "high": 0.1,
            "log": True,
            "grid": [0.0001, 0.01],
        },
        "iterations": {"type": "int", "low": 10, "high": 200, "log": True, "grid": [50, 100]},
    }

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        threshold: float = 4.0,
        negatives: str = "uniform",
        parallel: bool = True,
        random_state: int = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.threshold = threshold
        self.negatives = negatives
        self.parallel = parallel
        self.random_state = random_state

    def _fit(self, train: Dataset) -> None:
        self._check(int(self.factors) >= 1, f"factors must be >= 1, got {self.factors}")
        self._check(self.learning_rate > 0, "learning_rate must be > 0")
        self._check(self.regularization >= 0, "regularization must be >= 0")
        self._check(int(self.iterations) >= 1, "iterations must be >= 1")
        self._check(
            self.negatives in NEGATIVES,
            f"negatives must be one of {NEGATIVES}, got {self.negatives!r}",
        )
        keep = train.ratings >= self.threshold
        self._check(
            bool(keep.any()), f"no training rating is >= threshold={self.threshold}; lower it"
        )
        nu, ni, f = train.n_users, train.n_items, int(self.factors)
        m = sp.csr_matrix(
            (np.ones(int(keep.sum()), np.float32), (train.users[keep], train.items[keep])),
            shape=(nu, ni),
        )
        m.sum_duplicates()
        indptr = m.indptr.astype(np.int64)
        rows = np.repeat(np.arange(nu, dtype=np.int32), np.diff(indptr))
        rng = np.random.default_rng(self.random_state)
        U = ((rng.random((nu, f + 1)) - 0.5) / f).astype(np.float32)
        V = ((rng.random((ni, f + 1)) - 0.5) / f).astype(np.float32)
        U[:, f] = 1.0
        V[:, f] = 0.0
        self.user_factors_, self.item_factors_ = U, V
        lr, reg = np.float32(self.learning_rate), np.float32(self.regularization)
        pop = self.negatives == "popularity"
        t = max(1, min(STRATA, nu, ni))
        if not self.parallel or t == 1 or indptr[-1] < PARALLEL_MIN_POSITIVES:
            for epoch in range(int(self.iterations)):
                seeds = rng.integers(1, 2**63, size=1, dtype=np.uint64)
                bpr_epoch(rows, indptr, m.indices, U, V, lr, reg, seeds, pop)
                if self._epoch_done(epoch):
                    break
            return
        # fixed user blocks; entries grouped by user block, then by item block every epoch
        user_block = (rng.permutation(nu) % t).astype(np.int32)
        by_user = np.argsort(user_block[rows], kind="stable").astype(np.int64)
        user_off = np.r_[0, np.cumsum(np.bincount(user_block[rows], minlength=t))].astype(np.int64)
        grouped = np.empty_like(by_user)
        off = np.empty((t, t + 1), np.int64)
        item_block = np.empty(ni, np.int32)
        for epoch in range(int(self.iterations)):
            perm = rng.permutation(ni)
            item_block[perm] = np.arange(ni) % t
            by_item = np.concatenate([perm[b::t] for b in range(t)]).astype(np.int32)
            item_off = np.r_[0, np.cumsum([perm[b::t].size for b in range(t)])].astype(np.int64)
            group_by_item_block(by_user, user_off, m.indices, item_block, grouped, off)
            seeds = rng.integers(1, 2**63, size=(t, t), dtype=np.uint64)
            bpr_epoch_strata(
                rows, indptr, m.indices, grouped, off, by_item, item_off, U, V, lr, reg, seeds, pop
            )
            if self._epoch_done(epoch):
                break

    def _score(self, users: np.ndarray) -> np.ndarray:
        return factor_scores(self.user_factors_[users], self.item_factors_)

    def _dot_users(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users]

    def _dot_items(self) -> np.ndarray:
        return self.item_factors_

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_[:, :-1]
