"""MovieLens ratings into a Spark DataFrame, validated like :mod:`movierec.data.formats`.

Reads the ``csv`` layout (ratings.csv with a header; ml-20m/25m/32m/latest), the ``dat``
layout (``::``-separated ratings.dat; ml-1m/10m) and ml-100k's tab-separated u.data, from a
local folder or any URI Spark reads (``s3a://bucket/ml-25m``, ``hdfs:///data/ml-25m``).
Ids must be integers, timestamps integers (or whole floats), ratings numbers in [0.5, 5];
the first bad line, in file order, is one :class:`~movierec.errors.DataError` naming the
file, line and value. Duplicate (user, movie) rows keep the latest rating (on equal
timestamps the later line), as :meth:`movierec.data.dataset.Dataset.from_raw` does. The
small metadata files (movies, links) are read whole onto the driver with the local parsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from movierec.data import formats
from movierec.data.dataset import Dataset, IdMap
from movierec.errors import DataError

#: layout -> (ratings file, field separator (a regex), has a header line)
LAYOUTS = {
    "csv": ("ratings.csv", ",", True),
    "dat": ("ratings.dat", "::", False),
    "ml-100k": ("u.data", "\t", False),
}
_COLS = ("user", "item", "rating", "timestamp")
_HEADER = {"userid": "user", "movieid": "item", "rating": "rating", "timestamp": "timestamp"}
_INT = r"^\s*[+-]?\d+\s*$"


@dataclass(eq=False)
class SparkData:
    """A MovieLens release as a Spark DataFrame plus its (small) id maps and movie table.

    Attributes
    ----------
    ratings : pyspark DataFrame
        ``u``, ``i`` (dense int indices, as :class:`~movierec.data.dataset.IdMap` gives
        them), ``user``, ``item`` (raw ids), ``rating`` (float), ``timestamp`` (long);
        one row per (user, movie). Persisted; :meth:`close` unpersists it.
    user_ids, item_ids : int64 arrays
        Sorted raw ids; position = dense index.
    movies, links : polars DataFrames (links may be None)
    """

    ratings: Any
    user_ids: np.ndarray
    item_ids: np.ndarray
    movies: pl.DataFrame
    links: pl.DataFrame | None = None
    name: str = "dataset"
    synthetic: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.user_ids.size)

    @property
    def n_items(self) -> int:
        return int(self.item_ids.size)

    @property
    def label(self) -> str:
        return f"{self.name} (synthetic)" if self.synthetic else self.name

    def dataset(self, part: Any = None, name: str | None = None) -> Dataset:
        """The rows of ``part`` (a DataFrame with u, i, rating, timestamp; default all)
        collected into a local :class:`Dataset` with this data's id maps, rows in
        (user, movie) order as the local reader stores them."""
        df = self.ratings if part is None else part
        t = df.select("u", "i", "rating", "timestamp").toArrow()
        u = t.column("u").to_numpy().astype(np.int32)
        i = t.column("i").to_numpy().astype(np.int32)
        order = np.lexsort((i, u))
        return Dataset(
            u[order],
            i[order],
            t.column("rating").to_numpy().astype(np.float32)[order],
            t.column("timestamp").to_numpy().astype(np.int64)[order],
            IdMap(self.user_ids),
            IdMap(self.item_ids),
            self.movies,
            links=self.links,
            name=name or self.name,
            synthetic=self.synthetic,
            notes=dict(self.notes),
        )

    def close(self) -> None:
        """Release the cached ratings."""
        self.ratings.unpersist()


# -- paths ------------------------------------------------------------------------------------
def _uri(path: str | Path) -> str:
    """A URI Spark reads: kept when it has a scheme, else a local folder as file://."""
    text = str(path)
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text):
        return text.rstrip("/")
    p = formats.expand_path(text)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder; give a MovieLens folder or a URI")
    if p.is_file():
        raise DataError(
            f"{p} is a file: the Spark engine reads a folder of MovieLens files "
            "(unzip a release first)"
        )
    src = formats.Source(p)  # finds the release inside the folder, as the local reader does
    folder = p / (Path(next(iter(src.files.values()))).parent if src.files else Path("."))
    return folder.resolve().as_uri()


