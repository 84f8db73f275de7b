"""Evaluation in Spark with :mod:`movierec.evaluation`'s definitions.

- Rating error: RMSE and MAE over every (user, movie) pair of the evaluated part. Pairs
  whose user or movie has no training rating get movierec's biases fallback (global mean
  plus the known side's bias, regularized 15 / 10) and are counted (``rating_fallbacks``);
  predictions are clipped to the training rating scale. No pair is dropped, no NaN.
- Top-K: every user with at least one relevant rating (rating >= threshold) in the
  evaluated part is ranked over the full catalogue, her training items excluded.
  Executors score blocks of users against the broadcast item factors (a block holds at
  most ``block_mb`` MB of scores, so memory does not grow with the number of users) and
  pick each list with movierec's own top-K kernel (ties to the lower movie index). Users
  without factors get the popularity fallback (training counts) and are counted
  (``users_fallback``).
- Metrics (binary gains, in Spark SQL on the lists): precision@K = hits / K,
  recall@K = hits / |R|, NDCG@K = DCG / IDCG with IDCG the DCG of min(|R|, K) hits,
  AP@K = sum of precision@j at hits / min(|R|, K), RR@K, hit@K; relevant movies that never
  appear in training stay in R. Means and standard errors (sd ddof 1 / sqrt n) over users.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from movierec.errors import ConfigError
from movierec.spark.train import SparkFit

ACCURACY = ("precision", "recall", "ndcg", "map", "mrr", "hit")


def _list_array(values: np.ndarray, n: int, k: int) -> Any:
    import pyarrow as pa

    offsets = np.arange(0, (n + 1) * k, k, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values.ravel()))


def _user_frame(fit: SparkFit) -> Any:
    """(u, f: factors, b: bias) of the users with factors, as a DataFrame."""
    import pyarrow as pa

    spark = _spark()
    ids = np.flatnonzero(fit.has_user).astype(np.int32)
    k = fit.user_factors.shape[1]
    t = pa.table(
        {
            "u": ids,
            "f": _list_array(fit.user_factors[ids], ids.size, k),
            "b": fit.bu[ids].astype(np.float32),
        }
    )
    return spark.createDataFrame(t)


def _spark() -> Any:
    from pyspark.sql import SparkSession

    s = SparkSession.getActiveSession()
    if s is None:
        raise ConfigError("no active Spark session; start one with movierec.spark.session()")
    return s


def _payload(fit: SparkFit) -> dict[str, Any]:
    return {
        "kind": fit.kind,
        "Q": fit.item_factors,
        "bi": fit.bi,
        "mu": fit.mu,
        "pop": fit.stats.item_count.astype(np.float32),
        "user_count": fit.stats.user_count,
        "item_count": fit.stats.item_count,
        "scale": fit.stats.rating_scale,
        "gmean": fit.stats.global_mean,
        "fb_bu": fit.stats.fallback_bu,
        "fb_bi": fit.stats.fallback_bi,
    }


def _rows(col: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets int64, values) of a list column (chunked or not)."""
    import pyarrow as pa

    a = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    off = np.asarray(a.offsets.to_numpy(), dtype=np.int64)
    return off - off[0], a.values.to_numpy(zero_copy_only=False)[off[0] : off[-1]]


def _scores(pay: dict[str, Any], P: np.ndarray, bu: np.ndarray) -> np.ndarray:
    """Scores of users with factors, as ALS._score / ImplicitALS._score compute them."""
    from movierec.models.base import factor_scores

    s = factor_scores(P, pay["Q"])
    if pay["kind"] == "als":
        s += pay["bi"][None, :]
        s += (pay["mu"] + bu)[:, None]
    return s.astype(np.float32, copy=False)


