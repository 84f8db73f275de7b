"""The Recommender base class shared by every model.

A model stores only keyword params in ``__init__`` (so ``get_params``/``set_params`` and
cloning work), learns in ``fit(train)`` and keeps what it learned in attributes ending
with ``_``. It provides ``_fit(train)`` and ``_score(users)`` (dense scores over all items
for users with training history); rating models also provide ``_predict(users, items)``.
``recommend``, ``similar_items``, ``predict`` and the unknown-id policy live here, on one
top-K kernel.

Learned state (what artifacts save) is every attribute ending with ``_`` whose value is
a numpy array, a scipy sparse matrix, a scalar (int, float, str, bool, None), a list or
tuple of scalars, or a nested :class:`Recommender`.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ClassVar

import numba as nb
import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError, UnknownIdError
from movierec.kernels.baseline import baseline_als
from movierec.kernels.topk import because_cosine, topk_dot, topk_rows

POLICIES = ("fallback", "error")
_PARALLEL_CELLS = 1 << 22
_BLAS: dict[str, Any] = {"controller": None, "depth": 0, "limiter": None}
_BLAS_LOCK = threading.Lock()


@contextmanager
def blas_limit(n: int | None = 1) -> Iterator[None]:
    """Limit BLAS (OpenBLAS/MKL) to ``n`` threads inside the block (0: as many as this
    process has cores, even where ``OPENBLAS_NUM_THREADS=1`` set fewer); None leaves it alone.

    Fit and score run under it: numba kernels and :func:`factor_scores`' thread pool own
    the cores, and BLAS threads started beside them (or spinning after a call) only slow
    them down. This is what ``OPENBLAS_NUM_THREADS=1`` did, without the variable and
    without slowing a user's other numpy code. Nested and concurrent blocks share one limit.
    """
    if n is None:
        yield
        return
    if n == 0:
        n = len(os.sched_getaffinity(0))
    with _BLAS_LOCK:
        if _BLAS["depth"] == 0:
            if _BLAS["controller"] is None:
                from threadpoolctl import ThreadpoolController

                _BLAS["controller"] = ThreadpoolController()
            _BLAS["limiter"] = _BLAS["controller"].limit(limits=n, user_api="blas")
        _BLAS["depth"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS["depth"] -= 1
            if _BLAS["depth"] == 0:
                _BLAS["limiter"].restore_original_limits()
                _BLAS["limiter"] = None


class Recommender:
    """Base class: scikit-learn style params, fit/score/recommend/similar_items/predict.

    Unknown users (no training ratings) and unknown items follow the ``unknown`` policy of
    each call: ``"fallback"`` serves them by a stated fallback (training popularity for
    ranking, for every model; the user/item biases for rating prediction) and ``"error"``
    raises :class:`UnknownIdError`. The evaluator counts how many users each policy served.
    """

    #: True for models that predict ratings (their ``score`` is a predicted rating).
    rating_model: ClassVar[bool] = False
    #: Short registry name, set by subclasses.
    name: ClassVar[str] = "model"
    #: Search space of tuning: param -> {"type": "int"|"float"|"categorical", "low", "high",
    #: "log", "grid", "choices"} (see movierec.experiment.tuning); empty: not tuned.
    search_space: ClassVar[dict[str, dict[str, Any]]] = {}
    #: BLAS threads during fit and score (see :func:`blas_limit`); 0 for models whose fit
    #: is one large BLAS/LAPACK call that wants every core (EASE), None for hybrids (each
    #: sub-model sets its own).
    blas_threads: ClassVar[int | None] = 1

    # -- params ---------------------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor parameters and their current values."""
        return {n: getattr(self, n) for n in self._param_names()}

    def set_params(self, **params: Any) -> Recommender:
        """Set constructor parameters; unknown names raise :class:`ConfigError`."""
        valid = set(self._param_names())
        for k, v in params.items():
            if k not in valid:
                raise ConfigError(
                    f"{type(self).__name__} has no parameter {k!r}; valid: {sorted(valid)}"
                )
            setattr(self, k, v)
        return self

    def clone(self) -> Recommender:
        """An unfitted copy with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check(self, cond: bool, message: str) -> None:
        """Raise a ConfigError naming this model when a parameter check fails."""
        if not cond:
            raise ConfigError(f"{type(self).__name__}: {message}")

    # -- fitting --------------------------------------------------------------------------
    def fit(self, train: Dataset, callback: Any = None) -> Recommender:
        """Learn from ``train``; returns self.

        ``callback(epoch, model)``, when given, is called after each epoch by iterative
        models; returning True stops training early (used by tuning to prune).
        """
        if train.n_ratings == 0:
            raise ConfigError(f"{type(self).__name__}: the training data has no ratings")
        csr = train.csr()
        self.n_users_ = train.n_users
        self.n_items_ = train.n_items
        self.seen_indptr_ = csr.indptr.astype(np.int64)
        # shared with the data set's matrix, not copied into every model
        self.seen_indices_ = csr.indices.astype(np.int32, copy=False)
        self.user_count_ = np.diff(self.seen_indptr_).astype(np.int32)
        self.item_count_ = train.item_counts().astype(np.int32)
        self.rating_scale_ = tuple(train.rating_scale)
        if self.rating_model:
            self.global_mean_, self.fallback_bu_, self.fallback_bi_ = biases(train)
        self._callback = callback
        try:
            with blas_limit(self.blas_threads):
                self._fit(train)
        finally:
            self._callback = None
            self.__dict__.pop("_dot_items_of", None)
        self.user_signal_ = None
        with blas_limit(self.blas_threads):
            self.user_signal_ = self._signal_users(train)
        return self

    def _signal_users(self, train: Dataset) -> np.ndarray | None:
        """Mask of the users this model can rank for, or None for every user with ratings.

        A model that learns only from ratings >= its ``threshold`` param (implicit ALS,
        thresholded EASE or item-kNN) knows nothing about a user whose training ratings are
        all below it: her score row is constant (all zero). Such users, found here by
        scoring only those below the threshold, are served by the ranking fallback and
        counted as fallback users like users without ratings. Models whose no-signal users
        do not score constant override this.
        """
        t = getattr(self, "threshold", None)
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            return None
        above = np.bincount(train.users[train.ratings >= t], minlength=train.n_users)
        suspects = np.flatnonzero((self.user_count_ > 0) & (above == 0))
        flat = []
        for a in range(0, suspects.size, 1024):
            s = np.asarray(self._score(suspects[a : a + 1024]), dtype=np.float32)
            fin = np.isfinite(s)
            hi = np.where(fin, s, -np.inf).max(axis=1, initial=-np.inf)
            lo = np.where(fin, s, np.inf).min(axis=1, initial=np.inf)
            flat.append(suspects[a : a + 1024][~(hi > lo)])  # one value (or none) to rank by
        none = np.concatenate(flat) if flat else np.zeros(0, np.int64)
        if none.size == 0:
            return None
        mask = self.user_count_ > 0
        mask[none] = False
        return mask

    def _epoch_done(self, epoch: int) -> bool:
        """Report an epoch to the fit callback; True means stop."""
        cb = getattr(self, "_callback", None)
        self.__dict__.pop("_dot_items_of", None)  # the factors are being learned in place
        return bool(cb(epoch, self)) if cb is not None else False

    def _fit(self, train: Dataset) -> None:
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Dense float32 scores (len(users) x n_items) for users with training history."""
        raise NotImplementedError

    def _require_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise ConfigError(f"{type(self).__name__} is not fitted; call fit(train) first")

    # -- ids and policies -----------------------------------------------------------------
    def _users(self, users: Any) -> np.ndarray:
        self._require_fitted()
        u = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if u.size and (u.min() < 0 or u.max() >= self.n_users_):
            raise UnknownIdError(f"user index out of range 0..{self.n_users_ - 1}")
        return u

    def _items(self, items: Any) -> np.ndarray:
        i = np.atleast_1d(np.asarray(items, dtype=np.int64))
        if i.size and (i.min() < 0 or i.max() >= self.n_items_):
            raise UnknownIdError(f"item index out of range 0..{self.n_items_ - 1}")
        return i

    def known_users(self, users: Any) -> np.ndarray:
        """Boolean mask: which users the model can rank for (others need the policy): those
        with training ratings that give it a signal (see :meth:`_signal_users`)."""
        return self._known(self._users(users))

    def _known(self, u: np.ndarray) -> np.ndarray:
        known = self.user_count_[u] > 0
        signal = getattr(self, "user_signal_", None)
        return known if signal is None else known & signal[u]

    def _policy(self, unknown: str, n_unknown: int, what: str) -> None:
        if unknown not in POLICIES:
            raise ConfigError(f"unknown policy {unknown!r}; choose one of {POLICIES}")
        if n_unknown and unknown == "error":
            raise UnknownIdError(
                f"{n_unknown} {what} without training ratings (or none the model can use); "
                "pass unknown='fallback' to serve them by the fallback"
            )

    def _fallback_scores(self, n: int) -> np.ndarray:
        """Ranking scores for users without history: training popularity, for every model
        (a baseline rating would put rarely rated movies with a few high ratings first)."""
        row = self.item_count_.astype(np.float32)
        return np.broadcast_to(row, (n, self.n_items_)).copy()

    # -- scoring and ranking --------------------------------------------------------------
    def score(self, users: Any, items: Any = None, unknown: str = "fallback") -> np.ndarray:
        """Scores of ``items`` (default: all) for each user, float32 (len(users) x len(items))."""
        u = self._users(users)
        known = self._known(u)
        self._policy(unknown, int((~known).sum()), "user(s)")
        with blas_limit(self.blas_threads):
            if known.all():
                out = np.asarray(self._score(u), dtype=np.float32)
            else:
                out = np.empty((u.size, self.n_items_), dtype=np.float32)
                if known.any():
                    out[known] = self._score(u[known])
                out[~known] = self._fallback_scores(int((~known).sum()))
        if items is not None:
            out = out[:, self._items(items)]
        return out

    def _seen_rows(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        starts, ends = self.seen_indptr_[u], self.seen_indptr_[u + 1]
        lens = ends - starts
        indptr = np.zeros(u.size + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        idx = np.repeat(starts - indptr[:-1], lens) + np.arange(indptr[-1])
        return indptr, self.seen_indices_[idx]

    def recommend(
        self,
        users: Any,
        k: int = 10,
        exclude_seen: bool = True,
        unknown: str = "fallback",
        batch_size: int = 2048,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items per user, best first: (items int32, scores float32), each (n, k').

        ``k'`` is ``min(k, n_items)``; rows with fewer candidates (everything seen) are
        padded with item -1 and score -inf.
        """
        self._check(k >= 1, f"k must be >= 1, got {k}")
        u = self._users(users)
        items = np.empty((u.size, min(k, self.n_items_)), dtype=np.int32)
        scores = np.empty(items.shape, dtype=np.float32)
        known = self._known(u)
        V = self.dot_items() if known.any() else None
        rest = np.arange(u.size)
        if V is not None:
            # known users: A @ V.T ranked tile by tile, the dense scores never materialized
            self._policy(unknown, int((~known).sum()), "user(s)")
            A = np.ascontiguousarray(self._dot_users(u[known]), dtype=np.float32)
            ip, ix = self.seen_indptr_, self.seen_indices_
            if not exclude_seen:
                ip, ix = np.zeros(self.n_users_ + 1, np.int64), np.empty(0, np.int32)
            with blas_limit(self.blas_threads):
                items[known], scores[known] = topk_dot(A, V, k, ip, ix, u[known])
            rest = rest[~known]
        for a in range(0, rest.size, batch_size):
            rows = rest[a : a + batch_size]
            s = self.score(u[rows], unknown=unknown)
            if exclude_seen:
                ip, ix = self._seen_rows(u[rows])
            else:
                ip, ix = np.zeros(rows.size + 1, np.int64), np.empty(0, np.int32)
            items[rows], scores[rows] = topk_rows(s, k, ip, ix)
        return items, scores

    def _dot_items(self) -> np.ndarray | None:
        """Item vectors V with ``_score(users) == _dot_users(users) @ V.T`` (up to float32
        rounding), for models that score so, else None. Biases ride along as extra columns
        (:func:`biased_vectors`)."""
        return None

    def _dot_users(self, users: np.ndarray) -> np.ndarray:
        """The user vectors of :meth:`_dot_items` (users with history)."""
        raise NotImplementedError

    def neighbour_product(self) -> tuple[Any, Any, Any, Any] | None:
        """(X, S, base, kept) for the neighbour models, whose scores are a users x items CSR
        ``X`` times an item x item matrix ``S`` (CSR, or dense on the items ``kept`` only,
        the others scoring -inf) plus a float32 row ``base`` (or None), the product added
        up as :func:`~movierec.models.itemknn.neighbour_scores` does; None for the others.
        The evaluator then ranks without dense score rows of the whole catalogue."""
        return None

    def dot_items(self) -> np.ndarray | None:
        """:meth:`_dot_items` as C-contiguous float32, built once per fit: ``recommend``,
        the evaluator and the server then rank ``_dot_users(users) @ V.T`` tile by tile
        (:func:`~movierec.kernels.topk.topk_dot`) without dense score rows."""
        got = self.__dict__.get("_dot_items_of")
        if got is None:
            V = self._dot_items()
            got = (None if V is None else np.ascontiguousarray(V, dtype=np.float32),)
            self.__dict__["_dot_items_of"] = got
        return got[0]

    # -- item similarity --------------------------------------------------------------------
    def item_vectors(self) -> np.ndarray:
        """Item embedding used for cosine similar_items; models without one override
        :meth:`_similar_scores` instead."""
        raise ConfigError(f"{type(self).__name__} has no item similarity")

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        v = np.asarray(self.item_vectors(), dtype=np.float32)
        norms = np.linalg.norm(v, axis=1)
        norms[norms == 0] = 1.0
        vn = v / norms[:, None]
        return vn[items] @ vn.T

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar items to each item (the item itself excluded)."""
        self._require_fitted()
        self._check(k >= 1, f"k must be >= 1, got {k}")
        it = self._items(items)
        s = np.ascontiguousarray(self._similar_scores(it), dtype=np.float32)
        ip = np.arange(it.size + 1, dtype=np.int64)
        return topk_rows(s, k, ip, it.astype(np.int32))

    def _explain_similarity(self, recs: np.ndarray, liked: np.ndarray) -> np.ndarray:
        """Similarity of each recommended item (rows) to each liked item (columns)."""
        s = self._similar_scores(recs)
        s = s.toarray() if hasattr(s, "toarray") else np.asarray(s)
        return s[:, liked]

    def _cosine_vectors(self) -> np.ndarray | None:
        """The item vectors (float32) when this model's item similarity is their cosine
        (the default :meth:`_similar_scores`) and it has them, else None."""
        if type(self)._similar_scores is not Recommender._similar_scores:
            return None
        try:
            v = self.item_vectors()
        except (ConfigError, NotImplementedError, AttributeError):
            return None
        return np.asarray(v, dtype=np.float32)  # a strided view is read in place

    def explain_many(self, users: list[tuple[Any, Any, Any]], n: int = 2) -> list[list[list[int]]]:
        """:meth:`explain` of several users, given as (items, ratings, recs): a model whose
        similarity is the cosine of its item vectors explains them all in one kernel call
        (:func:`~movierec.kernels.topk.because_cosine`), the others one by one."""
        V = self._cosine_vectors()
        if V is None or not users:
            return [self._explain_by_similarity(i, r, c, n) for i, r, c in users]
        recs_l, liked_l = [], []
        for user_items, user_ratings, recs in users:
            items = np.atleast_1d(np.asarray(user_items, dtype=np.int64))
            r = np.atleast_1d(np.asarray(user_ratings, dtype=np.float32))
            recs_l.append(np.atleast_1d(np.asarray(recs, dtype=np.int64)))
            liked_l.append(items[r >= max(float(r.mean()), 3.5)] if items.size else items)
        rp, lp = (np.cumsum([0, *(x.size for x in xs)]) for xs in (recs_l, liked_l))
        got = because_cosine(
            V, np.concatenate(recs_l), rp, np.concatenate(liked_l), lp, max(int(n), 0)
        ).tolist()
        return [
            [[x for x in row if x >= 0] for row in got[a:b]]
            for a, b in zip(rp, rp[1:], strict=False)
        ]

    def explain(self, user_items: Any, user_ratings: Any, recs: Any, n: int = 2) -> list[list[int]]:
        """For each recommended item, up to ``n`` of the user's liked items that contributed
        most to it, most similar first (item indices; ``[]`` where there is no signal).

        Liked items are those rated at least ``max(her mean, 3.5)``; contribution is the
        model's item similarity (:meth:`_similar_scores`, or cosine of
        :meth:`item_vectors`), positive values only. Models without item similarity that
        hold fitted sub-models (hybrids' ``models_``) explain with the first sub-model
        that has one; models with neither give ``[]`` everywhere.
        """
        return self.explain_many([(user_items, user_ratings, recs)], n)[0]

    def _explain_by_similarity(
        self, user_items: Any, user_ratings: Any, recs: Any, n: int
    ) -> list[list[int]]:
        """:meth:`explain` from :meth:`_similar_scores` (models that have no cosine of
        item vectors), or from the first sub-model that explains."""
        recs = np.atleast_1d(np.asarray(recs, dtype=np.int64))
        items = np.atleast_1d(np.asarray(user_items, dtype=np.int64))
        r = np.atleast_1d(np.asarray(user_ratings, dtype=np.float32))
        out: list[list[int]] = [[] for _ in range(recs.size)]
        if items.size == 0 or recs.size == 0 or n < 1:
            return out
        liked = items[r >= max(float(r.mean()), 3.5)]
        valid = recs >= 0
        if liked.size == 0 or not valid.any():
            return out
        try:
            sims = np.asarray(self._explain_similarity(recs[valid], liked), dtype=np.float32)
        except (ConfigError, NotImplementedError, AttributeError):
            for sub in getattr(self, "models_", None) or []:
                if isinstance(sub, Recommender):
                    got = sub.explain(items, r, recs, n)
                    if any(got):
                        return got
            return out
        sims = np.where(np.isfinite(sims) & (sims > 0), sims, -np.inf)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :n]
        positive = np.take_along_axis(sims, order, axis=1) > 0
        picked = liked[order]
        for row, pos in enumerate(np.flatnonzero(valid)):
            out[pos] = picked[row][positive[row]].tolist()
        return out

    # -- new users -----------------------------------------------------------------------
    def fold_in(self, items: Any, ratings: Any) -> np.ndarray:
        """Scores over all items for a new user given a few (item, rating) pairs."""
        raise ConfigError(f"{type(self).__name__} cannot place a new user without retraining")

    def recommend_new(self, items: Any, ratings: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` for a new user from (item, rating) pairs, the rated items excluded."""
        self._require_fitted()
        it = self._items(items)
        r = np.atleast_1d(np.asarray(ratings, dtype=np.float32))
        self._check(it.size == r.size and it.size > 0, "give as many ratings as items (>= 1)")
        s = np.asarray(self.fold_in(it, r), dtype=np.float32)[None, :]
        i, v = topk_rows(s, k, np.array([0, it.size], np.int64), it.astype(np.int32))
        return i[0], v[0]

    # -- rating prediction ----------------------------------------------------------------
    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(
        self,
        users: Any,
        items: Any,
        unknown: str = "fallback",
        return_fallback: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Predicted ratings of (user, item) pairs, clipped to the training rating scale.

        Pairs whose user or item has no training rating are served by the biases fallback
        (global mean + the known side's bias) under ``unknown="fallback"``, or raise under
        ``"error"``. With ``return_fallback=True`` also returns the mask of such pairs.
        """
        if not self.rating_model:
            raise ConfigError(f"{type(self).__name__} ranks items and does not predict ratings")
        u, i = self._users(users), self._items(items)
        self._check(u.size == i.size, "users and items must have the same length")
        ku, ki = self.user_count_[u] > 0, self.item_count_[i] > 0
        ok = ku & ki
        self._policy(unknown, int((~ok).sum()), "pair(s) with an unknown user or item")
        out = np.empty(u.size, dtype=np.float64)
        if ok.any():
            out[ok] = self._predict(u[ok], i[ok])
        bad = ~ok
        if bad.any():
            out[bad] = (
                self.global_mean_
                + np.where(ku[bad], self.fallback_bu_[u[bad]], 0.0)
                + np.where(ki[bad], self.fallback_bi_[i[bad]], 0.0)
            )
        lo, hi = self.rating_scale_
        out = np.clip(out, lo, hi).astype(np.float32)
        return (out, bad) if return_fallback else out

    # -- state (artifacts) ----------------------------------------------------------------
    def learned_state(self) -> dict[str, Any]:
        """Every learned attribute (name ending with ``_``)."""
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}


def biases(
    train: Dataset, reg_u: float = 15.0, reg_i: float = 10.0, n_epochs: int = 10
) -> tuple[float, np.ndarray, np.ndarray]:
    """(global mean, user biases, item biases) by regularized ALS (BaselineOnly defaults)."""
    csr, csc = train.csr(), train.csc()
    mu = float(train.ratings.mean())
    bu, bi = baseline_als(
        csr.indptr.astype(np.int64),
        csr.indices,
        csr.data,
        csc.indptr.astype(np.int64),
        csc.indices,
        csc.data,
        mu,
        reg_u,
        reg_i,
        n_epochs,
    )
    return mu, bu, bi


def biased_vectors(M: np.ndarray | None, a: Any, b: Any, n: int) -> np.ndarray:
    """The ``n`` rows of ``[M, a, b]`` as float32 (``a``, ``b``: a scalar or one value per
    row; ``M`` None: no factor columns). With users ``[p_u, mu + b_u, 1]`` and items
    ``[q_i, 1, b_i]`` the dot product is the biased score ``mu + b_u + b_i + p_u . q_i``."""
    f = 0 if M is None else M.shape[1]
    out = np.empty((n, f + 2), dtype=np.float32)
    if M is not None:
        out[:, :f] = M
    out[:, f] = a
    out[:, f + 1] = b
    return out


def factor_scores(A: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``A @ V.T`` as float32 (users' factors times item factors), its row blocks computed
    on numba's thread count.

    Each thread runs one single-threaded BLAS call (numpy releases the GIL), so scoring
    uses every core while BLAS is held to one thread (:func:`blas_limit`).
    """
    out = np.empty((A.shape[0], V.shape[0]), dtype=np.float32)
    n = nb.get_num_threads()
    if n == 1 or out.size < _PARALLEL_CELLS:
        return np.matmul(A, V.T, out=out, casting="same_kind")
    cuts = np.linspace(0, A.shape[0], n + 1).astype(int)
    with ThreadPoolExecutor(n) as pool:
        list(
            pool.map(
                lambda k: np.matmul(A[cuts[k] : cuts[k + 1]], V.T, out=out[cuts[k] : cuts[k + 1]]),
                range(n),
            )
        )
    return out
