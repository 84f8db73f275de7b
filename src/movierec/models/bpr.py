"""Bayesian personalized ranking (Rendle et al. 2009) by pairwise SGD."""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from movierec.data.dataset import Dataset
from movierec.kernels.bpr import bpr_epoch
from movierec.models.base import Recommender, factor_scores

NEGATIVES = ("uniform", "popularity")


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
        True: the epoch's samples are split over all numba threads, which update the shared
        factors without locks (Hogwild); each thread has its own generator seeded from
        ``random_state``, but the thread interleaving makes results vary slightly between
        runs. False: one thread, the same seed gives the same result.
    random_state : int
        Seed of the initial factors (uniform in [-0.5/f, 0.5/f]) and of the samplers.

    Attributes
    ----------
    user_factors_ : float32 (n_users, f + 1), the last column is 1
    item_factors_ : float32 (n_items, f + 1), the last column is the item bias
    """

    name = "bpr"

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
        n_threads = nb.get_num_threads() if self.parallel else 1
        lr, reg = np.float32(self.learning_rate), np.float32(self.regularization)
        for epoch in range(int(self.iterations)):
            seeds = rng.integers(1, 2**63, size=n_threads, dtype=np.uint64)
            bpr_epoch(rows, indptr, m.indices, U, V, lr, reg, seeds, self.negatives == "popularity")
            if self._epoch_done(epoch):
                break

    def _score(self, users: np.ndarray) -> np.ndarray:
        return factor_scores(self.user_factors_[users], self.item_factors_)

    def item_vectors(self) -> np.ndarray:
        return self.item_factors_[:, :-1]
