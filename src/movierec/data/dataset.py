"""The canonical in-memory data set: ratings as dense-index columns plus movie metadata."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp

from movierec.errors import DataError, UnknownIdError
from movierec.kernels.sparse import (
    coo_to_csr_order,
    dense_ids_by_table,
    latest_of_pairs,
    strictly_sorted_pairs,
)

# Above this many distinct values per id, a presence table is no cheaper than sorting.
_TABLE_LIMIT = 200_000_000


class IdMap:
    """Raw ids (MovieLens userId / movieId) <-> dense indices 0..n-1.

    Parameters
    ----------
    raw_ids : array of int
        The distinct raw ids, sorted ascending; index ``i`` is the dense id of ``raw_ids[i]``.
    """

    def __init__(self, raw_ids: np.ndarray) -> None:
        raw = np.asarray(raw_ids, dtype=np.int64)
        if raw.size and np.any(raw[1:] <= raw[:-1]):
            raise DataError("IdMap needs distinct raw ids sorted ascending")
        self.raw = raw

    @classmethod
    def encode(cls, raw: np.ndarray) -> tuple[IdMap, np.ndarray]:
        """Build a map from a column of raw ids and return it with the dense column (int32)."""
        raw = np.ascontiguousarray(raw, dtype=np.int64)
        if raw.size == 0:
            return cls(np.empty(0, np.int64)), np.empty(0, np.int32)
        lo, hi = int(raw.min()), int(raw.max())
        if lo >= 0 and hi < _TABLE_LIMIT:
            uniq, dense = dense_ids_by_table(raw, hi)
        else:
            uniq, inverse = np.unique(raw, return_inverse=True)
            dense = inverse.astype(np.int32)
        return cls(uniq), dense

    def __len__(self) -> int:
        return int(self.raw.size)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self.raw, other.raw)

    def __hash__(self) -> int:  # pragma: no cover - maps are not used as keys
        return hash(self.raw.tobytes())

    def index(self, raw: Any, missing: str = "error") -> np.ndarray:
        """Dense indices of raw ids.

        Parameters
        ----------
        raw : int or array of int
        missing : {"error", "minus1"}
            Unknown ids raise :class:`UnknownIdError`, or map to -1.
        """
        try:
            arr = np.atleast_1d(np.asarray(raw, dtype=np.int64))
        except OverflowError:
            raise UnknownIdError(f"unknown id {raw}: ids are 64-bit integers") from None
        pos = np.searchsorted(self.raw, arr)
        pos = np.minimum(pos, max(len(self) - 1, 0))
        ok = (self.raw[pos] == arr) if len(self) else np.zeros(arr.shape, bool)
        if not ok.all():
            if missing == "error":
                bad = arr[~ok][:5].tolist()
                raise UnknownIdError(f"unknown id(s) {bad}: not in this data set")
            pos = np.where(ok, pos, -1)
        return pos.astype(np.int32)

    def find(self, raw: int) -> int:
        """Dense index of one raw id, -1 if unknown: :meth:`index` for a single id, ~10x
        faster (a served request looks up its user several times)."""
        n = self.raw.size
        if not n or not -(2**63) <= raw < 2**63:
            return -1
        p = int(self.raw.searchsorted(raw))
        return p if p < n and int(self.raw[p]) == raw else -1

    def to_raw(self, index: Any) -> np.ndarray:
        """Raw ids of dense indices."""
        return self.raw[np.asarray(index, dtype=np.int64)]


@dataclass(eq=False)
class Dataset:
    """Ratings as columns of dense indices sharing two IdMaps, plus the movie tables.

    Attributes
    ----------
    users, items : int32 arrays
        Dense user and item index of each rating.
    ratings : float32 array
    timestamps : int64 array (unix seconds)
    user_map, item_map : IdMap
        Items are the movies that have at least one rating in the full release.
    movies : polars DataFrame
        ``item`` (raw movieId), ``title`` (without the year), ``year`` (or null),
        ``genres`` (list of str; empty for "(no genres listed)"); every movie of the release.
    tags, links, user_info : polars DataFrame or None
        As published by the release (raw ids).
    name : str
        Release name or folder; ``synthetic`` marks generated data.
    notes : dict
        What loading did (e.g. ``duplicates_dropped``).
    """

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    timestamps: np.ndarray
    user_map: IdMap
    item_map: IdMap
    movies: pl.DataFrame
    tags: pl.DataFrame | None = None
    links: pl.DataFrame | None = None
    user_info: pl.DataFrame | None = None
    name: str = "dataset"
    synthetic: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_raw(
        cls,
        user_ids: np.ndarray,
        movie_ids: np.ndarray,
        ratings: np.ndarray,
        timestamps: np.ndarray,
        movies: pl.DataFrame,
        **kw: Any,
    ) -> Dataset:
        """Validate raw rating columns, drop duplicate (user, movie) rows and map ids.

        Duplicates keep the latest rating (on equal timestamps, the later row in the
        file); the number dropped is recorded in ``notes["duplicates_dropped"]``. Rows are
        stored in (user, movie) order, so the same ratings give the same data set (and the
        same seeded splits) whatever the order of the file.
        """
        ratings = np.ascontiguousarray(ratings, dtype=np.float32)
        timestamps = np.ascontiguousarray(timestamps, dtype=np.int64)
        if ratings.size == 0:
            raise DataError("the ratings file has no rows: give a file with at least one rating")
        bad = ~((ratings >= 0.5) & (ratings <= 5.0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"rating {ratings[k]!r} in row {k + 1} is out of range: ratings must lie in [0.5, 5]"
            )
        user_map, u = IdMap.encode(user_ids)
        item_map, i = IdMap.encode(movie_ids)
        notes = dict(kw.pop("notes", {}))
        notes["duplicates_dropped"] = 0
        # MovieLens files come sorted by (userId, movieId): then there is nothing to do
        if not strictly_sorted_pairs(u, i):
            # two stable counting sorts: by movie, then by user -> (user, movie) order, file
            # order kept within a pair, so duplicates are adjacent
            _, by_item = coo_to_csr_order(i, len(item_map))
            _, by_user = coo_to_csr_order(u[by_item], len(user_map))
            order = by_item[by_user]
            keep = latest_of_pairs(order, u, i, timestamps)
            notes["duplicates_dropped"] = int(keep.size - keep.sum())
            if notes["duplicates_dropped"]:
                # the latest row of every pair stays, so no user or movie vanishes
                order = order[keep]
            u, i, ratings, timestamps = u[order], i[order], ratings[order], timestamps[order]
        return cls(u, i, ratings, timestamps, user_map, item_map, movies, notes=notes, **kw)

    # -- shape ---------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return len(self.user_map)

    @property
    def n_items(self) -> int:
        return len(self.item_map)

    @property
    def n_ratings(self) -> int:
        return int(self.ratings.size)

    @property
    def label(self) -> str:
        return f"{self.name} (synthetic)" if self.synthetic else self.name

    @cached_property
    def rating_scale(self) -> tuple[float, float]:
        """(lowest, highest) rating in the data; models clip predictions to it."""
        if self.n_ratings == 0:
            return (0.5, 5.0)
        return float(self.ratings.min()), float(self.ratings.max())

    # -- matrices ------------------------------------------------------------------------
    def csr(self) -> sp.csr_matrix:
        """Users x items matrix of ratings (float32), indices sorted within rows. Cached."""
        if "_csr" not in self.__dict__:
            shape = (self.n_users, self.n_items)
            if strictly_sorted_pairs(self.users, self.items):
                # rows already in (user, movie) order: the columns are the CSR arrays
                # int32 offsets when they fit, so scipy keeps the int32 columns without a copy
                small = self.n_ratings < np.iinfo(np.int32).max
                indptr = np.zeros(self.n_users + 1, dtype=np.int32 if small else np.int64)
                np.cumsum(self.user_counts(), out=indptr[1:])
                m = sp.csr_matrix((self.ratings, self.items, indptr), shape=shape)
            else:
                indptr, order = coo_to_csr_order(self.users, self.n_users)
                m = sp.csr_matrix((self.ratings[order], self.items[order], indptr), shape=shape)
                m.sort_indices()
            self.__dict__["_csr"] = m
        return self.__dict__["_csr"]

    def csc(self) -> sp.csc_matrix:
        """Items-by-column view of :meth:`csr` (cached)."""
        if "_csc" not in self.__dict__:
            self.__dict__["_csc"] = self.csr().tocsc()
        return self.__dict__["_csc"]

    def user_counts(self) -> np.ndarray:
        """Number of ratings of every user (length n_users)."""
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        """Number of ratings of every item (length n_items)."""
        return np.bincount(self.items, minlength=self.n_items)

    # -- derived -------------------------------------------------------------------------
    def subset(self, rows: np.ndarray, name: str | None = None) -> Dataset:
        """A data set of some rating rows (mask or indices) sharing this one's maps and tables."""
        rows = np.asarray(rows)
        return Dataset(
            self.users[rows],
            self.items[rows],
            self.ratings[rows],
            self.timestamps[rows],
            self.user_map,
            self.item_map,
            self.movies,
            self.tags,
            self.links,
            self.user_info,
            name=name or self.name,
            synthetic=self.synthetic,
            notes=dict(self.notes),
        )

    @cached_property
    def item_table(self) -> pl.DataFrame:
        """Movie metadata aligned to dense item indices (row i = item i); gaps filled empty."""
        idx = pl.DataFrame({"index": np.arange(self.n_items), "item": self.item_map.raw})
        t = idx.join(self.movies, on="item", how="left").sort("index")
        return t.with_columns(
            pl.col("title").fill_null(""),
            pl.col("genres").fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )

    def fingerprint(self) -> str:
        """A short hash of the rating content (ids, ratings, timestamps)."""
        h = hashlib.sha256()
        for a in (self.user_map.raw, self.item_map.raw, self.users, self.items, self.ratings):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(np.ascontiguousarray(self.timestamps).tobytes())
        return h.hexdigest()[:16]

    def stats(self) -> dict[str, Any]:
        """Summary statistics: sizes, density, rating histogram, activity quantiles, time range."""
        n = self.n_ratings
        values, counts = np.unique(self.ratings, return_counts=True)
        q = [0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0]
        uc, ic = self.user_counts(), self.item_counts()
        return {
            "name": self.label,
            "synthetic": self.synthetic,
            "users": self.n_users,
            "movies": self.n_items,
            "movies_in_catalogue": int(self.movies.height),
            "ratings": n,
            "density": n / (self.n_users * self.n_items) if n else 0.0,
            "rating_mean": float(self.ratings.mean()) if n else float("nan"),
            "rating_histogram": {f"{v:g}": int(c) for v, c in zip(values, counts, strict=True)},
            "ratings_per_user": {f"q{int(p * 100)}": float(np.quantile(uc, p)) for p in q},
            "ratings_per_movie": {f"q{int(p * 100)}": float(np.quantile(ic, p)) for p in q},
            "time_min": int(self.timestamps.min()) if n else None,
            "time_max": int(self.timestamps.max()) if n else None,
            "tags": 0 if self.tags is None else int(self.tags.height),
            "duplicates_dropped": int(self.notes.get("duplicates_dropped", 0)),
        }