def _exists(spark: Any, uri: str) -> bool:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    try:
        fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        return bool(fs.exists(path))
    except Exception as e:  # unknown scheme, missing connector or credentials: one line
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DataError(f"{uri}: cannot be read by Spark ({msg})") from e


def _bytes(spark: Any, uri: str) -> bytes:
    """A small file's content, read through Spark's file systems."""
    return bytes(spark.sparkContext.binaryFiles(uri).first()[1])


def detect(spark: Any, root: str) -> str:
    """The layout of the release at ``root``: csv, dat or ml-100k."""
    for layout, (file, _, _) in LAYOUTS.items():
        if _exists(spark, f"{root}/{file}"):
            return layout
    raise DataError(
        f"{root}: no known MovieLens layout for Spark (expected ratings.csv, ratings.dat or u.data)"
    )


# -- ratings ----------------------------------------------------------------------------------
def _line(raw: Any, row: int) -> int:
    """1-based line number of the line with id ``row`` (ids follow the file order)."""
    from pyspark.sql import functions as F

    return int(raw.filter(F.col("_row") < row).count()) + 1


def _fail(raw: Any, name: str, bad: dict[str, Any], sep: str, n_fields: int) -> None:
    """Raise the DataError of the first bad line ``bad`` (a row of the checked frame)."""
    k = _line(raw, bad["_row"])
    what = bad["_why"]
    col = what.split(":", 1)[1] if ":" in what else ""
    value = bad[f"_s_{col}"] if col else None
    if what == "fields":
        n = len(re.split(sep, bad["value"]))
        raise DataError(f"{name}: line {k} has {n} fields, expected {n_fields}; fix that line")
    if what.startswith("empty:"):
        raise DataError(f"{name}: line {k}: column {col!r} is empty; fix or remove that line")
    if what.startswith("range:"):
        raise DataError(
            f"{name}: line {k}: rating {float(value):g} is out of range; "
            "ratings must lie in [0.5, 5]"
        )
    if col == "rating":
        why = f"a non-numeric value {value!r}"
    elif re.match(_INT, value):
        why = f"{value!r}, too large (ids and timestamps must fit in 64 bits)"
    elif _try_float(value) is not None:
        why = f"{value!r}, not an integer (ids and timestamps are whole numbers)"
    else:
        why = f"a non-numeric value {value!r}"
    raise DataError(f"{name}: line {k}: column {col!r} has {why}; fix or remove that line")


