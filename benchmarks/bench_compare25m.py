"""Wall time, peak memory and per-model seconds of one `movierec compare`; one JSON line.

Runs the compare of ``--config`` on ``--data`` as a child process (what ``/usr/bin/time -v``
reports: wall seconds and the child's peak RSS, from ``resource.getrusage``), then reads
its results.json for every model's fit seconds (on train, then the refit on train +
validation) and evaluation seconds on validation and on test, and the skipped models.

    python benchmarks/bench_compare25m.py --data /tmp/ml25m-synth
    flock /tmp/movierec-bench.lock python benchmarks/bench_compare25m.py --data DIR --out /tmp/c
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="folder of MovieLens-shaped files")
    ap.add_argument("--config", default="configs/ml-25m.yaml")
    ap.add_argument("--out", default=None, help="output folder (default: a temporary one)")
    a = ap.parse_args()

    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="bench-compare-")) / "run"
    cmd = [sys.executable, "-m", "movierec.cli", "compare", "--config", a.config]
    cmd += ["--data", a.data, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    row: dict = {
        "bench": "compare",
        "data": a.data,
        "config": a.config,
        "wall_s": round(wall, 1),
        "peak_rss_gb": round(peak_kb / 2**20, 2),
        "rc": proc.returncode,
    }
    res_path = out / "results.json"
    if proc.returncode != 0 or not res_path.exists():
        row["error"] = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
        print(json.dumps(row))
        sys.exit(1)
    res = json.loads(res_path.read_text())
    val, test = res["validation"]["summary"], res["test"]["summary"]
    models = {}
    for label in val:
        v, t = val[label], test.get(label, {})
        models[label] = {
            "fit_s": v.get("fit_s"),
            "eval_validation_s": v.get("eval_s"),
            "refit_s": t.get("fit_s") if res.get("refit") else None,  # refit: false: no refit
            "eval_test_s": t.get("eval_s"),
        }
    row.update(
        {
            "users_evaluated_test": int(next(iter(test.values()))["users_evaluated"]),
            "compare_s": res.get("seconds"),
            "refit": res.get("refit"),
            "best": res.get("best"),
            "models": models,
            "skipped": res.get("skipped", {}),
        }
    )
    print(json.dumps(row))
    if not a.out:
        shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
