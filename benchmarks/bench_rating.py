"""Rating-prediction benchmarks: SVD / SVD++ fit time and accuracy, one JSON line per figure.

(a) ``--only 100k``: MovieLens 100K, 5-fold CV (``movierec.split.kfold(ds, 5, seed=0)``),
    our SVD and SVD++ against Surprise's (same folds, same n_factors / n_epochs / rates),
    in single-thread deterministic mode and in parallel (Hogwild) mode. Times are fit
    times summed over the folds (model.fit / algo.fit; Surprise's trainset is built
    beforehand, as our Dataset is), median of ``--runs`` runs; the peer is measured in the
    same run. CPU seconds are given too, since the machine may be shared.
    ``ours_ns_per_update`` is our fit time divided by the (rating, epoch) updates made: a
    figure of our code on this machine, which does not move with the peer's speed (the
    same Surprise wheel fitted in 1.34 s on one machine of this kind and 1.9-2.1 s on another).
(b) ``--only 25m``: the generated ml-25m-shaped set (``--path``, default /tmp/ml25m-synth):
    SVD 100 factors, 20 epochs, full fit from a loaded Dataset (building the CSR and the
    fallback biases included), wall time and the process's peak RSS; explicit ALS 64 factors
    10 iterations when ``movierec.models.als.ALS`` exists. Each 25M figure runs in a fresh
    child process so its peak RSS is its own. Wrap 25M runs in
    ``flock /tmp/movierec-bench.lock`` on a shared machine.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_rating.py --only 100k --runs 3
    flock /tmp/movierec-bench.lock python benchmarks/bench_rating.py --only 25m --runs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from movierec.evaluation.metrics import mae, rmse  # noqa: E402

HERE = Path(__file__).resolve()


def emit(**kw: Any) -> None:
    print(json.dumps(kw), flush=True)


def _round(x: float | None, n: int = 4) -> float | None:
    return None if x is None else round(float(x), n)


# -- (a) ML-100K against Surprise ------------------------------------------------------------
def _surprise_folds(splits: list) -> tuple[list, str]:
    """Surprise (trainset, testset) pairs of our folds, written to files and read back."""
    import surprise
    from surprise import Dataset as SDataset
    from surprise import Reader
    from surprise.model_selection import PredefinedKFold

    tmp = Path(tempfile.mkdtemp(prefix="bench-rating-"))
    files = []
    for k, sp in enumerate(splits):
        pair = []
        for part, name in ((sp.train, "train"), (sp.test, "test")):
            f = tmp / f"{name}{k}.tsv"
            rows = np.column_stack([part.users, part.items, part.ratings])
            np.savetxt(f, rows, fmt=["%d", "%d", "%g"], delimiter="\t")
            pair.append(str(f))
        files.append(tuple(pair))
    reader = Reader(line_format="user item rating", sep="\t", rating_scale=(1, 5))
    try:
        data = SDataset.load_from_folds(files, reader)
        return list(PredefinedKFold().split(data)), surprise.__version__
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fit_ours(cls: type, params: dict, splits: list) -> tuple[float, float, float, float]:
    wall = cpu = 0.0
    errs, abs_errs = [], []
    for sp in splits:
        train = dataclasses.replace(sp.train)  # no cached matrices: building them counts
        m = cls(**params)
        t, c = time.perf_counter(), time.process_time()
        m.fit(train)
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
        p = m.predict(sp.test.users, sp.test.items)
        errs.append(rmse(p, sp.test.ratings))
        abs_errs.append(mae(p, sp.test.ratings))
    return wall, cpu, float(np.mean(errs)), float(np.mean(abs_errs))


def _fit_peer(cls: type, params: dict, folds: list) -> tuple[float, float, float, float]:
    from surprise import accuracy

    wall = cpu = 0.0
    errs, abs_errs = [], []
    for trainset, testset in folds:
        a = cls(**params)
        t, c = time.perf_counter(), time.process_time()
        a.fit(trainset)
        wall += time.perf_counter() - t
        cpu += time.process_time() - c
        pred = a.test(testset)
        errs.append(accuracy.rmse(pred, verbose=False))
        abs_errs.append(accuracy.mae(pred, verbose=False))
    return wall, cpu, float(np.mean(errs)), float(np.mean(abs_errs))


def bench_100k(runs: int, which: list[str]) -> None:
    import numba

    from movierec.data import load
    from movierec.models.mf import PARALLEL_MIN_RATINGS, SVD, SVDpp
    from movierec.split import kfold

    ds = load("ml-100k")
    splits = kfold(ds, 5, seed=0)
    try:
        folds, peer_version = _surprise_folds(splits)
        import surprise
    except ImportError as e:
        folds, peer_version, surprise = None, None, None
        emit(bench="rating_ml100k", skipped=f"surprise not importable: {e}")
    algos = {"svd": (SVD, "SVD"), "svdpp": (SVDpp, "SVDpp")}
    # parallel=True starts threads only on large training sets; say what really ran
    threads = numba.get_num_threads() if splits[0].train.n_ratings >= PARALLEL_MIN_RATINGS else 1
    for key in which:
        ours_cls, peer_name = algos[key]
        shared = {"random_state": 0}
        # compile / load the numba kernels before timing
        for par in (False, True):
            ours_cls(parallel=par, n_epochs=1).fit(splits[0].train)
        res: dict[str, list] = {"serial": [], "parallel": [], "peer": []}
        for _ in range(runs):
            res["serial"].append(_fit_ours(ours_cls, {**shared, "parallel": False}, splits))
            res["parallel"].append(_fit_ours(ours_cls, {**shared, "parallel": True}, splits))
            if folds is not None:
                res["peer"].append(_fit_peer(getattr(surprise, peer_name), shared, folds))
        # machine-level figure beside the ratio: fit wall time per (rating, epoch) visited
        updates = ours_cls().n_epochs * sum(sp.train.n_ratings for sp in splits)
        peer = res["peer"]
        p_wall = statistics.median(r[0] for r in peer) if peer else None
        p_cpu = statistics.median(r[1] for r in peer) if peer else None
        for mode in ("serial", "parallel"):
            ours = res[mode]
            o_wall = statistics.median(r[0] for r in ours)
            o_cpu = statistics.median(r[1] for r in ours)
            emit(
                bench=f"{key}_fit_ml100k" + ("" if mode == "serial" else "_parallel"),
                ours_s=_round(o_wall),
                ours_ns_per_update=_round(o_wall / updates * 1e9, 1),
                peer_s=_round(p_wall),
                speedup=_round(p_wall / o_wall, 2) if peer else None,
                ours_rmse=_round(ours[0][2]),
                peer_rmse=_round(peer[0][2]) if peer else None,
                ours_mae=_round(ours[0][3]),
                peer_mae=_round(peer[0][3]) if peer else None,
                ours_cpu_s=_round(o_cpu),
                peer_cpu_s=_round(p_cpu),
                speedup_cpu=_round(p_cpu / o_cpu, 2) if peer else None,
                mode=mode,
                threads=threads if mode == "parallel" else 1,
                folds=5,
                runs=runs,
                what="fit time summed over 5 folds, median of runs",
                peer=f"surprise {peer_version}" if peer else None,
            )


# -- (b) 25M-shaped set --------------------------------------------------------------------
def _child_25m(kind: str, path: str, parallel: bool) -> None:
    """Run one 25M fit in this (fresh) process and print its JSON result."""
    import numba

    from movierec.data import load

    t0 = time.perf_counter()
    ds = load(path)
    load_s = time.perf_counter() - t0
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if kind == "svd":
        from movierec.models.mf import SVD

        SVD(n_epochs=1, parallel=parallel).fit(ds.subset(np.arange(1000)))  # load kernels
        model: Any = SVD(n_factors=100, n_epochs=20, parallel=parallel)
    else:
        from movierec.models.als import ALS

        ALS(n_epochs=1).fit(ds.subset(np.arange(1000)))
        model = ALS(n_factors=64, n_epochs=10)
    train = dataclasses.replace(ds)  # fresh object: CSR/CSC are built inside the timing
    t, c = time.perf_counter(), time.process_time()
    model.fit(train)
    fit_s = time.perf_counter() - t
    cpu_s = time.process_time() - c
    loss = getattr(model, "loss_", None)
    print(
        json.dumps(
            {
                "fit_s": fit_s,
                "cpu_s": cpu_s,
                "load_s": load_s,
                "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                "rss_after_load_gb": rss_loaded,
                "ratings": ds.n_ratings,
                "threads": numba.get_num_threads() if parallel or kind == "als" else 1,
                "train_rmse": None if loss is None or not len(loss) else float(loss[-1]),
            }
        ),
        flush=True,
    )


def bench_25m(runs: int, path: str, serial: bool) -> None:
    if not (Path(path) / "ratings.csv").exists():
        emit(bench="svd_fit_ml25m_synth", skipped=f"{path}/ratings.csv does not exist")
        return
    jobs = [("svd", True, "svd_fit_ml25m_synth", 40.0)]
    if serial:
        jobs.append(("svd", False, "svd_fit_ml25m_synth_serial", None))
    try:
        from movierec.models.als import ALS  # noqa: F401

        jobs.append(("als", False, "als_fit_ml25m_synth", None))
    except ImportError as e:
        emit(bench="als_fit_ml25m_synth", skipped=f"movierec.models.als.ALS not importable: {e}")
    for kind, parallel, name, target in jobs:
        out = []
        for _ in range(runs):
            cmd = [sys.executable, str(HERE), "--child", kind, "--path", path]
            if parallel:
                cmd.append("--parallel")
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                emit(bench=name, error=proc.stderr.strip().splitlines()[-1:] or "failed")
                break
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        if not out:
            continue
        emit(
            bench=name,
            ours_s=_round(statistics.median(r["fit_s"] for r in out), 2),
            peer_s=None,
            ours_cpu_s=_round(statistics.median(r["cpu_s"] for r in out), 2),
            all_s=[_round(r["fit_s"], 2) for r in out],
            peak_rss_gb=_round(max(r["peak_rss_gb"] for r in out), 3),
            rss_after_load_gb=_round(out[0]["rss_after_load_gb"], 3),
            target_s=target,
            target_rss_gb=4.0,
            ratings=out[0]["ratings"],
            threads=out[0]["threads"],
            train_rmse=_round(out[0]["train_rmse"]),
            params="n_factors=100 n_epochs=20" if kind == "svd" else "n_factors=64 n_epochs=10",
            runs=len(out),
            what="full fit from a loaded Dataset (CSR, fallback biases, epochs), median of runs",
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["100k", "25m"], default=None)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--models", default="svd,svdpp", help="100k: comma list of svd, svdpp")
    ap.add_argument("--path", default="/tmp/ml25m-synth")
    ap.add_argument("--serial-25m", action="store_true", help="also time 25M single-thread")
    ap.add_argument("--child", choices=["svd", "als"], help=argparse.SUPPRESS)
    ap.add_argument("--parallel", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _child_25m(a.child, a.path, a.parallel)
        return
    if a.only in (None, "100k"):
        bench_100k(a.runs, a.models.split(","))
    if a.only in (None, "25m"):
        bench_25m(a.runs, a.path, a.serial_25m)


if __name__ == "__main__":
    main()
