"""Spark MLlib ALS (local[2] by default) against movierec's numba ALS / ImplicitALS.

Prints one JSON line per figure:

- ``als_explicit`` and ``als_implicit``: seconds per iteration of each engine at the same
  factors on the same training part (per-user temporal split), measured as
  (t(N iterations) - t(1 iteration)) / (N - 1) so the setup (reading the frame, the bias
  stage, collecting factors) is not counted as iterations; and the ratio spark / numba.
- ``spark_evaluation``: seconds of :func:`movierec.spark.evaluate.evaluate` (full-catalogue
  top-K for every test user with a relevant rating, plus RMSE for explicit ALS).

Usage::

    movierec data synth --like ml-25m --out data/ml-25m-synth
    SPARK_LOCAL_IP=127.0.0.1 python benchmarks/bench_spark.py --data data/ml-25m-synth \\
        --factors 64 --iterations 3 --master local[2] --driver-memory 10g
    python benchmarks/bench_spark.py --like ml-100k --scale 0.1   # a tiny smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def _line(**kw) -> None:
    print(json.dumps(kw), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="a MovieLens folder (default: generate --like/--scale)")
    ap.add_argument("--like", default="ml-25m")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="10g")
    ap.add_argument("--shuffle-partitions", type=int, default=8)
    a = ap.parse_args()
    if a.iterations < 2:
        ap.error("--iterations must be >= 2 (one iteration is subtracted as setup)")

    from movierec.data import load
    from movierec.models.als import ALS
    from movierec.models.ials import ImplicitALS
    from movierec.spark import io, session
    from movierec.spark.evaluate import evaluate
    from movierec.spark.split import make_split as spark_split
    from movierec.spark.train import fit, train_stats
    from movierec.split import make_split

    folder = Path(a.data) if a.data else None
    if folder is None:
        from movierec.data.synth import generate

        folder = Path(tempfile.mkdtemp(prefix="bench-spark-")) / a.like
        generate(a.like, folder, scale=a.scale, seed=0, force=True)
    split = {"n_val": 1, "n_test": 5, "min_train": 5}
    ds = load(folder)
    local = make_split(ds, "temporal_per_user", **split)
    spark = session(
        a.master,
        {
            "spark.driver.memory": a.driver_memory,
            "spark.sql.shuffle.partitions": str(a.shuffle_partitions),
            "spark.ui.showConsoleProgress": "false",
        },
    )
    t0 = time.perf_counter()
    sd = io.read(spark, folder)
    sp = spark_split(sd, "temporal_per_user", **split)
    stats = train_stats(sd, sp.train)
    prep_s = time.perf_counter() - t0
    n = a.iterations
    f = a.factors
    models = {
        "als_explicit": lambda it: ALS(n_factors=f, n_epochs=it, reg=0.1, reg_bias=0.1),
        "als_implicit": lambda it: ImplicitALS(
            factors=f, iterations=it, regularization=0.05, reg_scaling=1.0
        ),
    }
    fits = {}
    for name, make in models.items():
        sec = {}
        make(1).fit(local.train)  # warm-up: numba compiles, the JVM loads MLlib
        fit(sd, sp.train, make(1), stats)
        for it in (1, n):
            t = time.perf_counter()
            make(it).fit(local.train)
            numba_s = time.perf_counter() - t
            fits[name] = fit(sd, sp.train, make(it), stats)
            sec[it] = (numba_s, fits[name].fit_s)
        numba_it = (sec[n][0] - sec[1][0]) / (n - 1)
        spark_it = (sec[n][1] - sec[1][1]) / (n - 1)
        _line(
            figure=name,
            data=ds.label,
            ratings=local.train.n_ratings,
            factors=f,
            iterations=n,
            master=a.master,
            numba_s_per_iter=round(numba_it, 3),
            spark_s_per_iter=round(spark_it, 3),
            spark_over_numba=round(spark_it / numba_it, 2) if numba_it > 0 else None,
            spark_fit_s=round(sec[n][1], 2),
            numba_fit_s=round(sec[n][0], 2),
        )
    for name, fitted in fits.items():
        t = time.perf_counter()
        s = evaluate(fitted, sp.test, sp.train, (10,))
        _line(
            figure="spark_evaluation",
            model=name,
            master=a.master,
            users=int(s["users_evaluated"]),
            movies=sd.n_items,
            seconds=round(time.perf_counter() - t, 2),
            ndcg_at_10=round(s["ndcg@10"], 4),
            rmse=round(s["rmse"], 4) if "rmse" in s else None,
            read_split_stats_s=round(prep_s, 2),
        )
    sp.close()
    sd.close()
    spark.stop()


if __name__ == "__main__":
    main()