def top_k(
    fit: SparkFit,
    users: Any,
    history: Any,
    k: int,
    block_mb: float = 256.0,
) -> Any:
    """Top-``k`` movies of each user of ``users`` (a DataFrame with ``u``), over the full
    catalogue without her movies in ``history``: a DataFrame (u, items array<int>, fallback);
    lists shorter than k (everything seen) are padded with -1."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    spark = _spark()
    n_items = fit.item_factors.shape[0]
    kk = min(k, n_items)
    block = max(1, int(block_mb * 2**20 // (4 * max(n_items, 1))))
    bc = spark.sparkContext.broadcast(_payload(fit))
    seen = history.groupBy("u").agg(F.sort_array(F.collect_list("i")).alias("seen"))
    frame = (
        users.select("u")
        .distinct()
        .join(seen, "u", "left")
        .join(_user_frame(fit), "u", "left")
        .select(
            "u",
            F.coalesce("seen", F.array().cast("array<int>")).alias("seen"),
            F.coalesce("f", F.array().cast("array<float>")).alias("f"),
            F.coalesce("b", F.lit(0.0).cast("float")).alias("b"),
        )
    )
    dim = fit.item_factors.shape[1]

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import numba

        from movierec.kernels.topk import topk_rows

        numba.set_num_threads(1)  # Spark runs one task per core
        pay = bc.value
        for rb in batches:
            n = rb.num_rows
            if n == 0:
                continue
            u = rb.column("u").to_numpy()
            s_off, s_val = _rows(rb.column("seen"), n)
            f_off, f_val = _rows(rb.column("f"), n)
            known = np.diff(f_off) == dim
            fv = np.asarray(f_val, np.float32)
            b = rb.column("b").to_numpy().astype(np.float32)
            out = np.empty((n, kk), np.int32)
            for a in range(0, n, block):
                z = min(a + block, n)
                s = np.empty((z - a, n_items), np.float32)
                kn = known[a:z]
                if kn.any():
                    rows = np.flatnonzero(kn) + a
                    P = np.stack([fv[f_off[r] : f_off[r + 1]] for r in rows])
                    s[kn] = _scores(pay, P, b[rows])
                s[~kn] = pay["pop"]
                ip = s_off[a : z + 1] - s_off[a]
                ix = np.ascontiguousarray(s_val[s_off[a] : s_off[z]], dtype=np.int32)
                out[a:z] = topk_rows(s, kk, ip, ix)[0]
            yield pa.RecordBatch.from_arrays(
                [pa.array(u, pa.int32()), _list_array(out, n, kk), pa.array(~known)],
                names=["u", "items", "fallback"],
            )

    return frame.mapInArrow(run, "u int, items array<int>, fallback boolean")


def rating_errors(fit: SparkFit, target: Any) -> dict[str, float]:
    """RMSE / MAE of the explicit model on every pair of ``target``, fallbacks counted."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    if fit.kind != "als":
        raise ConfigError("rating errors need the explicit model (als)")
    spark = _spark()
    bc = spark.sparkContext.broadcast(_payload(fit))
    dim = fit.item_factors.shape[1]
    pairs = target.select("u", "i", "rating").join(_user_frame(fit), "u", "left")
    pairs = pairs.select(
        "u",
        "i",
        "rating",
        F.coalesce("f", F.array().cast("array<float>")).alias("f"),
        F.coalesce("b", F.lit(0.0).cast("float")).alias("b"),
    )

    def run(batches: Iterator[Any]) -> Iterator[Any]:
        import numba

        from movierec.kernels.als import als_predict

        numba.set_num_threads(1)
        pay = bc.value
        for rb in batches:
            n = rb.num_rows
            if n == 0:
                continue
            u = rb.column("u").to_numpy()
            i = rb.column("i").to_numpy()
            f_off, f_val = _rows(rb.column("f"), n)
            ku = pay["user_count"][u] > 0
            ki = pay["item_count"][i] > 0
            ok = ku & ki & (np.diff(f_off) == dim)
            pred = np.empty(n, np.float64)
            if ok.any():
                rows = np.flatnonzero(ok)
                fv = np.asarray(f_val, np.float32)
                P = np.stack([fv[f_off[r] : f_off[r + 1]] for r in rows])
                b = rb.column("b").to_numpy().astype(np.float32)[rows]
                pred[ok] = als_predict(
                    np.arange(rows.size), i[ok].astype(np.int64), P, pay["Q"], b, pay["bi"],
                    pay["mu"],
                )  # fmt: skip
            bad = ~ok
            pred[bad] = (
                pay["gmean"]
                + np.where(ku[bad], pay["fb_bu"][u[bad]], 0.0)
                + np.where(ki[bad], pay["fb_bi"][i[bad]], 0.0)
            )
            lo, hi = pay["scale"]
            pred = np.clip(pred, lo, hi).astype(np.float32)
            yield pa.RecordBatch.from_arrays(
                [
                    pa.array(pred.astype(np.float64)),
                    pa.array(rb.column("rating").to_numpy().astype(np.float64)),
                    pa.array(bad),
                ],
                names=["pred", "truth", "fallback"],
            )

    d = pairs.mapInArrow(run, "pred double, truth double, fallback boolean")
    e = F.col("pred") - F.col("truth")
    r = d.agg(
        F.avg(e * e), F.avg(F.abs(e)), F.count(F.lit(1)), F.sum(F.col("fallback").cast("long"))
    ).first()
    if not r[2]:
        return {"rmse": math.nan, "mae": math.nan, "rating_pairs": 0.0, "rating_fallbacks": 0.0}
    return {
        "rmse": float(math.sqrt(r[0])),
        "mae": float(r[1]),
        "rating_pairs": float(r[2]),
        "rating_fallbacks": float(r[3] or 0),
    }


