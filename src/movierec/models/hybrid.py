"""Hybrids of registered models: weighted score blend, reciprocal-rank fusion, switching.

Sub-models are described by plain data (``{"name": {params}}``) so configs, ``get_params``
and ``clone`` work; they are built with :func:`movierec.models.make_model` and fitted on
the same training data in ``fit``, and kept in ``models_``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.kernels.topk import topk_rows
from movierec.models.base import Recommender

ModelSpec = dict[str, dict[str, Any]] | list[tuple[str, dict[str, Any]]] | list[list[Any]]


DEFAULT_MODELS = {"ease": {}, "content": {}}


def _specs(models: Any) -> list[tuple[str, dict[str, Any]]]:
    if models is None:
        models = DEFAULT_MODELS
    if isinstance(models, dict):
        return [(str(k), dict(v or {})) for k, v in models.items()]
    out = []
    for entry in models or []:
        if isinstance(entry, str):
            out.append((entry, {}))
        else:
            name, params = entry
            out.append((str(name), dict(params or {})))
    return out


def _build(name: str, params: dict[str, Any], random_state: int | None) -> Recommender:
    """Sub-model ``name``; the hybrid's ``random_state`` seeds it unless its params set one."""
    from movierec.models import make_model, model_class

    p = dict(params)
    if random_state is not None and "random_state" in model_class(name)._param_names():
        p.setdefault("random_state", random_state)
    return make_model(name, **p)


_SHARED: ContextVar[dict[Any, tuple[Dataset, Recommender]] | None] = ContextVar(
    "movierec_shared_fits", default=None
)


