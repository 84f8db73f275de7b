"""The serving engine: everything a route does, without HTTP.

An :class:`Engine` serves the artifacts found at a path (one artifact folder, a folder of
artifacts, or a ``movierec compare`` output folder, whose best model is the default). It
chooses the model, folds a user's or visitor's stored ratings in, applies filters before
the top-K, explains, caches, and swaps in a reloaded model atomically: a reload builds a
whole new :class:`State` and replaces one reference, so a request that started on the
old state finishes on it. Raw MovieLens ids in, JSON-ready dicts out.

Experiments (``experiments:`` in the serving config): a recommendation request without
``?model=`` is assigned by the running experiment of its unit (user or session) to a
variant, served that variant's model and params (or, in interleave mode, the team-draft
merge of two models' lists), and every served list is logged as an exposure through a
background :class:`~movierec.serving.store.ExposureWriter`; ``POST /events`` outcomes
refer to it by ``request_id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import gc
import hashlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import orjson
import polars as pl
import scipy.sparse as sp
from starlette.concurrency import run_in_threadpool

from movierec.artifacts import MODEL_JSON, load_bundle
from movierec.data.dataset import Dataset, IdMap
from movierec.data.search import TitleIndex
from movierec.errors import ArtifactError, ConfigError, MovierecError, StoreError, UnknownIdError
from movierec.kernels.topk import norm_order, topk_dot_sorted, topk_rows
from movierec.models.base import Recommender
from movierec.serving.abtest import INTERLEAVED, Experiment
from movierec.serving.config import ServeConfig

if TYPE_CHECKING:
    from movierec.serving.store import ExposureWriter

log = logging.getLogger("movierec.serving")

MAX_K = 1000
KINDS = ("cf", "content", "hybrid")
RRF_K = 60.0
EVENT_TYPES = ("click", "rating", "watch")


class NotReadyError(MovierecError):
    """No model is loaded yet (or the first load failed)."""


# -- requests ----------------------------------------------------------------------------------
class Filters(NamedTuple):
    """Which movies may be listed: any of ``genres``, the year range, at least
    ``min_ratings`` training ratings, none of ``exclude`` (raw ids). A tuple, so a cache
    key holding it is not walked by the garbage collector."""

    genres: tuple[str, ...] = ()
    year_min: int | None = None
    year_max: int | None = None
    min_ratings: int | None = None
    exclude: tuple[int, ...] = ()


def check_k(k: int) -> int:
    """``k`` if it lies in 1..1000, else ConfigError."""
    if not 1 <= int(k) <= MAX_K:
        raise ConfigError(f"k must be between 1 and {MAX_K}, got {k}")
    return int(k)


def check_rating(rating: float) -> float:
    """``rating`` if it is one of 0.5, 1, ..., 5, else ConfigError."""
    r = float(rating)
    if not (0.5 <= r <= 5.0 and (r * 2).is_integer()):
        raise ConfigError(f"rating must be 0.5 to 5 in steps of 0.5, got {rating}")
    return r


# -- cache -------------------------------------------------------------------------------------
class Cache:
    """LRU + TTL cache of computed responses, keyed on (unit, its generation, query...).

    A unit is a user, a session or a movie. :meth:`invalidate` bumps the unit's
    generation, so entries computed before (even ones still being computed) are never
    served again; the LRU drops them in time. Thread-safe.

    Values (JSON-ready dicts) are kept as JSON text: a full cache of nested dicts is
    hundreds of thousands of objects for the garbage collector to walk on every full
    collection (tens of ms, while no request is served); bytes are not walked.
    """

    def __init__(self, size: int = 10_000, ttl_s: float = 300.0) -> None:
        self.size, self.ttl_s = int(size), float(ttl_s)
        self._d: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._gen: dict[Hashable, int] = {}
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def key(self, unit: Hashable, *parts: Hashable) -> tuple:
        with self._lock:
            return (unit, self._gen.get(unit, 0), *parts)

    def get(self, key: Hashable, count_miss: bool = True) -> Any:
        now = time.monotonic()
        with self._lock:
            got = self._d.get(key)
            if got is not None and got[0] > now:
                self._d.move_to_end(key)
                self.hits += 1
                return orjson.loads(got[1])
            if got is not None:
                del self._d[key]
            self.misses += count_miss
            return None

    def put(self, key: Hashable, value: Any) -> None:
        if self.size == 0:
            return
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        with self._lock:
            self._d[key] = (time.monotonic() + self.ttl_s, text)
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)

    def invalidate(self, unit: Hashable) -> None:
        with self._lock:
            self._gen[unit] = self._gen.get(unit, 0) + 1

    def clear(self) -> None:
        with self._lock:
            self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


class Ranker:
    """One thread ranks every user list that is not in the cache, in batches.

    Requests that arrive while a batch is being ranked go into the next one, so one matrix
    product scores them all (scoring one user of a factor model reads every item vector:
    59,047 x 64 floats, 15 MB at 25M; a batch pays that once) and one top-K pass ranks
    them; a request that finds the ranker idle is ranked at once. One thread, not one per
    request: a request thread that releases the GIL for native code (a matrix product, a
    kernel) must take it back from the busy event loop, which gives it up only every
    switch interval (5 ms), so sixteen request threads spent most of their time waiting
    for the GIL (~400 req/s at 25M with 1.2 of 2 cores busy); the ranker releases it a
    few times per batch. The event loop awaits :meth:`arun` (no worker thread at all);
    other threads block in :meth:`run`. ``rank`` fills each job's ``result`` or
    ``error``; a job's error is its own (the others are still answered).
    """

    def __init__(self, rank: Callable[[list[UserJob]], None], max_batch: int = 64) -> None:
        self._rank, self.max_batch = rank, max_batch
        self._cv = threading.Condition()
        self._queue: list[UserJob] = []
        self._thread: threading.Thread | None = None
        self._closing = False
        self.batches = self.ranked = 0

    def run(self, job: UserJob) -> dict[str, Any]:
        """Rank ``job`` and wait for it (any thread but the ranker's)."""
        job.event = threading.Event()
        self._submit(job)
        job.event.wait()
        return job.outcome()

    async def arun(self, job: UserJob) -> dict[str, Any]:
        """Rank ``job`` and await it (from an event loop)."""
        job.loop = asyncio.get_running_loop()
        job.future = job.loop.create_future()
        self._submit(job)
        return await job.future

    def _submit(self, job: UserJob) -> None:
        with self._cv:
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="movierec-ranker")
                self._thread.daemon = True
                self._thread.start()
            self._cv.notify()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue:
                    self._thread = None
                    return
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
            try:
                self._rank(batch)
            except Exception as e:  # every waiting request gets the error, none hangs
                for j in batch:
                    if j.result is None and j.error is None:
                        j.error = e
            self.batches += 1
            self.ranked += len(batch)
            by_loop: dict[Any, list[UserJob]] = {}
            for j in batch:
                if j.event is not None:
                    j.event.set()
                else:
                    by_loop.setdefault(j.loop, []).append(j)
            for loop, jobs in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_settle, jobs)

    def close(self, timeout: float = 5.0) -> None:
        """Finish the queued jobs and stop the thread (a later job starts a new one)."""
        with self._cv:
            t, self._closing = self._thread, True
            self._cv.notify_all()
        if t is not None:
            t.join(timeout)
        with self._cv:
            self._closing = False


