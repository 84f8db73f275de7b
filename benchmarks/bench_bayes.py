"""Gibbs sampling speed of BayesMF: fit time on ML-100K (or a data set folder), one JSON line.

Fits ``BayesMF`` (defaults, or ``--factors`` / ``--samples``) on the training part of a
random 80/20 holdout (seed 0) after one tiny warm-up fit (numba compilation excluded),
and prints the fit's wall and CPU seconds, seconds per sweep, the test RMSE and numba's
thread count; with ``--als`` also explicit ALS (its defaults) fitted and scored on the same
split.

Usage::

    python benchmarks/bench_bayes.py                       # ml-100k, 200 sweeps
    python benchmarks/bench_bayes.py --dataset DIR --als   # e.g. a generated ml-1m shape
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from movierec.data import load  # noqa: E402
from movierec.evaluation.metrics import rmse  # noqa: E402
from movierec.models.als import ALS  # noqa: E402
from movierec.models.bayes import BayesMF  # noqa: E402
from movierec.split import random_holdout  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--factors", type=int, default=None)
    ap.add_argument("--implicit", type=int, default=1)
    ap.add_argument("--als", action="store_true")
    a = ap.parse_args()
    split = random_holdout(load(a.dataset), 0.2, seed=0)
    tr, te = split.train, split.test
    params = {"n_samples": a.samples, "burn_in": min(40, a.samples // 5),
              "implicit": bool(a.implicit)}  # fmt: skip
    if a.factors:
        params["n_factors"] = a.factors
    BayesMF(n_factors=2, n_samples=2, burn_in=0).fit(tr.subset(np.arange(1000)))
    t0, c0 = time.perf_counter(), time.process_time()
    m = BayesMF(**params).fit(tr)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out = {
        "bench": "bayesmf_fit",
        "dataset": a.dataset,
        "n_ratings": int(tr.n_ratings),
        "params": m.get_params(),
        "fit_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "s_per_sweep": round(wall / a.samples, 4),
        "rmse": round(rmse(m.predict(te.users, te.items), te.ratings), 4),
        "threads": numba.get_num_threads(),
    }
    if a.als:
        t0 = time.perf_counter()
        als = ALS().fit(tr)
        out["als_fit_s"] = round(time.perf_counter() - t0, 2)
        out["als_rmse"] = round(rmse(als.predict(te.users, te.items), te.ratings), 4)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