def _check_k(k: Any) -> tuple[int, ...]:
    ks = (k,) if isinstance(k, int | np.integer) else tuple(k)
    if not ks or any(not isinstance(x, int | np.integer) or x < 1 for x in ks):
        raise ConfigError(f"k must be positive integers, got {k!r}")
    return tuple(sorted({int(x) for x in ks}))


def ranking_metrics(
    recs: Any, target: Any, k: Any = (5, 10, 20), threshold: float = 4.0
) -> tuple[dict[str, float], Any]:
    """Accuracy metrics of top-K lists against the relevant ratings of ``target``.

    ``recs``: a DataFrame (u, items array<int>, optional fallback) with one list per user,
    best first (-1 pads); every user with a relevant rating must have one. Returns the
    summary ({"ndcg@10": mean, "ndcg@10_se": se, ..., "users_evaluated"}) and the per-user
    DataFrame (u, n_relevant, "<metric>@<K>").
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ks = _check_k(k)
    kmax = ks[-1]
    rel = target.filter(F.col("rating") >= threshold).select("u", "i").distinct()
    n_rel = rel.groupBy("u").agg(F.count(F.lit(1)).alias("n_relevant"))
    pos = recs.select("u", F.posexplode("items").alias("pos", "i")).filter(
        (F.col("i") >= 0) & (F.col("pos") < kmax)
    )
    hits = pos.join(rel, ["u", "i"], "left_semi")
    # hits up to and including each hit: precision@j at the hit's rank j = pos + 1
    w = Window.partitionBy("u").orderBy("pos")
    hits = hits.withColumn("_nh", F.row_number().over(w))
    aggs = []
    for kk in ks:
        inside = F.col("pos") < kk
        aggs += [
            F.sum(F.when(inside, 1).otherwise(0)).alias(f"_h{kk}"),
            F.sum(F.when(inside, 1.0 / F.log2(F.col("pos") + 2.0)).otherwise(0.0)).alias(f"_d{kk}"),
            F.sum(F.when(inside, F.col("_nh") / (F.col("pos") + 1.0)).otherwise(0.0)).alias(
                f"_a{kk}"
            ),
        ]
    aggs.append(F.min("pos").alias("_first"))
    per = n_rel.join(hits.groupBy("u").agg(*aggs), "u", "left")
    cols = [F.col("u"), F.col("n_relevant")]
    for kk in ks:
        disc = 1.0 / np.log2(np.arange(2, kk + 2, dtype=np.float64))
        cum = np.concatenate([[0.0], np.cumsum(disc)])
        ideal = F.array(*(F.lit(float(x)) for x in cum))
        idcg = F.element_at(ideal, (F.least("n_relevant", F.lit(kk)) + 1).cast("int"))
        h = F.coalesce(F.col(f"_h{kk}"), F.lit(0)).cast("double")
        first = F.col("_first")
        cols += [
            (h / kk).alias(f"precision@{kk}"),
            (h / F.col("n_relevant")).alias(f"recall@{kk}"),
            (F.coalesce(F.col(f"_d{kk}"), F.lit(0.0)) / idcg).alias(f"ndcg@{kk}"),
            (F.coalesce(F.col(f"_a{kk}"), F.lit(0.0)) / F.least("n_relevant", F.lit(kk))).alias(
                f"map@{kk}"
            ),
            F.when(first.isNotNull() & (first < kk), 1.0 / (first + 1.0))
            .otherwise(0.0)
            .alias(f"mrr@{kk}"),
            (h > 0).cast("double").alias(f"hit@{kk}"),
        ]
    per_user = per.select(*cols)
    names = [f"{m}@{kk}" for kk in ks for m in ACCURACY]
    stats = per_user.agg(
        F.count(F.lit(1)),
        *(F.avg(c) for c in names),
        *(F.stddev_samp(c) for c in names),
    ).first()
    n = int(stats[0])
    summary: dict[str, float] = {}
    for j, c in enumerate(names):
        mean, sd = stats[1 + j], stats[1 + len(names) + j]
        summary[c] = float(mean) if mean is not None else math.nan
        summary[c + "_se"] = float(sd) / math.sqrt(n) if sd is not None and n > 1 else math.nan
    summary["users_evaluated"] = float(n)
    return summary, per_user


def evaluate(
    fit: SparkFit,
    target: Any,
    history: Any,
    k: Sequence[int] = (5, 10, 20),
    threshold: float = 4.0,
    block_mb: float = 256.0,
) -> dict[str, float]:
    """Top-K metrics (and RMSE/MAE for explicit ALS) of a Spark fit on ``target``, every
    user with a relevant rating ranked over the full catalogue without her ``history``
    movies. Returns the summary with the names of :class:`movierec.evaluation.evaluator.
    EvalResult` (``ndcg@10``, ``ndcg@10_se``, ``users_fallback``, ``rmse``, ...)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    ks = _check_k(k)
    t0 = time.perf_counter()
    users = target.filter(F.col("rating") >= threshold).select("u").distinct()
    recs = top_k(fit, users, history, ks[-1], block_mb).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        summary, _ = ranking_metrics(recs, target, ks, threshold)
        if summary["users_evaluated"] == 0:
            raise ConfigError(f"no rating of the part is >= threshold {threshold}")
        fb = recs.agg(F.sum(F.col("fallback").cast("long"))).first()[0] or 0
        summary["users_fallback"] = float(fb)
        summary["users_personalized"] = summary["users_evaluated"] - float(fb)
        summary["users_skipped"] = 0.0
        n_items = fit.item_factors.shape[0]
        for kk in ks:
            cov = (
                recs.select(F.explode(F.slice("items", 1, kk)).alias("i"))
                .filter(F.col("i") >= 0)
                .distinct()
                .count()
            )
            summary[f"coverage@{kk}"] = cov / n_items if n_items else math.nan
        summary["rank_s"] = time.perf_counter() - t0
        if fit.kind == "als":
            summary.update(rating_errors(fit, target))
    finally:
        recs.unpersist()
    summary["eval_s"] = time.perf_counter() - t0
    return summary