def read_ratings(spark: Any, root: str, layout: str) -> tuple[Any, dict[str, Any]]:
    """Validated, de-duplicated ratings (raw ids) of the release at ``root``.

    Returns (DataFrame of user, item, rating, timestamp; notes with ``duplicates_dropped``).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    file, sep, header = LAYOUTS[layout]
    name = file
    raw = spark.read.text(f"{root}/{file}").withColumn("_row", F.monotonically_increasing_id())
    first = raw.first()
    if first is None or not raw.filter(F.trim("value") != "").limit(1).count():
        raise DataError(f"{name}: the ratings file is empty; give a file with ratings")
    body = raw.filter(F.trim("value") != "")
    if header:
        cells = [c.strip() for c in first["value"].lstrip("\ufeff").split(sep)]
        pos = {_HEADER[c.lower()]: j for j, c in enumerate(cells) if c.lower() in _HEADER}
        missing = sorted(set(_COLS) - set(pos))
        if missing:
            want = "userId,movieId,rating,timestamp"
            raise DataError(
                f"{name}: missing column(s) {missing}; expected header {want}, "
                f"found {first['value'][:80]!r}"
            )
        n_fields = len(cells)
        body = body.filter(F.col("_row") != first["_row"])
    else:
        pos = {c: j for j, c in enumerate(_COLS)}
        n_fields = 4
    parts = F.split(F.regexp_replace("value", "\r$", ""), sep, -1)
    df = body.select(
        "value",
        "_row",
        F.size(parts).alias("_size"),
        *(F.trim(F.try_element_at(parts, F.lit(pos[c] + 1))).alias(f"_s_{c}") for c in _COLS),
    )
    ts_f = F.col("_s_timestamp").try_cast("double")
    typed = df.select(
        "*",
        F.when(F.col("_s_user").rlike(_INT), F.col("_s_user").try_cast("long")).alias("user"),
        F.when(F.col("_s_item").rlike(_INT), F.col("_s_item").try_cast("long")).alias("item"),
        F.col("_s_rating").try_cast("float").alias("rating"),
        F.when(F.col("_s_timestamp").rlike(_INT), F.col("_s_timestamp").try_cast("long"))
        .when(
            (ts_f == F.floor(ts_f)) & (F.abs(ts_f) < 2.0**63), ts_f.cast("long")
        )  # whole floats, as the local reader allows
        .alias("timestamp"),
    )
    why = F.when(F.col("_size") != n_fields, F.lit("fields"))
    for c in _COLS:
        why = why.when((F.col(f"_s_{c}").isNull()) | (F.col(f"_s_{c}") == ""), F.lit(f"empty:{c}"))
        why = why.when(F.col(c).isNull(), F.lit(f"type:{c}"))
    why = why.when(~((F.col("rating") >= 0.5) & (F.col("rating") <= 5.0)), F.lit("range:rating"))
    checked = typed.withColumn("_why", why)
    stats = checked.agg(
        F.count(F.lit(1)).alias("n"), F.min(F.when(F.col("_why").isNotNull(), F.col("_row")))
    ).first()
    if stats[1] is not None:
        bad = checked.filter(F.col("_row") == stats[1]).first().asDict()
        _fail(raw, name, bad, sep, n_fields)
    # duplicates: the latest timestamp wins, on a tie the later line
    w = Window.partitionBy("user", "item").orderBy(F.desc("timestamp"), F.desc("_row"))
    out = (
        checked.select(*_COLS, "_row")
        .withColumn("_k", F.row_number().over(w))
        .filter(F.col("_k") == 1)
        .select(*_COLS)
    )
    return out, {"rows": int(stats[0])}


def _try_float(v: str | None) -> float | None:
    try:
        return float(v) if v is not None else None
    except ValueError:
        return None


# -- metadata ---------------------------------------------------------------------------------
def _movies(spark: Any, root: str, layout: str) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(movies, links) read whole with the local readers' parsers."""
    ids: list[int] = []
    titles: list[str] = []
    genres: list[list[str]] = []
    links = None
    if layout == "csv":
        if _exists(spark, f"{root}/movies.csv"):
            m = formats._csv(
                _bytes(spark, f"{root}/movies.csv"),
                "movies.csv",
                {"movieId": pl.Int64, "title": pl.String, "genres": pl.String},
                infer_schema=False,
            )
            ids, titles = m["movieId"].to_list(), m["title"].to_list()
            genres = [g.split("|") for g in m["genres"].to_list()]
        if _exists(spark, f"{root}/links.csv"):
            raw = formats._csv(
                _bytes(spark, f"{root}/links.csv"), "links.csv", {}, infer_schema=False
            )
            if "movieId" not in raw.columns:
                raise DataError(f"links.csv: missing column 'movieId'; found {raw.columns}")
            links = pl.DataFrame(
                {
                    "item": formats._ints(raw["movieId"].fill_null(""), "links.csv", 2),
                    **{
                        k: raw[c].cast(pl.Int64, strict=False) if c in raw.columns else None
                        for k, c in (("imdb", "imdbId"), ("tmdb", "tmdbId"))
                    },
                }
            )
    elif layout == "dat":
        if _exists(spark, f"{root}/movies.dat"):
            text = formats._decode(_bytes(spark, f"{root}/movies.dat"))
            for n, (mid, title, gen) in enumerate(formats._split_dat(text, 3, "movies.dat"), 1):
                ids.append(formats._int(mid, "movies.dat", "movie id", n))
                titles.append(title)
                genres.append(gen.split("|"))
    elif _exists(spark, f"{root}/u.item"):
        names = formats._ML100K_GENRES
        if _exists(spark, f"{root}/u.genre"):
            lines = formats._decode(_bytes(spark, f"{root}/u.genre")).splitlines()
            names = [ln.split("|")[0] for ln in lines if ln.strip()]
        text = formats._decode(_bytes(spark, f"{root}/u.item"))
        for n, ln in enumerate(text.splitlines(), 1):
            if not ln.strip():
                continue
            f = ln.split("|")
            if len(f) < 5 + len(names):
                raise DataError(f"u.item: line {n} has {len(f)} fields, expected {5 + len(names)}")
            ids.append(formats._int(f[0], "u.item", "movie id", n))
            titles.append(f[1])
            flags = f[5 : 5 + len(names)]
            genres.append([g for g, x in zip(names, flags, strict=True) if x.strip() == "1"])
    return formats._movies_frame(ids, titles, genres), links