@contextmanager
def shared_fits() -> Iterator[None]:
    """Inside this block, :func:`fit_shared` fits each (class, params, training data) once
    and hands the same fitted model to every caller (``compare``: the EASE of ``ease`` and of
    the hybrids built on it is fitted once, and saved once)."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _key_value(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int | float):
        return float(v)  # 500 and 500.0 build the same model
    if isinstance(v, dict):
        return {str(k): _key_value(x) for k, x in sorted(v.items())}
    if isinstance(v, list | tuple):
        return [_key_value(x) for x in v]
    return repr(v)


def fit_shared(model: Recommender, train: Dataset, callback: Any = None) -> Recommender:
    """``model.fit(train)``, or inside :func:`shared_fits` the model already fitted there
    with the same class and params on the same ``train`` object."""
    pool = _SHARED.get()
    if pool is None:
        return model.fit(train, callback=callback)
    key = (type(model), json.dumps(_key_value(model.get_params())), id(train))
    hit = pool.get(key)
    if hit is not None and hit[0] is train:
        return hit[1]
    model.fit(train, callback=callback)
    pool[key] = (train, model)
    return model


_SCORES: ContextVar[dict[int, tuple[np.ndarray, np.ndarray]] | None] = ContextVar(
    "movierec_shared_scores", default=None
)


@contextmanager
def shared_scores(models: Any) -> Iterator[None]:
    """Inside this block, :func:`cached_score` of one of ``models`` keeps its last batch of
    scores, so a hybrid built on a model evaluated in the same batch (``compare``: the iALS
    of ``ials`` and of ``rrf``) reuses its score rows instead of computing them again."""
    token = _SCORES.set(
        {id(m): (np.zeros(0, np.int64), np.zeros((0, 0), np.float32)) for m in models}
    )
    try:
        yield
    finally:
        _SCORES.reset(token)


def cached_score(model: Recommender, users: np.ndarray) -> np.ndarray:
    """``model.score(users)`` (fallback policy), served from the last batch inside
    :func:`shared_scores` when ``users`` are those users or a subset of them. The array
    returned may be shared: callers must not write into it."""
    pool = _SCORES.get()
    if pool is None or id(model) not in pool:
        return model.score(users)
    u = np.asarray(users, dtype=np.int64)
    have, s = pool[id(model)]
    if have.size and u.size <= have.size:
        if u.size == have.size and np.array_equal(u, have):
            return s
        pos = np.minimum(np.searchsorted(have, u), have.size - 1)
        if np.all(have[pos] == u):
            return s[pos]
    out = model.score(u)
    if u.size < 2 or np.all(np.diff(u) > 0):  # sorted: later subsets can be looked up
        pool[id(model)] = (u.copy(), out)
    return out


def ensemble_parts(models: Any) -> list[Recommender]:
    """The fitted sub-models of every hybrid among ``models`` (for :func:`shared_scores`)."""
    out: dict[int, Recommender] = {}
    for m in models:
        for sub in getattr(m, "models_", None) or []:
            if isinstance(sub, Recommender):
                out[id(sub)] = sub
    return list(out.values())


def _min_max(s: np.ndarray) -> np.ndarray:
    """Per-row min-max scaling to [0, 1] over the finite entries; others become 0."""
    s = np.asarray(s, dtype=np.float32)
    fin = np.isfinite(s)
    lo = np.where(fin, s, np.inf).min(axis=1, keepdims=True)
    hi = np.where(fin, s, -np.inf).max(axis=1, keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = np.where(fin, (s - lo) / span, 0.0)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def _ranks(s: np.ndarray) -> np.ndarray:
    """1-based rank of every column per row, best first; ties by lower index; -inf/NaN last."""
    s = np.where(np.isfinite(s), s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")
    ranks = np.empty(s.shape, dtype=np.float32)
    rows = np.arange(s.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, s.shape[1] + 1, dtype=np.float32)[None, :]
    return ranks


class _Ensemble(Recommender):
    """Shared plumbing: build, fit and query the sub-models."""

    models: Any
    weights: Any
    random_state: int | None
    #: each sub-model sets its own BLAS limit in its fit and score
    blas_threads = None

    def _fit(self, train: Dataset) -> None:
        specs = _specs(self.models)
        self._check(len(specs) >= 1, "give at least one sub-model, e.g. models={'ease': {}}")
        w = self._weight_list(len(specs))
        self._check(len(w) == len(specs), f"give one weight per model ({len(specs)})")
        self._check(all(x >= 0 for x in w) and sum(w) > 0, "weights must be >= 0, one > 0")
        self.models_ = [fit_shared(_build(n, p, self.random_state), train) for n, p in specs]
        self.weights_ = np.asarray(w, dtype=np.float64)

    def _weight_list(self, n: int) -> list[float]:
        if self.weights is None:
            return [1.0 / n] * n
        return [float(x) for x in self.weights]

    def _parts(self, users: np.ndarray, exclude: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
        # each part's scores with the user's own (seen) items pushed to -inf
        ip, ix = exclude
        rows = np.repeat(np.arange(users.size), np.diff(ip))
        out = []
        for m in self.models_:
            s = np.array(cached_score(m, users), dtype=np.float32)
            s[rows, ix] = -np.inf
            out.append(s)
        return out

    def _combine(self, parts: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _finish(self, s: np.ndarray, exclude: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        # seen items keep a finite score below every other so exclude_seen=False still ranks all
        ip, ix = exclude
        rows = np.repeat(np.arange(s.shape[0]), np.diff(ip))
        s[rows, ix] = -1.0
        return s

    def _score(self, users: np.ndarray) -> np.ndarray:
        ex = self._seen_rows(users)
        return self._finish(self._combine(self._parts(users, ex)), ex)

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """Combine the sub-models' fold-in scores (each must support fold-in)."""
        self._require_fitted()
        it = np.asarray(items, dtype=np.int64)
        ex = (np.array([0, it.size], np.int64), it.astype(np.int32))
        parts = []
        for m in self.models_:
            s = np.array(m.fold_in(it, ratings), dtype=np.float32)[None, :]
            s[0, it] = -np.inf
            parts.append(s)
        return self._finish(self._combine(parts), ex)[0]


