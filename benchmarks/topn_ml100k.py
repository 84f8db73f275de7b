"""Top-N quality of the item-based models on ml-100k; prints one JSON line per model/params.

Split: temporal_per_user(n_val=1, n_test=5, min_train=5). Relevance: rating >= 4.
NDCG@10 over users with >= 1 relevant item in the part, full catalogue, training items
excluded, binary gains. Params are chosen on validation only; the test figure is for the
same params fitted on train.

    python benchmarks/topn_ml100k.py                # the chosen params, val + test
    python benchmarks/topn_ml100k.py --grid         # the validation grid
    python benchmarks/topn_ml100k.py --data /tmp/ml100k-rb
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from movierec.data.dataset import Dataset  # noqa: E402
from movierec.models import make_model  # noqa: E402
from movierec.split import temporal_per_user  # noqa: E402

# chosen by the --grid validation NDCG@10 (see the report); itemknn k=100 cosine on the
# raw ratings is the same model as implicit's CosineRecommender(K=100)
EASE_BEST = {"l2": 500.0, "recency": 3.0, "recency_floor": 0.1}
CHOSEN: list[tuple[str, dict]] = [
    ("popularity", {"threshold": 4.0}),
    ("itemknn", {"k": 100, "binary": False}),
    ("itemknn", {"k": 20, "weighting": "bm25", "recency": 8.0, "recency_floor": 0.1}),
    ("ease", {"l2": 80.0}),
    ("ease", EASE_BEST),
    ("content", {"title_weight": 0.0}),
    ("rrf", {"models": {"ease": EASE_BEST, "content": {}}, "weights": [0.9, 0.1]}),
    ("switching", {"models": {"ease": EASE_BEST, "content": {}}, "min_ratings": 5}),
]


def ndcg_at_10(model, part: Dataset, train: Dataset, threshold: float = 4.0) -> float:
    """Mean binary NDCG@10 over users with >= 1 relevant rating in ``part``."""
    rel = part.ratings >= threshold
    users = np.unique(part.users[rel])
    items, _ = model.recommend(users, k=10, exclude_seen=True)
    rel_pairs = set(zip(part.users[rel].tolist(), part.items[rel].tolist(), strict=True))
    n_rel = np.bincount(part.users[rel], minlength=part.n_users)
    disc = 1.0 / np.log2(np.arange(2, 12))
    total = 0.0
    for row, u in enumerate(users.tolist()):
        gains = np.array([(u, i) in rel_pairs for i in items[row].tolist()], dtype=float)
        ideal = disc[: min(int(n_rel[u]), 10)].sum()
        total += float((gains * disc[: gains.size]).sum() / ideal)
    return total / users.size


def grid() -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    for l2 in (50, 80, 100, 125, 150, 200, 300, 500, 800):
        for th in (0.0, 4.0):
            out.append(("ease", {"l2": float(l2), "threshold": th}))
    for l2 in (100, 200, 300, 500, 800):
        for rec in (2.0, 3.0, 5.0, 8.0, 12.0):
            for fl in (0.05, 0.1, 0.2, 0.3):
                out.append(("ease", {"l2": float(l2), "recency": rec, "recency_floor": fl}))
    for k in (20, 50, 100, 200):
        for w in ("none", "bm25", "tfidf"):
            for th in (0.0, 4.0):
                out.append(("itemknn", {"k": k, "weighting": w, "threshold": th}))
                if w != "none":
                    p = {"k": k, "weighting": w, "threshold": th, "similarity": "dot"}
                    out.append(("itemknn", p))
    for k in (20, 50, 100, 200):
        for rec in (3.0, 5.0, 8.0):
            for fl in (0.1, 0.2):
                p = {"k": k, "weighting": "bm25", "recency": rec, "recency_floor": fl}
                out.append(("itemknn", p))
                out.append(("itemknn", {**p, "threshold": 4.0}))
    for prof in ("centered", "rating"):
        for tw in (0.0, 0.5, 1.0):
            out.append(("content", {"profile": prof, "title_weight": tw}))
    for w in ([0.6, 0.4], [0.8, 0.2], [0.9, 0.1]):
        out.append(("rrf", {"models": {"ease": EASE_BEST, "content": {}}, "weights": w}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None, help="folder of ml-100k (default: fetch)")
    ap.add_argument("--grid", action="store_true", help="validation grid instead of CHOSEN")
    args = ap.parse_args()
    if args.data:
        from movierec.data import read

        ds = read(args.data, name="ml-100k")
    else:
        from movierec.data import load

        ds = load("ml-100k")
    split = temporal_per_user(ds, n_val=1, n_test=5, min_train=5)
    for name, params in grid() if args.grid else CHOSEN:
        t = time.perf_counter()
        m = make_model(name, **params).fit(split.train)
        fit_s = time.perf_counter() - t
        row = {
            "figure": "ndcg@10",
            "data": "ml-100k",
            "model": name,
            "params": params,
            "validation": round(ndcg_at_10(m, split.validation, split.train), 4),
            "fit_s": round(fit_s, 3),
        }
        if not args.grid:
            row["test"] = round(ndcg_at_10(m, split.test, split.train), 4)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
