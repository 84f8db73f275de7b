"""Quality and fit time of RP3beta / P3alpha, SLIM, the sequential baseline and SASRec.

Quality (ml-100k): temporal_per_user(n_val=1, n_test=5, min_train=5), NDCG@10 by the
project evaluator (relevance rating >= 4, full catalogue, training items excluded). Params
are chosen on validation only (``--grid``); the test figure is for the chosen params
fitted on train. One JSON line per model/params.

    python benchmarks/topn_graph.py                      # CHOSEN params, val + test
    python benchmarks/topn_graph.py --grid rp3beta       # the validation grid of one model
    python benchmarks/topn_graph.py --speed --like ml-25m --scale 0.1   # fit time, generated data
    python benchmarks/topn_graph.py --speed --data /tmp/ml25m-0.1        # reuse a generated folder
"""

from __future__ import annotations

import argparse
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
    ("p3alpha", {"k": 20, "alpha": 1.3, "normalize": True, "recency": 3.0, "recency_floor": 0.05}),
    ("rp3beta", {}),
    (
        "rp3beta",
        {
            "k": 20,
            "alpha": 0.8,
            "beta": 0.6,
            "normalize": True,
            "recency": 3.0,
            "recency_floor": 0.05,
        },
    ),
    ("slim", {"alpha": 0.1, "l1_ratio": 0.1}),
    ("slim", {"alpha": 1.0, "l1_ratio": 0.003, "recency": 5.0, "recency_floor": 0.1}),
    (
        "sequential",
        {"window": 50, "decay": 0.8, "n_last": 5, "recency_decay": 0.5, "backward": 0.5},
    ),
    ("sasrec", {"epochs": 100, "max_len": 100, "n_blocks": 1}),
    ("sasrec", {"epochs": 50, "max_len": 50, "lr": 0.003}),
]


def prod(**axes) -> list[dict]:
    """Every combination of the axes; an axis may also be a list of param dicts to merge."""
    out: list[dict] = [{}]
    for key, values in axes.items():
        out = [{**p, **(v if isinstance(v, dict) else {key: v})} for p in out for v in values]
    return out


def grid(model: str) -> list[dict]:
    """The validation grid: a coarse stage, then finer stages around its best (as run)."""
    rec = [{"recency": None}, {"recency": 3.0, "recency_floor": 0.1}]
    rec += [{"recency": 8.0, "recency_floor": 0.1}]
    if model == "rp3beta":
        return (
            prod(
                k=[20, 50, 100, 200],
                alpha=[0.5, 0.8, 1.0, 1.3],
                beta=[0.0, 0.2, 0.4, 0.6],
                normalize=[False, True],
                rec=rec,
            )
            + prod(
                k=[10, 20],
                alpha=[0.5, 0.8, 1.0],
                beta=[0.6, 0.8, 1.0],
                normalize=[True],
                recency=[2.0, 3.0],
                recency_floor=[0.1],
            )
            + prod(
                k=[20],
                alpha=[0.8],
                beta=[0.6],
                normalize=[True],
                recency=[3.0],
                recency_floor=[0.05, 0.1, 0.2],
                threshold=[0.0, 3.0, 4.0],
            )
            + prod(
                k=[20, 30],
                alpha=[0.8],
                beta=[0.6],
                normalize=[True],
                recency=[2.0, 3.0, 5.0],
                recency_floor=[0.0, 0.02, 0.05],
            )
        )
    if model == "p3alpha":
        rec3 = rec + [{"recency": 3.0, "recency_floor": 0.05}]
        return prod(
            k=[10, 20, 50, 100, 200], alpha=[0.5, 0.8, 1.0, 1.3], normalize=[True], rec=rec3
        )
    if model == "slim":
        rec2 = [{"recency": None}] + [
            {"recency": r, "recency_floor": f} for r in (2.0, 3.0, 5.0, 8.0) for f in (0.05, 0.1)
        ]
        return prod(
            alpha=[0.01, 0.03, 0.1, 0.3], l1_ratio=[0.01, 0.1, 0.3], k=[100], rec=rec2
        ) + prod(
            alpha=[0.3, 1.0, 3.0],
            l1_ratio=[0.001, 0.003, 0.01],
            recency=[3.0, 5.0],
            recency_floor=[0.1],
        )
    if model == "sequential":
        return prod(
            window=[1, 3, 5, 10],
            decay=[0.5, 0.8],
            n_last=[1, 3, 5, 10],
            recency_decay=[0.5, 0.8],
            backward=[0.0, 0.5, 1.0],
        ) + prod(
            window=[10, 20, 50],
            decay=[0.8, 0.9],
            n_last=[5, 10],
            recency_decay=[0.5],
            backward=[0.5],
        )
    if model == "sasrec":  # slow (a minute a fit on one thread): the few runs made
        return [
            {"epochs": 20},
            {"epochs": 30, "max_len": 50},
            {"epochs": 50, "max_len": 50, "lr": 0.003},
            {"epochs": 100, "max_len": 50},
            {"epochs": 100, "max_len": 50, "lr": 0.003, "dropout": 0.5},
            {"epochs": 200, "max_len": 50},
            {"epochs": 100, "max_len": 100, "n_blocks": 1},
        ]
    raise SystemExit(f"no grid for {model!r}")


def ndcg(model, split, part) -> float:
    _, s = evaluate_model(model, part, history=split.train, exclude=split.train, k=(10,))
    return round(float(s["ndcg@10"]), 4)


def speed(like: str, scale: float, models: list[str], data: str | None) -> None:
    import numba as nb

    from movierec.data import load
    from movierec.data.synth import generate

    if data is None:
        folder = Path(tempfile.mkdtemp(prefix="topn-graph-")) / like
        generate(like, folder, scale=scale, seed=0, force=True)
    else:
        folder = Path(data)  # already generated with the same --like/--scale
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
            "load_avg_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(row), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--grid", default=None, help="a model name: its validation grid")
    ap.add_argument("--speed", action="store_true", help="fit time on generated data")
    ap.add_argument("--like", default="ml-25m")
    ap.add_argument("--scale", type=float, default=0.1)
    ap.add_argument("--models", default="rp3beta,slim,sequential")
    ap.add_argument("--data", default=None, help="--speed: a generated folder to reuse")
    args = ap.parse_args()
    if args.speed:
        speed(args.like, args.scale, args.models.split(","), args.data)
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
