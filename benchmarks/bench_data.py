"""Data loading and split speed on a MovieLens-shaped folder; prints one JSON line.

Each measurement runs in a fresh process (so the parsed cache, numba's compiled-code
cache and the OS page cache are the only things shared between runs), and the figure is
the median over ``--runs``. The peer is polars alone reading ratings.csv in the same run.

    python benchmarks/bench_data.py --data /tmp/ml25m-synth --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, resource, sys, time
step, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
out = {}
if step == "polars":
    import polars as pl
    t = time.perf_counter()
    df = pl.read_csv(os.path.join(path, "ratings.csv"))
    out["s"] = time.perf_counter() - t
else:
    from movierec.data import load
    from movierec import split as S
    t = time.perf_counter()
    ds = load(path, cache=(step != "cold"))
    if step == "cold":
        ds.csr()
    out["s"] = time.perf_counter() - t
    if step == "warm":
        t = time.perf_counter()
        ds.csr()
        out["csr_s"] = time.perf_counter() - t
    if step == "split":
        for name, fn in (("temporal_per_user", S.temporal_per_user), ("temporal_global", S.temporal_global)):
            fn(ds)  # the first call compiles or loads the kernels
            t = time.perf_counter()
            fn(ds)
            out[name] = time.perf_counter() - t
    out["ratings"] = ds.n_ratings
out["rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps(out))
"""


def run(step: str, path: str, env: dict[str, str]) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", CHILD, step, path],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"{step} failed: {res.stderr.strip().splitlines()[-1]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--data", required=True, help="folder with ratings.csv (e.g. movierec data synth)"
    )
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = dict(os.environ)
    env.setdefault("MOVIEREC_HOME", tempfile.mkdtemp(prefix="movierec-bench-"))
    run("cold", args.data, env)  # compiles the kernels into numba's cache; writes the parsed cache
    rows: dict[str, list[float]] = {}
    rss = 0.0
    n = 0
    for _ in range(args.runs):
        for step in ("polars", "cold", "warm", "split"):
            r = run(step, args.data, env)
            rss = max(rss, r["rss_gb"])
            n = r.get("ratings", n)
            for k, v in r.items():
                if k not in ("rss_gb", "ratings"):
                    rows.setdefault(f"{step}:{k}", []).append(v)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(
        json.dumps(
            {
                "bench": "data_load",
                "data": args.data,
                "ratings": n,
                "runs": args.runs,
                "cold_load_s": round(med["cold:s"], 3),
                "warm_load_s": round(med["warm:s"], 3),
                "warm_csr_s": round(med["warm:csr_s"], 3),
                "temporal_per_user_s": round(med["split:temporal_per_user"], 3),
                "temporal_global_s": round(med["split:temporal_global"], 3),
                "peer_polars_read_s": round(med["polars:s"], 3),
                "cold_vs_polars_ratio": round(med["cold:s"] / med["polars:s"], 2),
                "peak_rss_gb": round(rss, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
