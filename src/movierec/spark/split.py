"""The splits of :mod:`movierec.split` on Spark DataFrames, row for row the same.

- ``temporal_per_user``: window functions over each user's ratings ordered by
  (timestamp, movie index), the order the local kernel uses; users with fewer than
  ``min_train + n_val + n_test`` ratings stay in train.
- ``temporal_global``: the two cut timestamps are the exact k-th smallest timestamps
  (k computed on the driver with the local code's rounding), from a per-timestamp count;
  ties at a cut go to the earlier part.
- ``random_holdout``: the local split permutes the row numbers of the data set, whose rows
  are in (user, movie) order, with ``numpy.random.default_rng(seed)``. The same
  permutation is drawn on the driver (8 bytes per rating, transiently) and each row's
  number is rebuilt in Spark from per-user offsets, so the parts are the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movierec.errors import ConfigError
from movierec.spark.io import SparkData

KINDS = ("temporal_per_user", "temporal_global", "random_holdout")


@dataclass(eq=False)
class SparkSplit:
    """Train / validation / test DataFrames (columns of :class:`SparkData.ratings`)."""

    train: Any
    validation: Any
    test: Any
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    #: the persisted frame the three parts are filtered from
    source: Any = None

    def close(self) -> None:
        """Release the cached split."""
        if self.source is not None:
            self.source.unpersist()


def _parts(data: SparkData, df: Any, kind: str, params: dict[str, Any]) -> SparkSplit:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    df = df.persist(StorageLevel.MEMORY_AND_DISK)
    cols = data.ratings.columns
    parts = [df.filter(F.col("_part") == p).select(*cols) for p in (0, 1, 2)]
    return SparkSplit(parts[0], parts[1], parts[2], kind, params, df)


def temporal_per_user(
    data: SparkData, n_val: int = 1, n_test: int = 5, min_train: int = 5
) -> SparkSplit:
    """Each user's last ``n_test`` ratings to test and the ``n_val`` before to validation."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if min(n_val, n_test, min_train) < 0:
        raise ConfigError("n_val, n_test and min_train must be >= 0")
    need = min_train + n_val + n_test
    # from the end of each user's (timestamp, movie) order: 1 = her latest rating
    w = Window.partitionBy("u").orderBy(F.desc("timestamp"), F.desc("i"))
    df = data.ratings.withColumn("_back", F.row_number().over(w)).withColumn(
        "_n", F.count(F.lit(1)).over(Window.partitionBy("u"))
    )
    active = (F.col("_n") >= need) & F.lit(n_val + n_test > 0)
    part = (
        F.when(active & (F.col("_back") <= n_test), 2)
        .when(active & (F.col("_back") <= n_test + n_val), 1)
        .otherwise(0)
    )
    df = df.withColumn("_part", part.cast("byte"))
    params = {"n_val": n_val, "n_test": n_test, "min_train": min_train}
    s = _parts(data, df, "temporal_per_user", params)
    counts = data.ratings.groupBy("u").count()
    s.params["users_kept_in_train"] = int(counts.filter(F.col("count") < need).count())
    return s


def _kth_smallest(data: SparkData, ks: list[int], n: int) -> list[int]:
    """The k-th smallest timestamp (0-based) for each k, as ``np.partition`` gives it;
    k < 0 gives min - 1 and k >= n the maximum, as the local split does."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ts = data.ratings.groupBy("timestamp").count()
    cum = ts.withColumn(
        "_cum",
        F.sum("count").over(Window.orderBy("timestamp").rowsBetween(Window.unboundedPreceding, 0)),
    )
    lo_hi = data.ratings.agg(F.min("timestamp"), F.max("timestamp")).first()
    out = []
    for k in ks:
        if k < 0:
            out.append(int(lo_hi[0]) - 1)
        elif k >= n:
            out.append(int(lo_hi[1]))
        else:
            out.append(int(cum.filter(F.col("_cum") >= k + 1).agg(F.min("timestamp")).first()[0]))
    return out


def temporal_global(
    data: SparkData, fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
) -> SparkSplit:
    """One global time cut at the cumulative fractions (boundary ties to the earlier part)."""
    from pyspark.sql import functions as F

    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1) > 1e-6 or f[0] <= 0:
        raise ConfigError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    n = int(data.ratings.count())
    ks = [int(round(c * n)) - 1 for c in np.cumsum(f)[:2]]
    t1, t2 = _kth_smallest(data, ks, n)
    ts = F.col("timestamp")
    part = F.when(ts <= t1, 0).when(ts <= t2, 1).otherwise(2).cast("byte")
    params = {"fractions": [float(x) for x in f]}
    return _parts(data, data.ratings.withColumn("_part", part), "temporal_global", params)


def random_holdout(
    data: SparkData, test_fraction: float = 0.2, seed: int = 0, val_fraction: float = 0.0
) -> SparkSplit:
    """Random ratings to test and validation: the same rows as :func:`movierec.split.random_holdout`."""
    import pyarrow as pa
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not (0 < test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ConfigError("test_fraction and val_fraction must lie in (0, 1) and sum below 1")
    spark = data.ratings.sparkSession
    counts = data.ratings.groupBy("u").count().toArrow()
    per_user = np.zeros(data.n_users, np.int64)
    per_user[counts.column("u").to_numpy()] = counts.column("count").to_numpy()
    n = int(per_user.sum())
    perm = np.random.default_rng(seed).permutation(n)
    n_te = int(round(test_fraction * n))
    n_va = int(round(val_fraction * n))
    # the rows that leave train, by row number of the (user, movie) order
    rows = np.concatenate([perm[:n_te], perm[n_te : n_te + n_va]])
    marks = np.concatenate([np.full(n_te, 2, np.int8), np.full(n_va, 1, np.int8)])
    del perm
    offsets = np.zeros(data.n_users, np.int64)
    np.cumsum(per_user[:-1], out=offsets[1:])
    off = spark.createDataFrame(
        pa.table({"u": np.arange(data.n_users, dtype=np.int32), "_off": offsets})
    )
    held = spark.createDataFrame(pa.table({"_idx": rows.astype(np.int64), "_part": marks}))
    del rows, marks
    w = Window.partitionBy("u").orderBy("i")
    df = (
        data.ratings.join(F.broadcast(off), "u")
        .withColumn("_idx", F.col("_off") + F.row_number().over(w) - 1)
        .join(held, "_idx", "left")
        .withColumn("_part", F.coalesce(F.col("_part"), F.lit(0)).cast("byte"))
    )
    params = {"test_fraction": test_fraction, "val_fraction": val_fraction, "seed": seed}
    return _parts(data, df, "random_holdout", params)


SPLITS = {
    "temporal_per_user": temporal_per_user,
    "temporal_global": temporal_global,
    "random_holdout": random_holdout,
}


def make_split(data: SparkData, kind: str, **params: Any) -> SparkSplit:
    """Run the split named ``kind`` with ``params`` (the config's split section)."""
    if kind not in SPLITS:
        raise ConfigError(f"unknown split {kind!r} for Spark; choose one of {sorted(SPLITS)}")
    try:
        return SPLITS[kind](data, **params)
    except TypeError as e:
        raise ConfigError(f"bad parameters for split {kind!r}: {e}") from e
