"""Explicit and implicit ALS with Spark MLlib, from movierec's model params.

Parameter mapping (movierec -> ``pyspark.ml.recommendation.ALS``):

=====================  =====================  ===============================================
movierec ``als``       movierec ``ials``      MLlib
=====================  =====================  ===============================================
``n_factors``          ``factors``            ``rank``
``n_epochs``           ``iterations``         ``maxIter``
``reg``                ``regularization``     ``regParam`` (see below)
--                     ``alpha``              ``alpha`` (confidence 1 + alpha r in both)
``random_state``       ``random_state``       ``seed``
``reg_bias``           --                     the bias stage below (MLlib has no biases)
--                     ``binary, threshold``  applied to the input (r = 1 for rating >= threshold)
``solver, cg_steps,``  ``solver, cg_steps``   ignored: MLlib solves each row exactly
``init_std``
=====================  =====================  ===============================================

Regularization: MLlib always scales ``regParam`` by each row's number of ratings (ALS-WR,
in both modes). movierec's ``als`` with ``weighted=True`` (the default) does the same, so
``reg`` maps 1:1; ``ials`` with ``reg_scaling=1`` uses reg * (1 + n), the same up to the
one. Otherwise (``weighted=False``, ``reg_scaling`` other than 1) movierec's weight is one
constant per row, and regParam = reg / m with m = nnz / sqrt(rows x columns) (the geometric
mean of the mean ratings per user and per movie) gives the same weight to a row of typical
length; the notes of the fit say so.

Biases: MLlib's explicit ALS has none. To give movierec's ``mu + b_u + b_i + p.q`` model,
the global mean and the biases are fitted first (closed-form alternating updates with
``reg_bias``, weighted like ``reg``; a few Spark aggregations) and MLlib factorizes the
residuals. The exported :class:`~movierec.models.als.ALS` artifact predicts and ranks with
the formula it always uses.

Cold start: MLlib is never asked to predict; its factor tables are read directly. Users and
movies without factors (no training rating, or none >= threshold for binary implicit ALS)
are the fallback users of :mod:`movierec.spark.evaluate` and of the exported model (zero
factors, counted), so no NaN reaches a metric.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movierec.errors import ConfigError
from movierec.models.als import ALS
from movierec.models.base import Recommender
from movierec.models.ials import ImplicitALS
from movierec.spark.io import SparkData

#: Registry names of the models the Spark engine trains.
SPARK_MODELS = ("als", "ials")
BIAS_EPOCHS = 5
#: movierec's rating fallback (global mean + regularized biases, models.base.biases)
FALLBACK_REG = (15.0, 10.0, 10)


@dataclass(eq=False)
class TrainStats:
    """What every model of one training part shares: counts, scale and rating fallback."""

    user_count: np.ndarray  # int32, ratings per user
    item_count: np.ndarray  # int32
    rating_scale: tuple[float, float]
    global_mean: float
    fallback_bu: np.ndarray  # float64
    fallback_bi: np.ndarray  # float64
    n_ratings: int


@dataclass(eq=False)
class SparkFit:
    """An ALS model trained by MLlib, as arrays on the driver.

    ``user_factors`` / ``item_factors`` are float32 (n_users, k) / (n_items, k), zero rows
    where MLlib has no factors (``has_user`` / ``has_item`` False). ``mu``, ``bu``, ``bi``
    are the explicit model's mean and biases (zeros for implicit ALS).
    """

    kind: str
    model: Recommender
    user_factors: np.ndarray
    item_factors: np.ndarray
    has_user: np.ndarray
    has_item: np.ndarray
    mu: float
    bu: np.ndarray
    bi: np.ndarray
    mllib: dict[str, Any]
    stats: TrainStats
    fit_s: float
    notes: list[str] = field(default_factory=list)


def _shape(df: Any) -> tuple[int, int, int]:
    from pyspark.sql import functions as F

    r = df.agg(F.count(F.lit(1)), F.countDistinct("u"), F.countDistinct("i")).first()
    return int(r[0]), int(r[1]), int(r[2])


def mllib_params(model: Recommender, df: Any | None = None) -> tuple[dict[str, Any], list[str]]:
    """MLlib ALS params for a movierec ALS / ImplicitALS (``df``: the ratings MLlib will see,
    needed only when the regularization has to be rescaled) and notes on what differs."""
    notes: list[str] = []
    if isinstance(model, ImplicitALS):
        model._validate()
        p = {
            "rank": int(model.factors),
            "maxIter": int(model.iterations),
            "alpha": float(model.alpha),
            "implicitPrefs": True,
            "seed": int(model.random_state),
        }
        lam, exact = float(model.regularization), float(model.reg_scaling) == 1.0
        notes.append("solver and cg_steps ignored (MLlib solves each row exactly)")
        what = f"reg_scaling={model.reg_scaling:g}"
    elif isinstance(model, ALS):
        model._check(int(model.n_factors) >= 1, "n_factors must be >= 1")
        model._check(int(model.n_epochs) >= 1, "n_epochs must be >= 1")
        model._check(model.reg >= 0 and model.reg_bias >= 0, "reg and reg_bias must be >= 0")
        p = {
            "rank": int(model.n_factors),
            "maxIter": int(model.n_epochs),
            "implicitPrefs": False,
            "seed": int(model.random_state),
        }
        lam, exact = float(model.reg), bool(model.weighted)
        notes.append(
            "solver, cg_steps and init_std ignored; biases fitted before MLlib (MLlib has none)"
        )
        what = "weighted=False"
    else:
        raise ConfigError(
            f"the Spark engine trains {', '.join(SPARK_MODELS)} (MLlib ALS); "
            f"{type(model).__name__} runs with --engine local"
        )
    if exact or lam == 0 or df is None:
        p["regParam"] = lam
    else:
        n, rows, cols = _shape(df)
        m = n / math.sqrt(max(rows * cols, 1))
        p["regParam"] = lam / m
        notes.append(
            f"{what}: MLlib scales regParam by each row's ratings, so regParam = "
            f"{lam:g} / {m:.3g} (ratings per row, geometric mean)"
        )
    p["nonnegative"] = False
    return p, notes


def _gather(t: Any, key: str, value: str, n: int, dtype: Any) -> np.ndarray:
    out = np.zeros(n, dtype=dtype)
    out[t.column(key).to_numpy()] = t.column(value).to_numpy()
    return out


def _bias_als(
    df: Any,
    n_users: int,
    n_items: int,
    mu: float,
    reg_u: float,
    reg_i: float,
    epochs: int,
    weighted: bool,
    target: str = "rating",
) -> tuple[np.ndarray, np.ndarray]:
    """User and item biases of ``target - mu`` by alternating closed-form updates, items
    first (as movierec's baseline kernel); ``weighted`` scales the weights by row length."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    spark = df.sparkSession
    bu = np.zeros(n_users, np.float64)
    bi = np.zeros(n_items, np.float64)

    def solve(key: str, other: str, b_other: np.ndarray, reg: float, n: int) -> np.ndarray:
        tab = spark.createDataFrame(
            pa.table({other: np.arange(b_other.size, dtype=np.int32), "_b": b_other})
        )
        agg = (
            df.join(F.broadcast(tab), other, "left")
            .groupBy(key)
            .agg(
                F.sum(
                    F.col(target).cast("double") - F.lit(mu) - F.coalesce("_b", F.lit(0.0))
                ).alias("_s"),
                F.count(F.lit(1)).alias("_n"),
            )
        )
        den = F.col("_n") * (1.0 + reg) if weighted else F.col("_n") + F.lit(reg)
        t = agg.select(key, (F.col("_s") / den).alias("_v")).toArrow()
        return _gather(t, key, "_v", n, np.float64)

    for _ in range(epochs):
        bi = solve("i", "u", bu, reg_i, n_items)
        bu = solve("u", "i", bi, reg_u, n_users)
    return bu, bi


def train_stats(data: SparkData, train: Any) -> TrainStats:
    """Counts, rating scale and the biases fallback of a training part, in Spark."""
    from pyspark.sql import functions as F

    ut = train.groupBy("u").count().toArrow()
    it = train.groupBy("i").count().toArrow()
    agg = train.agg(F.avg(F.col("rating").cast("double")), F.min("rating"), F.max("rating")).first()
    if agg[0] is None:
        raise ConfigError("the training part has no ratings")
    mu = float(agg[0])
    reg_u, reg_i, epochs = FALLBACK_REG
    bu, bi = _bias_als(train, data.n_users, data.n_items, mu, reg_u, reg_i, epochs, False)
    uc = _gather(ut, "u", "count", data.n_users, np.int32)
    return TrainStats(
        uc,
        _gather(it, "i", "count", data.n_items, np.int32),
        (float(agg[1]), float(agg[2])),
        mu,
        bu,
        bi,
        int(uc.sum()),
    )


def _factors(df: Any, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    t = df.toArrow()
    ids = t.column("id").to_numpy()
    out = np.zeros((n, k), np.float32)
    has = np.zeros(n, bool)
    if ids.size:
        feats = t.column("features").combine_chunks()
        out[ids] = feats.flatten().to_numpy().astype(np.float32).reshape(-1, k)
        has[ids] = True
    return out, has


def fit(
    data: SparkData,
    train: Any,
    model: Recommender,
    stats: TrainStats | None = None,
    blocks: int | None = None,
) -> SparkFit:
    """Train ``model``'s params (an unfitted ALS or ImplicitALS) with MLlib on ``train``.

    ``blocks`` sets MLlib's user and item blocks (default: the default parallelism).
    """
    import pyarrow as pa
    from pyspark.ml.recommendation import ALS as MLlibALS
    from pyspark.sql import functions as F

    stats = stats or train_stats(data, train)
    t0 = time.perf_counter()
    if isinstance(model, ImplicitALS):
        df = train.select("u", "i", F.col("rating").cast("float").alias("r"))
        if model.binary:
            df = df.filter(F.col("r") >= float(model.threshold))
            df = df.withColumn("r", F.lit(1.0).cast("float"))
        kind = "ials"
    else:
        kind = "als"
        df = None
    params, notes = mllib_params(model, df if df is not None else train)
    mu = 0.0
    bu = np.zeros(data.n_users, np.float64)
    bi = np.zeros(data.n_items, np.float64)
    if kind == "als":
        assert isinstance(model, ALS)
        mu = stats.global_mean
        rb = float(model.reg_bias)
        bu, bi = _bias_als(
            train, data.n_users, data.n_items, mu, rb, rb, BIAS_EPOCHS, bool(model.weighted)
        )
        spark = train.sparkSession
        bias = spark.createDataFrame(
            pa.table({"u": np.arange(data.n_users, dtype=np.int32), "_bu": bu})
        )
        ibias = spark.createDataFrame(
            pa.table({"i": np.arange(data.n_items, dtype=np.int32), "_bi": bi})
        )
        df = (
            train.join(F.broadcast(bias), "u")
            .join(F.broadcast(ibias), "i")
            .select(
                "u",
                "i",
                (F.col("rating").cast("double") - F.lit(mu) - F.col("_bu") - F.col("_bi"))
                .cast("float")
                .alias("r"),
            )
        )
    nb = blocks or max(2, int(train.sparkSession.sparkContext.defaultParallelism))
    als = MLlibALS(
        userCol="u",
        itemCol="i",
        ratingCol="r",
        numUserBlocks=nb,
        numItemBlocks=nb,
        coldStartStrategy="drop",
        **params,
    )
    m = als.fit(df)
    k = params["rank"]
    P, hu = _factors(m.userFactors, data.n_users, k)
    Q, hi = _factors(m.itemFactors, data.n_items, k)
    fit_s = time.perf_counter() - t0
    return SparkFit(
        kind,
        model,
        P,
        Q,
        hu,
        hi,
        float(mu),
        bu.astype(np.float32),
        bi.astype(np.float32),
        {**params, "numBlocks": nb},
        stats,
        fit_s,
        notes,
    )