_ARRAYS = ("users", "items", "ratings", "timestamps")
_TABLES = ("movies", "tags", "links", "user_info")
CACHE_FORMAT = 3
_CHUNK = 1 << 22


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def save_columnar(ds: Dataset, folder: Path, meta: dict[str, Any]) -> None:
    """Write ``ds`` as .npy arrays + parquet tables + meta.json (with the sha256 of every
    file), atomically: a temp dir of this process, renamed into place."""
    from movierec.atomic import check_interrupt, stage_dir

    tmp = stage_dir(folder.parent, ".tmp-")
    try:
        for a in _ARRAYS:
            np.save(tmp / f"{a}.npy", getattr(ds, a), allow_pickle=False)
        np.save(tmp / "user_ids.npy", ds.user_map.raw, allow_pickle=False)
        np.save(tmp / "item_ids.npy", ds.item_map.raw, allow_pickle=False)
        tables = []
        for t in _TABLES:
            df = getattr(ds, t)
            if df is not None:
                df.write_parquet(tmp / f"{t}.parquet")
                tables.append(t)
        info = {
            "format": CACHE_FORMAT,
            "name": ds.name,
            "synthetic": ds.synthetic,
            "notes": ds.notes,
            "tables": tables,
            **meta,
            "files": {f.name: _digest(f) for f in sorted(tmp.iterdir())},
        }
        (tmp / "meta.json").write_text(json.dumps(info))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        check_interrupt()
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_columnar(folder: Path) -> tuple[Dataset, dict[str, Any]] | None:
    """Read a folder written by :func:`save_columnar`; None when absent, stale or damaged
    (a file that does not match its checksum)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != CACHE_FORMAT:
            return None
        files = meta["files"]
        names = {f.name for f in folder.iterdir()} - {"meta.json"}
        if names != set(files) or any(_digest(folder / n) != d for n, d in files.items()):
            return None
        arr = {a: np.load(folder / f"{a}.npy", allow_pickle=False) for a in _ARRAYS}
        tables = {t: pl.read_parquet(folder / f"{t}.parquet") for t in meta["tables"]}
        ds = Dataset(
            **arr,
            user_map=IdMap(np.load(folder / "user_ids.npy", allow_pickle=False)),
            item_map=IdMap(np.load(folder / "item_ids.npy", allow_pickle=False)),
            movies=tables.pop("movies"),
            **tables,
            name=meta["name"],
            synthetic=meta["synthetic"],
            notes=meta["notes"],
        )
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        pl.exceptions.PolarsError,
        json.JSONDecodeError,
    ):
        return None
    if len({a.size for a in arr.values()}) != 1:
        return None
    return ds, meta
