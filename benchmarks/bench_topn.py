"""Speed and quality of the top-N factor models against the ``implicit`` library.

Prints one JSON line per figure, each with ours, the peer measured in the same run, and
their ratio (ours / peer; below 1 means we are faster or, for NDCG, worse):

- ``ials_s_per_iter``: ImplicitALS seconds per iteration (CG, 3 steps, 64 factors) vs
  implicit's AlternatingLeastSquares, median over the iterations of one fit each.
- ``ials_ndcg@10``: NDCG@10 of both fits (each with its own defaults: ours, and implicit's
  reference setup of 64 factors, 15 iterations, binary x10 confidence) on the test part
  of temporal_per_user(n_val=1, n_test=5, min_train=5), relevance rating >= 4, full
  catalogue, training items excluded; both scored through the same evaluator.
- ``topk_all_users_s``: ``model.recommend(all users, k=10)`` with our 64-factor
  ImplicitALS (``topk_dot``: BLAS tiles merged into the heaps in cache, items by decreasing
  norm, each user stopped once no item left can enter her list; exact, same lists as the
  dense scores) vs implicit's ``recommend`` for all users (its BLAS + top-K), each on its
  own factors, training items excluded.
- ``bpr_s_per_epoch``: BPR seconds per epoch vs implicit's BPR (median of --iters epochs).
- ``peak_rss_gb``: the process's peak RSS after our fit + evaluation (before the peers run;
  it includes loading and splitting the data).

Input: binary positives (rating >= 4) of the training part. Both libraries use all cores
(numba / OpenMP threads), BLAS single-threaded.

    flock /tmp/movierec-bench.lock .venv/bin/python benchmarks/bench_topn.py
    .venv/bin/python benchmarks/bench_topn.py --data /tmp/some-synth --only ials,bpr --iters 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numba as nb  # noqa: E402
import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from movierec.data import load  # noqa: E402
from movierec.evaluation.evaluator import evaluate_model  # noqa: E402
from movierec.models.bpr import BPR  # noqa: E402
from movierec.models.ials import ImplicitALS  # noqa: E402
from movierec.split import temporal_per_user  # noqa: E402

FIGURES = ("ials", "topk", "bpr")


def emit(figure: str, ours: float, peer: float, **extra) -> None:
    print(
        json.dumps(
            {
                "figure": figure,
                "ours": round(ours, 4),
                "peer": round(peer, 4),
                "ratio": round(ours / peer, 3) if peer else None,
                **extra,
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        ),
        flush=True,
    )


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def positives(train, threshold: float = 4.0) -> sp.csr_matrix:
    keep = train.ratings >= threshold
    m = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (train.users[keep], train.items[keep])),
        shape=(train.n_users, train.n_items),
    )
    m.sum_duplicates()
    m.sort_indices()
    return m


def warm_up(train) -> None:
    """Compile (or load from numba's cache) every kernel on a tiny slice of the data."""
    small = train.subset(np.flatnonzero(train.users < 300))
    ImplicitALS(factors=8, iterations=1).fit(small).recommend(np.arange(10), k=10)
    BPR(factors=8, iterations=1).fit(small)


def epoch_times(fit) -> list[float]:
    stamps = [time.perf_counter()]

    def cb(epoch, model):
        stamps.append(time.perf_counter())

    fit(cb)
    return list(np.diff(stamps))


def peer_like(ours: ImplicitALS, user_factors: np.ndarray, item_factors: np.ndarray):
    """Our fitted model with implicit's factors, so both go through the same evaluator."""
    p = ImplicitALS(**ours.get_params())
    p.__dict__.update(ours.learned_state())
    p.user_factors_ = np.ascontiguousarray(user_factors, dtype=np.float32)
    p.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
    return p


def ndcg10(model, split) -> float:
    _, s = evaluate_model(model, split.test, history=split.train, exclude=split.train, k=10)
    return float(s["ndcg@10"])


def run_ials(split, X, iters: int | None, do_topk: bool, threads: int, info: dict) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    n_it = iters or 15
    ours = ImplicitALS(factors=64, iterations=n_it)
    t_ours = epoch_times(lambda cb: ours.fit(split.train, callback=cb))
    nd_ours = ndcg10(ours, split)
    seen = split.train.csr()
    all_users = np.arange(split.train.n_users)
    if do_topk:
        t0 = time.perf_counter()
        items_o, _ = ours.recommend(all_users, k=10)
        topk_ours = time.perf_counter() - t0
    rss = peak_rss_gb()

    peer = AlternatingLeastSquares(
        factors=64, iterations=n_it, alpha=10.0, random_state=0, num_threads=threads
    )
    t_peer: list[float] = []
    peer.fit(X, show_progress=False, callback=lambda it, el, loss: t_peer.append(el))
    on_peer = peer_like(ours, peer.user_factors, peer.item_factors)
    nd_peer = ndcg10(on_peer, split)
    emit(
        "ials_s_per_iter",
        statistics.median(t_ours),
        statistics.median(t_peer),
        iterations=n_it,
        factors=64,
        **info,
    )
    emit("ials_ndcg@10", nd_ours, nd_peer, iterations=n_it, **info)
    if do_topk:
        # implicit excludes what its filter matrix holds: all training ratings, as ours
        filt = sp.csr_matrix(
            (np.ones(seen.nnz, np.float32), seen.indices, seen.indptr), shape=seen.shape
        )
        t0 = time.perf_counter()
        bs = 16384
        for a in range(0, all_users.size, bs):
            u = all_users[a : a + bs]
            peer.recommend(u, filt[u], N=10, filter_already_liked_items=True)
        topk_peer = time.perf_counter() - t0
        # our ranking on implicit's factors too: the early stop depends on the factors' norms
        t0 = time.perf_counter()
        on_peer.recommend(all_users, k=10)
        topk_ours_peer_factors = time.perf_counter() - t0
        emit(
            "topk_all_users_s",
            topk_ours,
            topk_peer,
            ours_on_peer_factors=round(topk_ours_peer_factors, 4),
            users=int(all_users.size),
            items=int(split.train.n_items),
            k=10,
            **info,
        )
    print(json.dumps({"figure": "peak_rss_gb", "ours": round(rss, 3), "after": "ials"}))


def run_bpr(split, X, iters: int | None, threads: int, info: dict) -> None:
    from implicit.cpu.bpr import BayesianPersonalizedRanking, RNGVector, bpr_update

    n_ep = iters or 5
    ours = BPR(factors=64, iterations=n_ep)
    t_ours = epoch_times(lambda cb: ours.fit(split.train, callback=cb))
    rss = peak_rss_gb()

    peer = BayesianPersonalizedRanking(
        factors=64, iterations=1, random_state=0, num_threads=threads
    )
    peer.fit(X, show_progress=False)  # initialises the factors (and one epoch)
    userids = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr)).astype(X.indices.dtype)
    seeds = np.random.default_rng(0).integers(0, 2**31, size=threads).astype(np.int64)
    rng = RNGVector(threads, X.nnz - 1, seeds)
    t_peer = []
    for _ in range(n_ep):
        t0 = time.perf_counter()
        bpr_update(
            rng, userids, X.indices, X.indptr, peer.user_factors, peer.item_factors,
            0.01, 0.01, threads, True,
        )  # fmt: skip
        t_peer.append(time.perf_counter() - t0)
    emit(
        "bpr_s_per_epoch",
        statistics.median(t_ours),
        statistics.median(t_peer),
        epochs=n_ep,
        factors=64,
        **info,
    )
    print(json.dumps({"figure": "peak_rss_gb", "ours": round(rss, 3), "after": "bpr"}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/tmp/ml25m-synth")
    ap.add_argument("--only", default=",".join(FIGURES), help="comma list of ials,topk,bpr")
    ap.add_argument("--iters", type=int, default=None, help="ALS iterations / BPR epochs")
    a = ap.parse_args()
    only = {x.strip() for x in a.only.split(",") if x.strip()}
    threads = nb.get_num_threads()

    t0 = time.perf_counter()
    ds = load(a.data)
    split = temporal_per_user(ds, n_val=1, n_test=5, min_train=5)
    X = positives(split.train)
    info = {"data": ds.label, "positives": int(X.nnz), "threads": threads}
    print(json.dumps({"figure": "load_split_s", "ours": round(time.perf_counter() - t0, 2)}))
    warm_up(split.train)
    if "ials" in only or "topk" in only:
        run_ials(split, X, a.iters, "topk" in only, threads, info)
    if "bpr" in only:
        run_bpr(split, X, a.iters, threads, info)


if __name__ == "__main__":
    main()
