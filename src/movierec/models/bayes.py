"""Bayesian matrix factorization by Gibbs sampling (BPMF with SVD++ and time-bin terms)."""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.kernels.als import als_predict
from movierec.kernels.gibbs import (
    sample_bin_biases,
    sample_implicit,
    sample_rows,
    sum_squared_errors,
)
from movierec.models.base import Recommender, biased_vectors, factor_scores

_SEED_MAX = 2**31 - 1 - 10_000_000  # room for per-row offsets


def _wishart(rng: np.random.Generator, w: np.ndarray, nu: float) -> np.ndarray:
    """A draw of Wishart(W, nu) by the Bartlett decomposition."""
    d = w.shape[0]
    chol = np.linalg.cholesky(w)
    a = np.tril(rng.standard_normal((d, d)), -1)
    a[np.diag_indices(d)] = np.sqrt(rng.chisquare(nu - np.arange(d)))
    la = chol @ a
    return la @ la.T


def normal_wishart(rng: np.random.Generator, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw (precision, mean) of the rows of ``x`` from their Normal-Wishart posterior.

    Prior (Salakhutdinov & Mnih 2008): mean 0, ``beta0 = 2``, ``W0 = I``, ``nu0 = d``.
    """
    n, d = x.shape
    beta0, nu0 = 2.0, float(d)
    xbar = x.mean(axis=0) if n else np.zeros(d)
    xc = x - xbar
    w_inv = np.eye(d) + xc.T @ xc + (beta0 * n / (beta0 + n)) * np.outer(xbar, xbar)
    w = np.linalg.inv(w_inv)
    lam = _wishart(rng, (w + w.T) / 2, nu0 + n)
    beta = beta0 + n
    mean = n * xbar / beta
    ch = np.linalg.cholesky(beta * lam)
    mean = mean + np.linalg.solve(ch.T, rng.standard_normal(d))
    return lam, mean


class BayesMF(Recommender):
    r"""Bayesian biased matrix factorization sampled by Gibbs (BPMF), optionally with SVD++
    implicit feedback and time-bin item biases (Rendle, Zhang & Koren 2019).

    .. math::
        \hat r_{ui} = \mu + b_u + b_i + b_{i,\mathrm{bin}(t)}
        + q_i^\top \Big(p_u + |N(u)|^{-1/2} \sum_{j \in N(u)} y_j\Big)

    with :math:`r_{ui} \sim \mathcal N(\hat r_{ui}, \alpha^{-1})`. The vectors
    :math:`[p_u, b_u]` have a Normal prior whose mean and precision have a Normal-Wishart
    hyperprior (Salakhutdinov & Mnih 2008), likewise :math:`[q_i, b_i]` and :math:`y_j`;
    :math:`\alpha` and the time-bin biases' precision have Gamma(1, 1) priors;
    :math:`\mu` is the training mean. Each sweep draws the hyperparameters, every user's
    :math:`[p_u, b_u]` (rows in parallel), every item's :math:`[q_i, b_i]`, then each
    :math:`y_j` in turn from its exact conditional (see
    :func:`movierec.kernels.gibbs.sample_implicit`), the time-bin biases, and
    :math:`\alpha`. No learning rate and no regularization to tune.

    Prediction is the posterior mean, estimated by averaging over the sweeps after
    ``burn_in``. Biases are linear, so their average over every such sweep is kept; the
    product :math:`q_i^\top (p_u + z_u)` is not, so every ``thin``-th sweep's factors are
    kept (the last sweep always) and stored side by side: ``U_`` holds the K kept user
    vectors :math:`(p_u + z_u) / K` concatenated, ``V_`` the K item vectors, so a score
    is one product of width :math:`K \cdot` ``n_factors`` (K =
    ``len(alpha_samples_)``), and ``predict`` and ``score`` of any pair are exact
    averages over the kept sweeps. Memory of the model is K times that of one MF.

    Predictions carry no timestamp: with ``time_bins`` they use each item's most recent
    bin (the right one for a temporal split; on random splits keep ``time_bins=0``).

    Parameters
    ----------
    n_factors : int
        Latent dimension k.
    n_samples : int
        Gibbs sweeps in all, burn-in included; the fit callback is called after each.
    burn_in : int
        Sweeps discarded before averaging (< n_samples).
    thin : int
        Keep the factors of every ``thin``-th sweep after burn-in.
    implicit : bool
        Add the SVD++ term :math:`|N(u)|^{-1/2} \sum_{j \in N(u)} y_j` (costs
        ``n_users * k^2`` floats of memory while sampling, about twice the time).
    time_bins : int
        Equal-width time bins of the training period for item biases (0: none).
    init_std : float
        Standard deviation of the initial factors.
    random_state : int
        Seed of everything (the same seed gives the same model).

    Attributes
    ----------
    mu_ : float
    bu_, bi_ : float32 arrays, biases averaged over the sweeps after burn-in (``bi_``
        includes the most recent bin's bias).
    U_, V_ : float32 arrays (n_users, K k), (n_items, K k), the kept sweeps' vectors.
    alpha_samples_ : float64 array, the noise precision of each kept sweep.
    train_rmse_ : float64 array, training RMSE of each sweep's draw.
    """

    rating_model = True
    name = "bayesmf"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        # Gibbs costs ~k^2 per rating: on ml-100k k=64 took 14x the time of k=10, and was worse
        "n_factors": {"type": "int", "low": 4, "high": 40, "log": True, "grid": [5, 10, 20, 40]},
        "n_samples": {"type": "int", "low": 50, "high": 300, "log": True, "grid": [100, 200]},
        "implicit": {"type": "categorical", "choices": [True, False]},
    }

    def __init__(
        self,
        n_factors: int = 10,
        n_samples: int = 200,
        burn_in: int = 40,
        thin: int = 2,
        implicit: bool = True,
        time_bins: int = 0,
        init_std: float = 0.1,
        random_state: int = 0,
    ) -> None:
        self.n_factors = n_factors
        self.n_samples = n_samples
        self.burn_in = burn_in
        self.thin = thin
        self.implicit = implicit
        self.time_bins = time_bins
        self.init_std = init_std
        self.random_state = random_state

    def _validate(self) -> None:
        def is_int(v: Any) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool)

        self._check(
            is_int(self.n_factors) and self.n_factors >= 1,
            f"n_factors must be an integer >= 1, got {self.n_factors!r}",
        )
        self._check(
            is_int(self.n_samples) and self.n_samples >= 1,
            f"n_samples must be an integer >= 1, got {self.n_samples!r}",
        )
        self._check(
            is_int(self.burn_in) and 0 <= self.burn_in < self.n_samples,
            f"burn_in must be an integer in 0..n_samples-1, got {self.burn_in!r}",
        )
        self._check(is_int(self.thin) and self.thin >= 1, f"thin must be >= 1, got {self.thin!r}")
        self._check(
            is_int(self.time_bins) and self.time_bins >= 0,
            f"time_bins must be an integer >= 0, got {self.time_bins!r}",
        )
        self._check(self.init_std >= 0, f"init_std must be >= 0, got {self.init_std}")

    def _fit(self, train: Dataset) -> None:
        self._validate()
        rng = np.random.default_rng(self.random_state)
        k, nu, ni = int(self.n_factors), train.n_users, train.n_items
        users, items = train.users.astype(np.int64), train.items.astype(np.int64)
        ratings = train.ratings.astype(np.float64)
        by_u = np.lexsort((items, users))
        by_i = np.lexsort((users, items))
        u_ptr = np.zeros(nu + 1, np.int64)
        np.cumsum(np.bincount(users, minlength=nu), out=u_ptr[1:])
        i_ptr = np.zeros(ni + 1, np.int64)
        np.cumsum(np.bincount(items, minlength=ni), out=i_ptr[1:])
        u_items, u_r = items[by_u].astype(np.int32), ratings[by_u]
        i_users, i_r = users[by_i].astype(np.int32), ratings[by_i]
        has_u, has_i = np.diff(u_ptr) > 0, np.diff(i_ptr) > 0

        n_bins = int(self.time_bins)
        if n_bins:
            ts = train.timestamps.astype(np.float64)
            lo, span = ts.min(), max(ts.max() - ts.min(), 1.0)
            bins = np.minimum(((ts - lo) / span * n_bins).astype(np.int64), n_bins - 1)
            u_bin, i_bin = bins[by_u], bins[by_i]
        bt = np.zeros((ni, max(n_bins, 1)))
        lam_t = 1.0

        mu = float(ratings.mean())
        p = rng.normal(0.0, self.init_std, (nu, k))
        q = rng.normal(0.0, self.init_std, (ni, k))
        bu, bi = np.zeros(nu), np.zeros(ni)
        y = np.zeros((ni, k))
        z = np.zeros((nu, k))
        no_z = np.zeros((0, k))
        u_off = np.full(ratings.size, mu)
        i_off = np.full(ratings.size, mu)
        alpha = 2.0

        keep: list[tuple[np.ndarray, ...]] = []
        bu_sum, bi_sum, n_avg = np.zeros(nu), np.zeros(ni), 0
        losses = []
        for s in range(int(self.n_samples)):
            seeds = rng.integers(0, _SEED_MAX, size=4)
            lam_u, m_u = normal_wishart(rng, np.column_stack([p, bu])[has_u])
            sample_rows(u_ptr, u_items, u_r, u_off, q, bi, z if self.implicit else no_z,
                        p, bu, alpha, lam_u, m_u, int(seeds[0]))  # fmt: skip
            pz = p + z
            lam_i, m_i = normal_wishart(rng, np.column_stack([q, bi])[has_i])
            sample_rows(i_ptr, i_users, i_r, i_off, pz, bu, no_z, q, bi, alpha, lam_i, m_i,
                        int(seeds[1]))  # fmt: skip
            if self.implicit:
                lam_y, m_y = normal_wishart(rng, y[has_i])
                sample_implicit(u_ptr, u_items, u_r, u_off, i_ptr, i_users, bu, p, z, q, bi,
                                y, alpha, lam_y, m_y, int(seeds[2]))  # fmt: skip
                pz = p + z
            if n_bins:
                sample_bin_biases(i_ptr, i_users, i_r, i_bin, mu, bu, pz, q, bi, bt, alpha,
                                  lam_t, int(seeds[3]))  # fmt: skip
                lam_t = rng.gamma(1.0 + bt.size / 2, 1.0 / (1.0 + 0.5 * float((bt * bt).sum())))
                i_off = mu + bt[items[by_i], i_bin]
                u_off = mu + bt[u_items, u_bin]
            sse = sum_squared_errors(u_ptr, u_items, u_r, u_off, bu, pz, q, bi)
            losses.append(np.sqrt(sse / ratings.size))
            alpha = rng.gamma(1.0 + ratings.size / 2, 1.0 / (1.0 + sse / 2))
            stop = self._epoch_done(s)
            if s >= self.burn_in:
                bu_sum += bu
                bi_sum += bi + bt[:, -1]
                n_avg += 1
            last = stop or s == self.n_samples - 1
            if (s >= self.burn_in and (self.n_samples - 1 - s) % self.thin == 0) or (
                last and not keep
            ):
                keep.append((pz.copy(), q.copy(), y.copy(), bi + bt[:, -1], lam_u, m_u, alpha))
            if stop:
                break
        if n_avg == 0:  # stopped during burn-in: the last draw alone
            bu_sum, bi_sum, n_avg = bu, bi + bt[:, -1], 1
        n_keep = len(keep)
        self.mu_ = mu
        self.bu_ = (bu_sum / n_avg).astype(np.float32)
        self.bi_ = (bi_sum / n_avg).astype(np.float32)
        self.U_ = (np.hstack([kp[0] for kp in keep]) / n_keep).astype(np.float32)
        self.V_ = np.hstack([kp[1] for kp in keep]).astype(np.float32)
        self.Y_ = np.hstack([kp[2] for kp in keep]).astype(np.float32) if self.implicit else None
        self.bi_samples_ = np.stack([kp[3] for kp in keep]).astype(np.float32)
        self.lam_samples_ = np.stack([kp[4] for kp in keep])
        self.m_samples_ = np.stack([kp[5] for kp in keep])
        self.alpha_samples_ = np.array([kp[6] for kp in keep], dtype=np.float64)
        self.train_rmse_ = np.asarray(losses)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return als_predict(users, items, self.U_, self.V_, self.bu_, self.bi_, self.mu_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        s = factor_scores(self.U_[users], self.V_)
        s += self.bi_[None, :]
        s += (self.mu_ + self.bu_[users])[:, None]
        return s

    def _dot_users(self, users: np.ndarray) -> np.ndarray:
        return biased_vectors(self.U_[users], self.mu_ + self.bu_[users], 1.0, users.size)

    def _dot_items(self) -> np.ndarray:
        return biased_vectors(self.V_, 1.0, self.bi_, self.n_items_)

    def item_vectors(self) -> np.ndarray:
        """The kept sweeps' item factors side by side (for cosine ``similar_items``)."""
        return self.V_

    def fold_in(self, items: Any, ratings: Any) -> np.ndarray:
        """Scores over all items for a new user, items fixed at each kept sweep.

        For every kept sweep, the user's ``[p_u, b_u]`` is the mean of its conditional
        (that sweep's item factors, biases, prior and noise precision); the scores are
        averaged over the sweeps.
        """
        self._require_fitted()
        it = self._items(items)
        r = np.atleast_1d(np.asarray(ratings, dtype=np.float64))
        self._check(it.size == r.size and it.size > 0, "give as many ratings as items (>= 1)")
        k, n_keep = int(self.n_factors), self.alpha_samples_.size
        uniq = np.unique(it)
        out = np.zeros(self.n_items_, dtype=np.float64)
        for s in range(n_keep):
            q = self.V_[:, s * k : (s + 1) * k].astype(np.float64)
            bi = self.bi_samples_[s].astype(np.float64)
            zu = np.zeros(k)
            if self.Y_ is not None:
                zu = self.Y_[uniq, s * k : (s + 1) * k].sum(axis=0) / np.sqrt(uniq.size)
            f = np.column_stack([q[it], np.ones(it.size)])
            t = r - self.mu_ - bi[it] - q[it] @ zu
            lam, alpha = self.lam_samples_[s], self.alpha_samples_[s]
            x = np.linalg.solve(lam + alpha * f.T @ f, lam @ self.m_samples_[s] + alpha * f.T @ t)
            out += self.mu_ + x[k] + bi + q @ (x[:k] + zu)
        return (out / n_keep).astype(np.float32)
