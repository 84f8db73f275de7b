"""Speed of the full-catalogue top-N evaluator; prints one JSON line.

Fits one model on a temporal per-user split, then times ``evaluate_model`` (score + top-K
+ all metrics at K) against its peer measured in the same run: ``model.recommend`` for
the same users (score + top-K only, no metrics). The figures are medians over ``--runs``;
``overhead_ratio`` = evaluate / recommend shows how much the metrics add.

    python benchmarks/bench_evaluate.py --data ml-100k --model popularity --runs 5
    flock /tmp/movierec-bench.lock python benchmarks/bench_evaluate.py --data /tmp/ml25m-synth
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


from movierec.data import load  # noqa: E402
from movierec.evaluation.evaluator import evaluate_model, relevant_sets  # noqa: E402
from movierec.models import make_model  # noqa: E402
from movierec.split import temporal_per_user  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="ml-100k")
    ap.add_argument("--model", default="popularity")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--warmup", type=int, default=1, help="untimed first runs (numba cache)")
    a = ap.parse_args()

    t0 = time.perf_counter()
    ds = load(a.data)
    split = temporal_per_user(ds, n_val=1, n_test=5, min_train=5)
    load_s = time.perf_counter() - t0
    model = make_model(a.model)
    t0 = time.perf_counter()
    model.fit(split.train)
    fit_s = time.perf_counter() - t0
    users = relevant_sets(split.test, 4.0)[0]
    ev, sc, tk, me, rc = [], [], [], [], []
    for _ in range(a.runs + a.warmup):  # warm-up runs fill numba's cache and are dropped
        t0 = time.perf_counter()
        _, s = evaluate_model(
            model,
            split.test,
            history=split.train,
            exclude=split.train,
            k=(a.k,),
            batch_size=a.batch_size,
        )
        ev.append(time.perf_counter() - t0)
        sc.append(s["score_s"])
        tk.append(s["topk_s"])
        me.append(s["metrics_s"])
        t0 = time.perf_counter()
        model.recommend(users, a.k, batch_size=a.batch_size)
        rc.append(time.perf_counter() - t0)
    med = {
        n: statistics.median(v[a.warmup :])
        for n, v in zip(("ev", "sc", "tk", "me", "rc"), (ev, sc, tk, me, rc), strict=True)
    }
    print(
        json.dumps(
            {
                "bench": "evaluate",
                "data": ds.label,
                "model": a.model,
                "k": a.k,
                "users_evaluated": int(users.size),
                "n_items": ds.n_items,
                "train_ratings": split.train.n_ratings,
                "runs": a.runs,
                "load_split_s": round(load_s, 3),
                "fit_s": round(fit_s, 3),
                "evaluate_s": round(med["ev"], 4),
                "score_s": round(med["sc"], 4),
                "topk_s": round(med["tk"], 4),
                "metrics_s": round(med["me"], 4),
                "peer_recommend_s": round(med["rc"], 4),
                "overhead_ratio": round(med["ev"] / med["rc"], 3),
                "score_topk_share": round((med["sc"] + med["tk"]) / med["ev"], 3),
                "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "numba_threads": int(os.environ.get("NUMBA_NUM_THREADS", os.cpu_count() or 1)),
                "evaluate_runs_s": [round(x, 4) for x in ev[a.warmup :]],
            }
        )
    )


if __name__ == "__main__":
    main()