@dataclass(eq=False)
class UserJob:
    """One user's list to rank: her stored ratings, k and filters, on one served model."""

    sv: Served
    user: int
    stored: list[tuple[int, float, int]]
    k: int
    filters: Filters
    result: dict[str, Any] | None = None
    error: Exception | None = None
    event: threading.Event | None = None
    loop: Any = None
    future: Any = None

    def outcome(self) -> dict[str, Any]:
        """The ranked list, or the job's error raised."""
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class _Prepared(NamedTuple):
    """A job ready to rank: her items and ratings (history and stored), filter mask,
    fallback flag."""

    job: UserJob
    items: np.ndarray
    ratings: np.ndarray
    mask: np.ndarray | None
    fallback: str | None


def _settle(jobs: list[UserJob]) -> None:
    for j in jobs:
        if j.future.done():  # the client went away
            continue
        if j.error is not None:
            j.future.set_exception(j.error)
        else:
            j.future.set_result(j.result)


def _freeze_heap() -> None:
    """Take the just-loaded models' objects (titles, genres, id maps: ~200,000 at 25M)
    out of the garbage collector's walks: they live as long as the state, and each full
    collection walking them stalled every request for ~150 ms (the p99 under load).
    The previous state's objects are unfrozen and collected first."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# -- loaded state ------------------------------------------------------------------------------
def _content_model(items: pl.DataFrame, item_map: IdMap) -> Recommender:
    """ContentTFIDF fitted on an items table (titles and genres; only its item vectors are
    used, so the one placeholder rating below is never read)."""
    from movierec.models.content import ContentTFIDF

    movies = items.select("item", "title", "year", "genres")
    one = np.zeros(1, np.int32)
    ds = Dataset(
        one, one, np.ones(1, np.float32), np.zeros(1, np.int64),
        IdMap(np.zeros(1, np.int64)), item_map, movies, name="items",
    )  # fmt: skip
    return ContentTFIDF(use_tags=False).fit(ds)


class Catalog:
    """The movies and training ratings that the models of one training data set share."""

    def __init__(self, items: pl.DataFrame, item_map: IdMap, user_map: IdMap, history: Any):
        self.items, self.item_map, self.user_map = items, item_map, user_map
        self.history = sp.csr_matrix(history)
        n = len(item_map)
        self.n_items = n
        self.raw = items["item"].to_numpy().astype(np.int64)
        self.raw_ids: list[int] = self.raw.tolist()  # for output: no numpy scalar per item
        self.titles = [t or "" for t in items["title"].to_list()]
        self.years = items["year"].to_list()
        self.genres = [list(g or []) for g in items["genres"].to_list()]
        self.year_arr = np.array([np.nan if y is None else y for y in self.years], np.float64)
        h = self.history
        self.counts = np.bincount(h.indices, minlength=n).astype(np.int64)
        sums = np.bincount(h.indices, weights=h.data.astype(np.float64), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.means = np.where(self.counts > 0, sums / np.maximum(self.counts, 1), np.nan)
        names = sorted({g for gs in self.genres for g in gs})
        self.genre_names = names
        self.genre_masks = {g: np.zeros(n, dtype=bool) for g in names}
        for j, gs in enumerate(self.genres):
            for g in gs:
                self.genre_masks[g][j] = True
        self.imdb = items["imdbId"].to_list() if "imdbId" in items.columns else None
        self.tmdb = items["tmdbId"].to_list() if "tmdbId" in items.columns else None
        self.index = TitleIndex(self.titles, self.years, self.counts)
        self.content: Recommender | None = None
        self._content_lock = threading.Lock()

    # ids
    def movie_index(self, raw: int) -> int:
        """Dense index of a raw movie id, or UnknownIdError (404)."""
        j = self.item_map.find(int(raw))
        if j < 0:
            raise UnknownIdError(f"movie {raw} is not in the served catalogue")
        return j

    def user_index(self, raw: int) -> int:
        """Dense index of a raw user id, -1 if the models never saw her."""
        return self.user_map.find(int(raw))

    def user_history(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        if u < 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        a, b = self.history.indptr[u], self.history.indptr[u + 1]
        return self.history.indices[a:b].astype(np.int64), self.history.data[a:b].astype(np.float32)

    def map_ratings(self, stored: list[tuple[int, float, int]]) -> tuple[np.ndarray, np.ndarray]:
        """Dense (items, ratings) of stored (movie, rating, ts) rows; unknown movies dropped."""
        if not stored:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        raw = np.array([s[0] for s in stored], dtype=np.int64)
        r = np.array([s[1] for s in stored], dtype=np.float32)
        j = self.item_map.index(raw, missing="minus1").astype(np.int64)
        return j[j >= 0], r[j >= 0]

    # filters
    def mask(self, f: Filters) -> np.ndarray | None:
        """Boolean mask of the movies the filters allow (None: all)."""
        m: np.ndarray | None = None

        def both(a: np.ndarray) -> np.ndarray:
            return a if m is None else m & a

        if f.genres:
            bad = [g for g in f.genres if g not in self.genre_masks]
            if bad:
                raise ConfigError(
                    f"unknown genre {bad[0]!r}; choose from {', '.join(self.genre_names)}"
                )
            g = np.zeros(self.n_items, dtype=bool)
            for name in f.genres:
                g |= self.genre_masks[name]
            m = both(g)
        with np.errstate(invalid="ignore"):
            if f.year_min is not None:
                m = both(self.year_arr >= f.year_min)
            if f.year_max is not None:
                m = both(self.year_arr <= f.year_max)
        if f.min_ratings is not None:
            m = both(self.counts >= f.min_ratings)
        if f.exclude:
            j = self.item_map.index(np.asarray(f.exclude, np.int64), missing="minus1")
            m = np.ones(self.n_items, dtype=bool) if m is None else m.copy()
            m[j[j >= 0]] = False
        return m

    # output
    def movie(self, j: int) -> dict[str, Any]:
        return {
            "movieId": self.raw_ids[j],
            "title": self.titles[j],
            "year": self.years[j],
            "genres": self.genres[j],
        }

    def listing(
        self, items: np.ndarray, scores: np.ndarray, because: list[list[int]] | None = None
    ) -> list[dict[str, Any]]:
        out = []
        for n, (j, s) in enumerate(zip(items.tolist(), scores.tolist(), strict=True)):
            why = because[n] if because else []
            out.append(
                {
                    **self.movie(j),
                    "score": float(s),
                    "rank": n + 1,
                    "because": [{"movieId": self.raw_ids[b], "title": self.titles[b]} for b in why],
                }
            )
        return out

    def content_model(self) -> Recommender:
        """The content model for 'similar in content' (fitted on first use when the served
        folder has none)."""
        if self.content is None:
            with self._content_lock:
                if self.content is None:
                    self.content = _content_model(self.items, self.item_map)
        return self.content


def can_fold_in(m: Recommender) -> bool:
    """Whether ``m`` places a new user from her ratings (its own fold_in, or all sub-models')."""
    if type(m).fold_in is Recommender.fold_in:
        return False
    subs = getattr(m, "models_", None)
    if isinstance(subs, list):
        return all(can_fold_in(s) for s in subs if isinstance(s, Recommender))
    return True


def similarity_model(m: Recommender) -> Recommender | None:
    """``m`` if it has item similarity, else its first sub-model that has one, else None."""
    try:
        m._explain_similarity(np.zeros(1, np.int64), np.zeros(1, np.int64))
        return m
    except (ConfigError, NotImplementedError, AttributeError):
        pass
    for sub in getattr(m, "models_", None) or []:
        if isinstance(sub, Recommender):
            got = similarity_model(sub)
            if got is not None:
                return got
    return None


def dot_order(m: Recommender) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """For a model that scores by dot products of user and item vectors: its item vectors
    sorted by decreasing norm once (:func:`~movierec.kernels.topk.norm_order`), so that a
    batch of users is ranked by :func:`~movierec.kernels.topk.topk_dot_sorted`, which stops
    scoring a user once no item left can enter her list (the 25M model's users read a few
    tiles of items instead of all 59,047). None for other models."""
    if not m.n_users_:
        return None
    V = m.dot_items()
    return None if V is None else norm_order(V)


@dataclass
class Served:
    """One loaded model and what serving it needs."""

    label: str
    model: Recommender
    catalog: Catalog
    meta: dict[str, Any]
    folder: Path
    version: str
    fold_in: bool
    sim: Recommender | None
    popularity: np.ndarray
    #: factor models: their item vectors by decreasing norm (:func:`dot_order`)
    dot: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def info(self) -> dict[str, Any]:
        extra = self.meta.get("extra") or {}
        train = self.meta.get("train") or {}
        trained_on = extra.get("trained_on") or ("train" if extra.get("split") else None)
        return {
            "label": self.label,
            "class": type(self.model).__name__,
            "version": self.version,
            "trained_on": trained_on,
            "fingerprint": train.get("fingerprint"),
            "n_users": int(self.model.n_users_),
            "n_items": int(self.model.n_items_),
            "rating_model": bool(self.model.rating_model),
            "fold_in": self.fold_in,
        }


@dataclass
class State:
    """Everything one version of the served models needs; replaced whole on reload."""

    path: Path
    models: dict[str, Served]
    default: str
    loaded_s: float
    loaded_at: float = field(default_factory=time.time)
    #: (experiment, variant) -> what that variant serves (its model, re-weighted if asked)
    variants: dict[tuple[str, str], Served] = field(default_factory=dict)

    def get(self, label: str | None) -> Served:
        name = label or self.default
        if name not in self.models:
            raise ConfigError(f"unknown model {name!r}; loaded: {', '.join(self.models)}")
        return self.models[name]


def discover(path: str | Path) -> tuple[dict[str, Path], str | None]:
    """The artifacts at ``path`` as {label: folder}, and the compare run's best label.

    ``path`` is one artifact folder (label: its training label or folder name), a folder of
    artifact folders, or a compare output folder (``results.json`` + ``models/``).
    """
    p = Path(path).expanduser().resolve()
    if not p.is_dir():
        raise ArtifactError(f"{p} does not exist: give an artifact folder or a compare run folder")
    if (p / MODEL_JSON).is_file():
        try:
            label = (json.loads((p / MODEL_JSON).read_text()).get("extra") or {}).get("label")
        except (OSError, ValueError, AttributeError):
            label = None
        return {str(label or p.name): p}, None
    folder = p / "models" if (p / "results.json").is_file() and (p / "models").is_dir() else p
    best = None
    results = folder.parent / "results.json" if folder.name == "models" else p / "results.json"
    if results.is_file():
        try:
            best = json.loads(results.read_text()).get("best")
        except (OSError, ValueError, AttributeError):
            best = None
    found = {d.name: d for d in sorted(folder.iterdir()) if (d / MODEL_JSON).is_file()}
    if not found:
        raise ArtifactError(
            f"{p} holds no movierec artifact: give an artifact folder, a folder of artifacts "
            "or a compare output folder"
        )
    return found, best


def build_state(path: str | Path, cfg: ServeConfig) -> State:
    """Load (and verify) every artifact to serve from ``path``; raises, swapping nothing."""
    t0 = time.perf_counter()
    found, best = discover(path)
    if cfg.models:
        missing = [m for m in cfg.models if m not in found]
        if missing:
            raise ConfigError(f"models {missing} are not in {path}; found: {', '.join(found)}")
        found = {k: found[k] for k in cfg.models}
    catalogs: dict[str, Catalog] = {}
    models: dict[str, Served] = {}
    for label, folder in found.items():
        b = load_bundle(folder)
        if b.items is None or b.history is None or b.user_map is None or b.item_map is None:
            raise ArtifactError(
                f"{folder} was saved without its training data; save it with "
                "save(model, path, train=dataset) to serve it"
            )
        fp = str((b.meta.get("train") or {}).get("fingerprint"))
        cat = catalogs.get(fp)
        if cat is None:
            cat = catalogs[fp] = Catalog(b.items, b.item_map, b.user_map, b.history)
        m = b.model
        if type(m).__name__ == "ContentTFIDF" and cat.content is None:
            cat.content = m
        models[label] = Served(
            label=label,
            model=m,
            catalog=cat,
            meta=b.meta,
            folder=folder,
            version=str(b.meta.get("json_sha256", ""))[:12],
            fold_in=can_fold_in(m),
            sim=similarity_model(m),
            popularity=np.asarray(m.item_count_, dtype=np.float32),
            dot=dot_order(m),
        )
    default = cfg.default or (best if best in models else next(iter(models)))
    if default not in models:
        raise ConfigError(f"default model {default!r} is not loaded; loaded: {', '.join(models)}")
    return State(Path(path).expanduser().resolve(), models, default, time.perf_counter() - t0)


# -- the engine --------------------------------------------------------------------------------
def _topk(
    cat: Catalog, scores: np.ndarray, k: int, f: Filters, seen: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of one score row after the filters (as a mask) and the seen items."""
    s = np.asarray(scores, dtype=np.float32).reshape(1, -1)
    mask = cat.mask(f)
    if mask is not None:
        s = np.where(mask[None, :], s, np.float32(-np.inf))
    seen32 = np.asarray(seen, dtype=np.int32)
    items, vals = topk_rows(s, k, np.array([0, seen32.size], np.int64), seen32)
    keep = items[0] >= 0
    return items[0][keep], vals[0][keep]


def _csr(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(indptr int64, indices int32) of a list of index arrays, for the top-K kernels."""
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum([x.size for x in rows], out=indptr[1:])
    return indptr, np.concatenate(rows).astype(np.int32)


def _rrf(lists: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal-rank fusion of ranked lists: sum of 1 / (60 + rank); ties by first seen."""
    score: dict[int, float] = {}
    for lst in lists:
        for r, j in enumerate(lst.tolist(), 1):
            score[j] = score.get(j, 0.0) + 1.0 / (RRF_K + r)
    order = sorted(score, key=lambda j: -score[j])[:k]
    return np.array(order, dtype=np.int64), np.array([score[j] for j in order], np.float32)


def _merge(
    a_items: np.ndarray, a_r: np.ndarray, b_items: np.ndarray, b_r: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Union of two (items, ratings) sets; ``b`` (the newer) wins on shared items."""
    if b_items.size == 0:
        return a_items, a_r
    keep = ~np.isin(a_items, b_items)
    items = np.concatenate([a_items[keep], b_items])
    r = np.concatenate([a_r[keep], b_r])
    order = np.argsort(items, kind="stable")
    return items[order], r[order]


@dataclass(frozen=True)
class Arm:
    """How one request is served under an experiment: the variants whose lists it gets
    (one, or two to interleave) and whether it counts for the experiment (a stopped
    experiment serves its control outside the analysis)."""

    experiment: Experiment
    variant: str
    names: tuple[str, ...]
    counted: bool


def variant_models(st: State, experiments: list[Experiment]) -> dict[tuple[str, str], Served]:
    """What each experiment variant serves; ConfigError for a model that is not loaded or
    weights a model cannot take."""
    out: dict[tuple[str, str], Served] = {}
    for e in experiments:
        for name, v in e.variants.items():
            if v.model not in st.models:
                raise ConfigError(
                    f"experiment {e.name!r}: variant {name!r} serves model {v.model!r}, which "
                    f"is not loaded; loaded: {', '.join(st.models)}"
                )
            sv = st.models[v.model]
            w = v.params.get("weights")
            if w is not None:
                old = getattr(sv.model, "weights_", None)
                if old is None or len(old) != len(w):
                    n = "no blend weights" if old is None else f"{len(old)} weights"
                    raise ConfigError(
                        f"experiment {e.name!r}: variant {name!r} sets weights {w} but model "
                        f"{v.model!r} has {n}"
                    )
                m = copy.copy(sv.model)  # shares the fitted sub-models; only the blend differs
                m.weights_ = np.asarray(w, dtype=np.float64)
                tag = hashlib.sha256(json.dumps(w).encode()).hexdigest()[:6]
                sv = dataclasses.replace(
                    sv, label=f"{sv.label}[{e.name}:{name}]", model=m,
                    version=f"{sv.version}w{tag}", dot=dot_order(m),
                )  # fmt: skip
            out[(e.name, name)] = sv
    return out


class Engine:
    """Serves the artifacts at ``path`` with a feedback ``store`` (see the module doc).

    Parameters
    ----------
    path : path
        Artifact folder, folder of artifacts, or compare output folder.
    config : ServeConfig, optional
    store : movierec.serving.store.Store, optional
        Needed by the rating and session methods.
    load : bool
        Load now (default); False leaves :meth:`load` to the caller (e.g. a thread).
    """

    def __init__(
        self,
        path: str | Path,
        config: ServeConfig | None = None,
        store: Any = None,
        load: bool = True,
    ) -> None:
        self.config = config or ServeConfig()
        self.path = Path(path).expanduser().resolve()
        root = self.config.reload_root
        self.root = Path(root).expanduser().resolve() if root else self.path
        self.store = store
        self.cache = Cache(self.config.cache.size, self.config.cache.ttl_s)
        self.ranker = Ranker(self._rank_batch)
        self._state: State | None = None
        self._reload_lock = threading.Lock()
        self.load_error: str | None = None
        self.reloads = 0
        self.on_store_write: Callable[[float], None] | None = None
        self.experiments = {e.name: e for e in self.config.experiments}
        #: the clock of exposures and outcomes (the simulator replays days through it)
        self.clock: Callable[[], float] = time.time
        self.writer: ExposureWriter | None = None
        #: users with stored ratings, derived from the store at start and kept up to date by
        #: this process's writes, so the others skip a store read; None (always read) when
        #: other processes write too (several workers: verify_cache_with_store)
        self._rated: set[int] | None = None
        if store is not None and not self.config.verify_cache_with_store:
            self._rated = store.rated_users()
        if store is not None:
            from movierec.serving.store import ExposureWriter

            self.writer = ExposureWriter(store)
        if load:
            self.load()

    # -- loading ----------------------------------------------------------------------------
    @property
    def state(self) -> State:
        st = self._state
        if st is None:
            why = f": the last load failed: {self.load_error}" if self.load_error else ""
            raise NotReadyError(f"the model is not loaded yet{why}")
        return st

    @property
    def ready(self) -> bool:
        return self._state is not None

    def _target(self, path: str | None) -> Path:
        if path is None:
            return self.path
        p = Path(path).expanduser()
        p = (p if p.is_absolute() else self.root / p).resolve()
        if not p.is_relative_to(self.root):
            raise ConfigError(
                f"{path} is outside the served folder {self.root}; reload only artifacts in it"
            )
        return p

    def load(self, path: str | None = None) -> State:
        """Load the artifacts (``path``: another folder inside the served one) and swap them
        in at once; on any error the models being served stay and the error is raised."""
        with self._reload_lock:
            target = self._target(path)
            try:
                st = build_state(target, self.config)
                st.variants = variant_models(st, list(self.experiments.values()))
                self._warm(st)
            except MovierecError as e:
                if self._state is None:
                    self.load_error = str(e)
                raise
            self._state = st  # the one swap: requests holding the old state finish on it
            self.path = target
            self.load_error = None
            self.reloads += 1
            self.cache.clear()
            _freeze_heap()
            log.info("serving %s from %s (default %s)", ", ".join(st.models), target, st.default)
            self._save_experiments()
            return st

    def _warm(self, st: State) -> None:
        """Rank once with every model, from training history and folded in, before the
        state is served: the numba kernels load and the objects built on first use exist
        before :func:`_freeze_heap`, so the first requests neither wait for them nor leave
        ~50,000 new objects for every full collection to walk."""
        for sv in st.models.values():
            cat = sv.catalog
            counts = np.diff(cat.history.indptr)
            if not counts.size or not counts.max():
                continue
            raw = int(cat.user_map.raw[int(np.argmax(counts > 0))])
            self._rank_user(sv, raw, [], 10, Filters())
            if sv.fold_in:
                self._rank_user(sv, raw, [(int(cat.raw[0]), 4.0, 0)], 10, Filters())

    def _save_experiments(self) -> None:
        if self.store is None or not self.experiments:
            return
        try:
            self.store.save_experiments([e.definition() for e in self.experiments.values()])
        except MovierecError as e:  # reports fall back to the config; serving goes on
            log.error("could not record the experiment definitions: %s", e)

    def flush(self, timeout: float = 30.0) -> bool:
        """Write every queued exposure now (True when done)."""
        return self.writer.flush(timeout) if self.writer is not None else True

    def close(self, timeout: float = 30.0) -> bool:
        """Stop the ranker; drain the exposure queue and stop its writer (server shutdown)."""
        self.ranker.close()
        return self.writer.close(timeout) if self.writer is not None else True

    reload = load

    def models(self) -> dict[str, Any]:
        st = self.state
        return {"default": st.default, "models": [s.info() for s in st.models.values()]}

    def genres(self) -> dict[str, Any]:
        return {"genres": self.state.get(None).catalog.genre_names}

    # -- store helpers ------------------------------------------------------------------------
    def _store(self) -> Any:
        if self.store is None:
            raise ConfigError("this engine has no feedback store; start it with one")
        return self.store

    def _write(self, **kw: Any) -> tuple[int, bool]:
        t0 = time.perf_counter()
        out = self._store().add_rating(ts=int(self.clock()), **kw)
        if self.on_store_write is not None:
            self.on_store_write(time.perf_counter() - t0)
        return out

    def _stored_user(self, user: int) -> list[tuple[int, float, int]]:
        if self.store is None or (self._rated is not None and int(user) not in self._rated):
            return []
        return self.store.user_ratings(int(user))

    def _require_session(self, sid: str) -> None:
        if not self._store().has_session(sid):
            raise UnknownIdError(f"unknown session {sid!r}: create one with POST /sessions")

    # -- users --------------------------------------------------------------------------------
    def recommend_user(
        self, user: int, k: int = 10, model: str | None = None, filters: Filters = Filters()
    ) -> dict[str, Any]:
        """Top-``k`` for a raw user id: her training history plus stored ratings (folded in
        where the model can), seen movies excluded, filters applied before the top-K;
        unknown users get the popularity fallback, flagged."""
        k, user = check_k(k), int(user)
        arm, needs = self._plan(("user", user), k, model)
        got = [(name, sv, self._user_list(sv, user, kk, filters)) for name, sv, kk in needs]
        return self._finish(("user", user), k, arm, got, self._user_pre(user))

    async def recommend_user_async(
        self, user: int, k: int = 10, model: str | None = None, filters: Filters = Filters()
    ) -> dict[str, Any]:
        """:meth:`recommend_user` on the event loop: a cached list is answered at once and
        one to compute is awaited from the :class:`Ranker` (no request thread). A user
        whose stored ratings must be read (she rated here, or several workers share the
        store) goes to the threadpool: store reads stay off the event loop."""
        user = int(user)
        if self._rated is None or user in self._rated:
            return await run_in_threadpool(self.recommend_user, user, k, model, filters)
        k = check_k(k)
        arm, needs = self._plan(("user", user), k, model)
        got = []
        for name, sv, kk in needs:
            key = self._user_key(sv, user, kk, filters, None)
            res = self.cache.get(key)
            if res is None:
                res = await self.ranker.arun(UserJob(sv, user, [], kk, filters))
                self.cache.put(key, res)
            got.append((name, sv, res))
        return self._finish(("user", user), k, arm, got, self._user_pre(user))

    def _user_pre(self, user: int) -> Callable[[Served, float | None], float]:
        def pre(sv: Served, start: float | None) -> float:
            """Her activity before the experiment: training ratings, plus the ratings
            stored before its ``start`` (when it has one)."""
            u = sv.catalog.user_index(user)
            ip = sv.catalog.history.indptr
            n = float(ip[u + 1] - ip[u]) if u >= 0 else 0.0
            if start is not None:
                n += sum(1 for _, _, ts in self._stored_user(user) if ts < start)
            return n

        return pre

    def _user_key(
        self, sv: Served, user: int, k: int, filters: Filters, stored: list | None
    ) -> tuple:
        parts: tuple = (sv.label, sv.version, k, filters)
        if stored is not None:  # verify_cache_with_store: her stored ratings are in the key
            parts += (tuple(stored),)
        return self.cache.key(("user", user), *parts)

    def _user_list(self, sv: Served, user: int, k: int, filters: Filters) -> dict[str, Any]:
        stored = self._stored_user(user) if self.config.verify_cache_with_store else None
        key = self._user_key(sv, user, k, filters, stored)
        res = self.cache.get(key)
        if res is None:
            if stored is None:
                stored = self._stored_user(user)
            res = self.ranker.run(UserJob(sv, user, stored, k, filters))
            self.cache.put(key, res)
        return res

    # -- experiments --------------------------------------------------------------------------
    def arm(self, unit: str, unit_id: Any, model: str | None = None) -> Arm | None:
        """The experiment arm serving a request of ``unit`` ("user" or "session"); None
        outside every experiment (no experiment on that unit, or ``model`` named)."""
        if model is not None:
            return None
        exps = [e for e in self.experiments.values() if e.unit == unit]
        running = [e for e in exps if e.status == "running"]
        if running:
            e = running[0]
            v = e.assign(unit_id)
            names = tuple(e.variants) if v == INTERLEAVED else (v,)
            return Arm(e, v, names, True)
        if exps:
            return Arm(exps[0], exps[0].control, (exps[0].control,), False)
        return None

    def _plan(
        self, unit: tuple[str, Any], k: int, model: str | None
    ) -> tuple[Arm | None, list[tuple[str | None, Served, int]]]:
        """The lists a request of ``unit`` needs: (variant, served model, k) of its arm's
        variant(s), or of ``model`` outside every experiment."""
        st = self.state
        arm = self.arm(unit[0], unit[1], model)
        if arm is None:
            return None, [(None, st.get(model), k)]
        e = arm.experiment
        return arm, [
            (name, st.variants[(e.name, name)], int(e.variants[name].params.get("k", k)))
            for name in arm.names
        ]

    def _finish(
        self,
        unit: tuple[str, Any],
        k: int,
        arm: Arm | None,
        got: list[tuple[Any, Served, dict[str, Any]]],
        pre: Callable[[Served, float | None], float | None],
    ) -> dict[str, Any]:
        """Merge the lists when interleaving, log the exposure and shape the response."""
        if arm is None:
            _, sv, res = got[0]
            return self._expose(unit, res, None, None, sv.version, None, pre(sv, None))
        exp, var = (arm.experiment.name, arm.variant) if arm.counted else (None, None)
        start = arm.experiment.start_ts
        if len(got) == 1:
            _, sv, r = got[0]
            return self._expose(unit, r, exp, var, sv.version, None, pre(sv, start))
        rid = uuid.uuid4().hex
        lists = {n: [m["movieId"] for m in r["items"]] for n, _, r in got}
        merged = arm.experiment.interleave(lists, k, rid)
        by_team = {n: {m["movieId"]: m for m in r["items"]} for n, _, r in got}
        items = [
            {**by_team[t][mid], "rank": i + 1}
            for i, (mid, t) in enumerate(zip(merged.items, merged.teams, strict=True))
        ]
        res = {
            **got[0][2],
            "model": "+".join(sv.label for _, sv, _ in got),
            "fallback": next((r["fallback"] for _, _, r in got if r["fallback"]), None),
            "items": items,
        }
        version = "+".join(sv.version for _, sv, _ in got)
        return self._expose(
            unit, res, exp, var, version, list(merged.teams), pre(got[0][1], start), rid
        )

    def _expose(
        self,
        unit: tuple[str, Any],
        res: dict[str, Any],
        experiment: str | None,
        variant: str | None,
        version: str,
        teams: list[str] | None,
        pre: float | None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        rid = request_id or uuid.uuid4().hex
        if self.writer is not None:
            self.writer.submit(
                {
                    "request_id": rid,
                    "unit": f"{unit[0]}:{unit[1]}",
                    "experiment": experiment,
                    "variant": variant,
                    "model_version": version,
                    "items": [[m["movieId"], m["rank"]] for m in res["items"]],
                    "ts": int(self.clock()),
                    "teams": teams,
                    "pre": pre,
                }
            )
        return {**res, "experiment": experiment, "variant": variant, "request_id": rid}

    def add_event(
        self,
        request_id: str,
        movie: int,
        type: str,
        value: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Store an outcome of a served list (a click, a rating, a watch).

        The request's exposure is flushed first if it is still queued, so an accepted
        outcome always has its exposure on disk. Unknown ``request_id``: UnknownIdError;
        a movie that list did not show, or a bad type or value: ConfigError.
        """
        if type not in EVENT_TYPES:
            raise ConfigError(f"type must be one of {', '.join(EVENT_TYPES)}, got {type!r}")
        if type == "rating":
            if value is None:
                raise ConfigError("a rating event needs its value: 0.5 to 5")
            value = check_rating(value)
        elif value is not None and not (np.isfinite(value) and value >= 0):
            raise ConfigError(f"value must be a number >= 0, got {value}")
        store = self._store()
        if self.writer is not None and not self.writer.wait_for(request_id):
            raise StoreError("the exposure log cannot reach the feedback store; retry later")
        ex = store.exposure(request_id)
        if ex is None and self.writer is not None:
            # another worker may have served it: give its writer one flush interval
            time.sleep(min(4 * self.writer.interval_s, 0.25))
            ex = store.exposure(request_id)
        if ex is None:
            raise UnknownIdError(
                f"unknown request_id {request_id!r}: send the request_id of a recommendation "
                "response this service returned"
            )
        shown = {int(m) for m, _ in ex["items"]}
        if int(movie) not in shown:
            raise ConfigError(
                f"movie {movie} was not in the list served under request_id {request_id!r}"
            )
        row_id, created = store.add_outcome(
            request_id, int(movie), type, value, ts=int(self.clock()),
            idempotency_key=idempotency_key,
        )  # fmt: skip
        return {
            "request_id": request_id,
            "movieId": int(movie),
            "type": type,
            "value": value,
            "stored": True,
            "created": created,
        }

    def experiment(self, name: str) -> Experiment:
        """A configured experiment, or one the store recorded; UnknownIdError otherwise."""
        if name in self.experiments:
            return self.experiments[name]
        stored = self._store().experiments() if self.store is not None else {}
        if name in stored:
            return Experiment.model_validate(stored[name])
        known = sorted({*self.experiments, *stored})
        hint = f"; known: {', '.join(known)}" if known else "; none is configured"
        raise UnknownIdError(f"unknown experiment {name!r}{hint}")

    def list_experiments(self) -> dict[str, Any]:
        """Every configured (or recorded) experiment with its units and exposures so far."""
        self.flush()
        stored = self.store.experiments() if self.store is not None else {}
        counts = self.store.exposure_counts() if self.store is not None else {}
        exps = dict(self.experiments)
        for n, d in stored.items():
            exps.setdefault(n, Experiment.model_validate(d))
        out = []
        for e in exps.values():
            d = e.definition()
            c = counts.get(e.name, {"exposures": 0, "units": 0})
            out.append({**d, "configured": e.name in self.experiments, **c})
        return {"experiments": out}

    def experiment_report(self, name: str) -> dict[str, Any]:
        """The analysis of one experiment from the store (see
        :mod:`movierec.experiment.abreport`)."""
        from movierec.experiment.abreport import analyze

        e = self.experiment(name)
        self.flush()
        exposures, outcomes = self._store().experiment_rows(name)
        return analyze(e, exposures, outcomes)

    def _rank_user(self, sv: Served, user: int, stored: list, k: int, f: Filters) -> dict[str, Any]:
        """One user's list, ranked in this thread (see :meth:`_rank_users`)."""
        job = UserJob(sv, user, stored, k, f)
        self._rank_users(sv, [job])
        return job.outcome()

    def _rank_batch(self, jobs: list[UserJob]) -> None:
        """The :class:`Ranker`'s work: each model's jobs ranked together."""
        by_model: dict[int, list[UserJob]] = {}
        for j in jobs:
            by_model.setdefault(id(j.sv), []).append(j)
        for group in by_model.values():
            try:
                self._rank_users(group[0].sv, group)
            except Exception as e:  # that model's requests fail, the others are answered
                for j in group:
                    if j.result is None and j.error is None:
                        j.error = e

    def _rank_users(self, sv: Served, jobs: list[UserJob]) -> None:
        """Rank users on one model: stored ratings folded in where the model can, known
        users scored in one batch, the others by popularity (flagged); the top-K without
        seen and filtered-out movies; each list explained. Known users without filters of
        a factor model are ranked by :func:`topk_dot_sorted` (no full score rows), the
        others from dense score rows by one :func:`topk_rows` pass. Fills each job's
        ``result``, or its ``error`` (a bad filter fails its own job only)."""
        cat, m = sv.catalog, sv.model
        ready: list[_Prepared] = []
        dot, dense, dense_users = [], [], []  # rows of `ready` by how they are ranked
        for j in jobs:
            try:
                u = cat.user_index(j.user)
                fb_i, fb_r = cat.map_ratings(j.stored)
                items, ratings = _merge(*cat.user_history(u), fb_i, fb_r)
                mask = cat.mask(j.filters)
                scores: np.ndarray | None = None
                if fb_i.size and sv.fold_in:
                    with contextlib.suppress(ConfigError):
                        scores = m.fold_in(items, ratings)
                fallback = None
                if scores is None and u >= 0 and bool(m.known_users([u])[0]):
                    by_dot = sv.dot is not None and mask is None
                    (dot if by_dot else dense_users).append((len(ready), u))
                elif scores is None:
                    scores, fallback = sv.popularity, "popularity"
                if scores is not None:
                    dense.append((len(ready), scores))
            except Exception as e:
                j.error = e
                continue
            ready.append(_Prepared(j, items, ratings, mask, fallback))
        if not ready:
            return
        top: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        k = max(p.job.k for p in ready)
        if dot:
            A = m._dot_users(np.array([u for _, u in dot], np.int64))
            A = np.ascontiguousarray(A, dtype=np.float32)
            ip, ix = _csr([ready[r].items for r, _ in dot])
            ti, tv = topk_dot_sorted(A, *sv.dot, k, ip, ix, np.arange(len(dot)))  # type: ignore[misc]
            top.update((r, (ti[q], tv[q])) for q, (r, _) in enumerate(dot))
        if dense_users:
            batch = m.score(np.array([u for _, u in dense_users], np.int64))
            dense += [(r, batch[q]) for q, (r, _) in enumerate(dense_users)]
        if dense:
            S = np.empty((len(dense), cat.n_items), np.float32)
            for q, (r, row) in enumerate(dense):
                mask = ready[r].mask
                S[q] = row if mask is None else np.where(mask, row, np.float32(-np.inf))
            ip, ix = _csr([ready[r].items for r, _ in dense])
            ti, tv = topk_rows(S, k, ip, ix)
            top.update((r, (ti[q], tv[q])) for q, (r, _) in enumerate(dense))
        lists = []
        for r, p in enumerate(ready):
            ti, tv = top[r][0][: p.job.k], top[r][1][: p.job.k]
            lists.append((ti[ti >= 0].astype(np.int64), tv[ti >= 0]))
        explained = [r for r, p in enumerate(ready) if p.fallback is None]
        whys = m.explain_many([(ready[r].items, ready[r].ratings, lists[r][0]) for r in explained])
        because = dict(zip(explained, whys, strict=True))
        for r, p in enumerate(ready):
            p.job.result = {
                "user": p.job.user,
                "model": sv.label,
                "fallback": p.fallback,
                "items": cat.listing(*lists[r], because.get(r)),
            }

    def batch(self, users: list[int], k: int = 10, model: str | None = None) -> dict[str, Any]:
        """Recommendations for many users (offline jobs)."""
        sv = self.state.get(model)
        k = check_k(k)
        out = []
        for u in users:
            r = self._user_list(sv, int(u), k, Filters())
            out.append({"user": int(u), "fallback": r["fallback"], "items": r["items"]})
        return {"model": sv.label, "results": out}

    def history(self, user: int, limit: int = 50) -> dict[str, Any]:
        """Her stored ratings (newest first), then her training ratings (highest first)."""
        cat = self.state.get(None).catalog
        stored = self._stored_user(user)
        out = []
        fed = set()
        for movie, r, ts in reversed(stored):
            j = int(cat.item_map.index(movie, missing="minus1")[0])
            if j < 0:
                continue
            fed.add(j)
            out.append(
                {**cat.movie(j), "rating": float(r), "timestamp": int(ts), "source": "feedback"}
            )
        hi, hr = cat.user_history(cat.user_index(user))
        for n in np.lexsort((hi, -hr)):
            if int(hi[n]) not in fed:
                out.append(
                    {**cat.movie(int(hi[n])), "rating": float(hr[n]), "timestamp": None,
                     "source": "train"}
                )  # fmt: skip
        return {"user": int(user), "items": out[: max(int(limit), 0)]}

    def predict(self, user: int, movie: int, model: str | None = None) -> dict[str, Any]:
        """Predicted rating (rating models); unknown users get the biases fallback."""
        sv = self.state.get(model)
        m, cat = sv.model, sv.catalog
        if not m.rating_model:
            rating = [s.label for s in self.state.models.values() if s.model.rating_model]
            hint = f"; rating models loaded: {', '.join(rating)}" if rating else ""
            raise ConfigError(f"model {sv.label!r} ranks movies and predicts no ratings{hint}")
        i = cat.movie_index(movie)
        u = cat.user_index(user)
        if u >= 0:
            pred, fb = m.predict([u], [i], return_fallback=True)
            value, fallback = float(pred[0]), bool(fb[0])
        else:
            bi = float(m.fallback_bi_[i]) if m.item_count_[i] > 0 else 0.0
            lo, hi = m.rating_scale_
            value, fallback = float(np.clip(m.global_mean_ + bi, lo, hi)), True
        return {
            "user": int(user),
            "movieId": int(movie),
            "model": sv.label,
            "prediction": value,
            "fallback": fallback,
        }

    def rate_user(
        self, user: int, movie: int, rating: float, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Store a user's rating; her next recommendations reflect it."""
        r = check_rating(rating)
        self.state.get(None).catalog.movie_index(movie)
        self._write(
            movie=int(movie), rating=r, user=int(user), source="api",
            idempotency_key=idempotency_key,
        )  # fmt: skip
        if self._rated is not None:
            self._rated.add(int(user))  # before the invalidation: a later read sees the rating
        self.cache.invalidate(("user", int(user)))
        return {"user": int(user), "movieId": int(movie), "rating": r, "stored": True}

    # -- sessions -----------------------------------------------------------------------------
    def create_session(self, idempotency_key: str | None = None) -> dict[str, Any]:
        sid, _ = self._store().create_session(idempotency_key)
        return {"session_id": sid}

    def rate_session(
        self, sid: str, movie: int, rating: float, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        r = check_rating(rating)
        self.state.get(None).catalog.movie_index(movie)
        self._require_session(sid)
        self._write(
            movie=int(movie), rating=r, session=sid, source="session",
            idempotency_key=idempotency_key,
        )  # fmt: skip
        self.cache.invalidate(("session", sid))
        return {"session_id": sid, "movieId": int(movie), "rating": r, "stored": True}

    def session_ratings(self, sid: str) -> dict[str, Any]:
        self._require_session(sid)
        cat = self.state.get(None).catalog
        out = []
        for movie, r, _ts in self.store.session_ratings(sid):
            j = int(cat.item_map.index(movie, missing="minus1")[0])
            if j >= 0:
                out.append({**cat.movie(j), "rating": float(r)})
        return {"session_id": sid, "items": out}

    def recommend_session(
        self,
        sid: str,
        k: int = 10,
        model: str | None = None,
        favorite: int | None = None,
        filters: Filters = Filters(),
    ) -> dict[str, Any]:
        """A visitor's top-``k``: her session ratings folded in (popularity until she has
        rated, or for models without fold-in); with ``favorite``, the reciprocal-rank fusion
        of that list and the movies most similar in content to the favourite."""
        k = check_k(k)
        cat = self.state.get(model).catalog
        fav = None if favorite is None else cat.movie_index(favorite)
        self._require_session(sid)

        def one(sv: Served, kk: int) -> dict[str, Any]:
            key = self.cache.key(("session", sid), sv.label, sv.version, kk, fav, filters)
            res = self.cache.get(key)
            if res is None:
                res = self._rank_session(sv, sid, kk, fav, filters)
                self.cache.put(key, res)
            return res

        arm, needs = self._plan(("session", sid), k, model)
        got = [(name, sv, one(sv, kk)) for name, sv, kk in needs]
        return self._finish(("session", sid), k, arm, got, lambda sv, start: None)

    def _rank_session(
        self, sv: Served, sid: str, k: int, fav: int | None, f: Filters
    ) -> dict[str, Any]:
        cat, m = sv.catalog, sv.model
        items, ratings = cat.map_ratings(self.store.session_ratings(sid))
        order = np.argsort(items, kind="stable")
        items, ratings = items[order], ratings[order]
        scores, fallback = None, None
        if items.size and sv.fold_in:
            try:
                scores = m.fold_in(items, ratings)
            except ConfigError:
                scores = None
        if scores is None:
            scores, fallback = sv.popularity, "popularity"
        seen = items if fav is None else np.union1d(items, [fav])
        if fav is None:
            recs, vals = _topk(cat, scores, k, f, seen)
            from_content: set[int] = set()
        else:
            depth = min(cat.n_items, max(3 * k, 100))
            cf, _ = _topk(cat, scores, depth, f, seen)
            content = cat.content_model()._similar_scores(np.array([fav]))[0]
            ct, _ = _topk(cat, content, depth, f, seen)
            recs, vals = _rrf([cf, ct], k)
            from_content = set(ct[: 2 * k].tolist())
        why = m.explain(items, ratings, recs, n=2) if items.size else [[] for _ in recs]
        if fav is not None:
            why = [w if j not in from_content or len(w) >= 2 else [*w, fav]
                   for j, w in zip(recs.tolist(), why, strict=True)]  # fmt: skip
        return {
            "session_id": sid,
            "model": sv.label,
            "fallback": fallback,
            "favorite": None if fav is None else cat.movie(fav),
            "items": cat.listing(recs, vals, why),
        }

    # -- movies -------------------------------------------------------------------------------
    def search(self, q: str, limit: int = 10, filters: Filters = Filters()) -> dict[str, Any]:
        """Typo-tolerant title search (best match first, then the most rated)."""
        if not 1 <= int(limit) <= 100:
            raise ConfigError(f"limit must be between 1 and 100, got {limit}")
        cat = self.state.get(None).catalog
        hits = cat.index.search(q, int(limit), allowed=cat.mask(filters))
        return {"query": q, "items": [{**cat.movie(j), "match": s} for j, s in hits]}

    def movie(self, movie: int) -> dict[str, Any]:
        cat = self.state.get(None).catalog
        j = cat.movie_index(movie)
        imdb = cat.imdb[j] if cat.imdb is not None else None
        tmdb = cat.tmdb[j] if cat.tmdb is not None else None
        mean = cat.means[j]
        return {
            **cat.movie(j),
            "n_ratings": int(cat.counts[j]),
            "mean_rating": None if np.isnan(mean) else round(float(mean), 3),
            "links": {
                "imdb": f"https://www.imdb.com/title/tt{int(imdb):07d}/" if imdb else None,
                "tmdb": f"https://www.themoviedb.org/movie/{int(tmdb)}" if tmdb else None,
            },
        }

    def similar(
        self, movie: int, k: int = 10, kind: str = "cf", model: str | None = None
    ) -> dict[str, Any]:
        """Movies similar to one: by the model (cf), in content, or both fused (hybrid)."""
        k = check_k(k)
        if kind not in KINDS:
            raise ConfigError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        sv = self.state.get(model)
        cat = sv.catalog
        j = cat.movie_index(movie)
        key = self.cache.key(("movie", j), sv.label, sv.version, k, kind)
        res = self.cache.get(key)
        if res is None:
            res = self._similar(sv, j, k, kind)
            self.cache.put(key, res)
        return res

    def _similar(self, sv: Served, j: int, k: int, kind: str) -> dict[str, Any]:
        cat = sv.catalog
        if kind == "cf" and sv.sim is None:
            raise ConfigError(f"model {sv.label!r} has no item similarity; use kind=content")
        depth = k if kind != "hybrid" else min(cat.n_items, max(3 * k, 100))
        lists = []
        if kind in ("cf", "hybrid") and sv.sim is not None:
            i, v = sv.sim.similar_items([j], k=depth)
            lists.append((i[0][i[0] >= 0], v[0][i[0] >= 0]))
        if kind in ("content", "hybrid"):
            i, v = cat.content_model().similar_items([j], k=depth)
            lists.append((i[0][i[0] >= 0], v[0][i[0] >= 0]))
        if kind == "hybrid" and len(lists) > 1:
            items, vals = _rrf([a for a, _ in lists], k)
        else:
            items, vals = lists[0][0][:k], lists[0][1][:k]
        return {
            "movieId": int(cat.raw[j]),
            "kind": kind,
            "model": sv.label,
            "items": cat.listing(np.asarray(items), np.asarray(vals)),
        }