# -- the entry point --------------------------------------------------------------------------
def _index(spark: Any, ids: np.ndarray, raw: str, dense: str) -> Any:
    import pyarrow as pa

    t = pa.table({raw: ids.astype(np.int64), dense: np.arange(ids.size, dtype=np.int32)})
    return spark.createDataFrame(t)


def read(spark: Any, path: str | Path, name: str | None = None) -> SparkData:
    """Read the MovieLens release at ``path`` (a local folder or a URI) into Spark."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    root = _uri(path)
    layout = detect(spark, root)
    ratings, notes = read_ratings(spark, root, layout)
    ratings = ratings.persist(StorageLevel.MEMORY_AND_DISK)
    users = ratings.groupBy("user").count().toArrow()
    items = ratings.select("item").distinct().toArrow()
    user_ids = np.sort(users.column("user").to_numpy())
    item_ids = np.sort(items.column("item").to_numpy())
    n = int(users.column("count").to_numpy().sum())
    df = ratings.join(F.broadcast(_index(spark, user_ids, "user", "u")), "user").join(
        F.broadcast(_index(spark, item_ids, "item", "i")), "item"
    )
    df = df.select("u", "i", "user", "item", "rating", "timestamp").persist(
        StorageLevel.MEMORY_AND_DISK
    )
    df.count()
    ratings.unpersist()
    movies, links = _movies(spark, root, layout)
    synthetic = _exists(spark, f"{root}/.movierec-synthetic")
    notes = {
        "layout": layout,
        "source": root,
        "duplicates_dropped": notes["rows"] - n,
        "engine": "spark",
    }
    label = name or root.rstrip("/").rsplit("/", 1)[-1]
    return SparkData(df, user_ids, item_ids, movies, links, label, synthetic, notes)


def from_dataset(spark: Any, ds: Dataset) -> SparkData:
    """A local Dataset as SparkData (tests, benchmarks, and data already in memory)."""
    import pyarrow as pa
    from pyspark import StorageLevel

    t = pa.table(
        {
            "u": ds.users.astype(np.int32),
            "i": ds.items.astype(np.int32),
            "user": ds.user_map.to_raw(ds.users).astype(np.int64),
            "item": ds.item_map.to_raw(ds.items).astype(np.int64),
            "rating": ds.ratings.astype(np.float32),
            "timestamp": ds.timestamps.astype(np.int64),
        }
    )
    df = spark.createDataFrame(t).persist(StorageLevel.MEMORY_AND_DISK)
    return SparkData(
        df,
        ds.user_map.raw.copy(),
        ds.item_map.raw.copy(),
        ds.movies,
        ds.links,
        ds.name,
        ds.synthetic,
        dict(ds.notes),
    )