class WeightedHybrid(_Ensemble):
    r"""Weighted blend of min-max normalized scores.

    For each user, each sub-model's scores over the items she has not rated are scaled to
    [0, 1] (:math:`\tilde s = (s - \min) / (\max - \min)`), then
    :math:`\text{score} = \sum_m w_m \tilde s_m`. Items she rated get -1.

    Parameters
    ----------
    models : dict name -> params, or list of (name, params)
        Registered model names and their parameters, e.g. ``{"ease": {"l2": 300},
        "content": {}}`` (None: that default, EASE and content).
    weights : list of float or None
        One per model (None: equal).
    random_state : int or None
        Seed of every sub-model with a ``random_state`` param that its params leave unset
        (an experiment's ``seed`` fills it); None keeps the sub-models' own defaults.
    """

    name = "weighted"

    def __init__(
        self,
        models: ModelSpec | None = None,
        weights: list[float] | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.models = models
        self.weights = weights
        self.random_state = random_state

    def _combine(self, parts: list[np.ndarray]) -> np.ndarray:
        out = np.zeros(parts[0].shape, dtype=np.float32)
        for w, s in zip(self.weights_, parts, strict=True):
            out += np.float32(w) * _min_max(s)
        return out


class RRFHybrid(_Ensemble):
    r"""Reciprocal rank fusion (Cormack et al. 2009).

    Each sub-model ranks the items the user has not rated (rank 1 = best);
    :math:`\text{score}(u, i) = \sum_m \frac{w_m}{k + \text{rank}_m(u, i)}`. Items she rated
    get -1.

    Parameters
    ----------
    models : dict name -> params, or list of (name, params)
        Default ``{"ease": {}, "content": {}}`` (collaborative, then content).
    weights : list of float or None
        One per model; None gives 0.6 / 0.4 for two models (CF first, content second) and
        equal weights otherwise.
    k : float
        The RRF constant (60 in the paper): larger flattens the rank curve.
    candidates : int or None
        Fuse each sub-model's top ``candidates`` unseen items only (as RRF fuses top-N
        lists): an item outside a list gets nothing from that model, an item in no list
        scores 0. Where the fused top-k items are in every list and the k-th fused score
        beats what any other item could reach (each missing rank > ``candidates``), the
        top-k equals the full fusion's. None ranks the whole catalogue for every user
        (slow on large catalogues: a sort per user and model).
    random_state : int or None
        As in :class:`WeightedHybrid`.
    """

    name = "rrf"

    def __init__(
        self,
        models: ModelSpec | None = None,
        weights: list[float] | None = None,
        k: float = 60.0,
        candidates: int | None = 300,
        random_state: int | None = 0,
    ) -> None:
        self.models = models
        self.weights = weights
        self.k = k
        self.candidates = candidates
        self.random_state = random_state

    def _weight_list(self, n: int) -> list[float]:
        self._check(self.k >= 0, f"k must be >= 0, got {self.k}")
        c = self.candidates
        self._check(
            c is None or (isinstance(c, int | np.integer) and not isinstance(c, bool) and c >= 1),
            f"candidates must be an integer >= 1 or None, got {c!r}",
        )
        if self.weights is None and n == 2:
            return [0.6, 0.4]
        return super()._weight_list(n)

    def _combine(self, parts: list[np.ndarray]) -> np.ndarray:
        out = np.zeros(parts[0].shape, dtype=np.float32)
        for w, s in zip(self.weights_, parts, strict=True):
            out += np.float32(w) / (np.float32(self.k) + _ranks(s))
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        ex = self._seen_rows(users)
        if self.candidates is None:
            return self._finish(self._combine(self._parts(users, ex)), ex)
        c = min(int(self.candidates), self.n_items_)
        out = np.zeros((users.size, self.n_items_), dtype=np.float32)
        ranks = np.arange(1, c + 1, dtype=np.float32)
        for w, m in zip(self.weights_, self.models_, strict=True):
            s = np.ascontiguousarray(cached_score(m, users), dtype=np.float32)
            top, _ = topk_rows(s, c, ex[0], ex[1])  # seen items, -inf and NaN skipped
            r, pos = np.nonzero(top >= 0)
            out[r, top[r, pos]] += np.float32(w) / (np.float32(self.k) + ranks[pos])
        return self._finish(out, ex)


class SwitchingHybrid(Recommender):
    """Collaborative model for users with enough history, a cold-start model for the rest.

    Users with at least ``min_ratings`` training ratings are scored by the first model
    (``cf``); users with fewer (but some) by the second (``cold``, e.g. content or
    popularity). Users with none follow the usual unknown-user policy. ``fold_in`` switches
    on the number of ratings given.

    Parameters
    ----------
    models : dict name -> params, or list of (name, params)
        Exactly two: the collaborative model, then the cold-start model (None: EASE, then
        content).
    min_ratings : int
    random_state : int or None
        As in :class:`WeightedHybrid`.
    """

    name = "switching"
    blas_threads = None

    def __init__(
        self, models: ModelSpec | None = None, min_ratings: int = 5, random_state: int | None = 0
    ) -> None:
        self.models = models
        self.min_ratings = min_ratings
        self.random_state = random_state

    def _fit(self, train: Dataset) -> None:
        specs = _specs(self.models)
        self._check(len(specs) == 2, "give exactly two models: the CF model, then the cold one")
        self._check(int(self.min_ratings) >= 1, "min_ratings must be >= 1")
        self.models_ = [fit_shared(_build(n, p, self.random_state), train) for n, p in specs]

    def warm(self, users: np.ndarray) -> np.ndarray:
        """Which ``users`` (known ones) the collaborative model scores."""
        return self.user_count_[users] >= int(self.min_ratings)

    def _score(self, users: np.ndarray) -> np.ndarray:
        warm = self.warm(users)
        out = np.empty((users.size, self.n_items_), dtype=np.float32)
        for mask, model in ((warm, self.models_[0]), (~warm, self.models_[1])):
            if mask.any():
                out[mask] = cached_score(model, users[mask])
        return out

    def fold_in(self, items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        self._require_fitted()
        warm = np.asarray(items).size >= int(self.min_ratings)
        return self.models_[0 if warm else 1].fold_in(items, ratings)
