"""Quality and fit time of RP3beta / P3alpha, SLIM and the sequential baseline.

Quality (ml-100k): temporal_per_user(n_val=1, n_test=5, min_train=5), NDCG@10 by the
project evaluator (relevance rating >= 4, full catalogue, training items excluded). Params
are chosen on validation only (``--grid``); the test figure is for the chosen params
fitted on train. One JSON line per model/params.

    python benchmarks/topn_graph.py                      # CHOSEN params, val + test
    python benchmarks/topn_graph.py --grid rp3beta       # the validation grid of one model
    python benchmarks/topn_graph.py --speed --like ml-25m --scale 0.1   # fit time, generated data
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from movierec.evaluation.evaluator import evaluate_model  # noqa: E402
from movierec.models import make_model  # noqa: E402
from movierec.split import temporal_per_user  # noqa: E402

# chosen on the validation NDCG@10 of --grid (see the closing note of issue 13)
CHOSEN: list[tuple[str, dict]] = [
    ("popularity", {"threshold": 4.0}),
    ("ials", {}),
    ("rp3beta", {}),
    ("p3alpha", {}),
    ("slim", {}),
    ("sequential", {}),
]


def grid(model: str) -> list[dict]:
    def prod(**axes) -> list[dict]:
        keys = list(axes)
        return [dict(zip(keys, v, strict=True)) for v in itertools.product(*axes.values())]

    # scoring-time recency of the user row (as ItemKNN and EASE): off, or (recency, floor)
    recency = [{"recency": None}] + [
        {"recency": r, "recency_floor": f} for r in (2.0, 3.0, 5.0, 8.0) for f in (0.05, 0.1)
    ]
    if model == "rp3beta":
        return [
            {**p, **r}
            for p in prod(
                k=[10, 20, 50, 100, 200],
                alpha=[0.5, 0.8, 1.0, 1.3],
                beta=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
                normalize=[False, True],
            )
            for r in recency
        ]
    if model == "p3alpha":
        return [
            {**p, **r}
            for p in prod(k=[10, 20, 50, 100, 200], alpha=[0.5, 0.8, 1.0, 1.3], normalize=[True])
            for r in recency
        ]
    if model == "slim":
        return [
            {**p, **r}
            for p in prod(alpha=[0.01, 0.03, 0.1, 0.3], l1_ratio=[0.01, 0.1, 0.3], k=[100])
            for r in recency
        ]
    if model == "sequential":
        return prod(
            window=[1, 3, 5, 10],
            decay=[0.5, 0.8],
            n_last=[1, 3, 5, 10],
            recency_decay=[0.5, 0.8],
            backward=[0.0, 0.5, 1.0],
        )
    raise SystemExit(f"no grid for {model!r}")


def ndcg(model, split, part) -> float:
    _, s = evaluate_model(model, part, history=split.train, exclude=split.train, k=(10,))
    return round(float(s["ndcg@10"]), 4)


def speed(like: str, scale: float, models: list[str]) -> None:
    import numba as nb

    from movierec.data import load
    from movierec.data.synth import generate

    folder = Path(tempfile.mkdtemp(prefix="topn-graph-")) / like
    generate(like, folder, scale=scale, seed=0, force=True)
    ds = load(folder)
    split = temporal_per_user(ds, n_val=1, n_test=5, min_train=5)
    for name in models:
        params = {"max_items": 20_000} if name == "slim" else {}
        m = make_model(name, **params)
        t = time.perf_counter()
        m.fit(split.train)
        row = {
            "figure": "fit_s",
            "data": f"{like} x{scale} (generated)",
            "ratings": int(split.train.n_ratings),
            "items": int(split.train.n_items),
            "model": name,
            "params": params,
            "fit_s": round(time.perf_counter() - t, 2),
            "threads": nb.get_num_threads(),
        }
        print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", default=None, help="a model name: its validation grid")
    ap.add_argument("--speed", action="store_true", help="fit time on generated data")
    ap.add_argument("--like", default="ml-25m")
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--models", default="rp3beta,slim,sequential")
    args = ap.parse_args()
    if args.speed:
        speed(args.like, args.scale, args.models.split(","))
        return
    from movierec.data import load

    split = temporal_per_user(load("ml-100k"), n_val=1, n_test=5, min_train=5)
    runs = [(args.grid, p) for p in grid(args.grid)] if args.grid else CHOSEN
    for name, params in runs:
        t = time.perf_counter()
        m = make_model(name, **params).fit(split.train)
        row = {
            "figure": "ndcg@10",
            "data": "ml-100k",
            "model": name,
            "params": params,
            "fit_s": round(time.perf_counter() - t, 3),
            "validation": ndcg(m, split, split.validation),
        }
        if not args.grid:
            row["test"] = ndcg(m, split, split.test)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
