"""`movierec serve` under load; prints one JSON line per figure.

An ImplicitALS artifact (64 factors) is trained on all ratings of a generated data set in
the ml-25m shape (``--scale 1`` is 162,541 users x 59,047 movies), then one server
process (one worker) is started on 127.0.0.1 and driven by wrk (Debian's, ``--tool wrk``)
or a bounded Python load generator (``--tool python``), ``--seconds`` per phase:

- ``hello``: a bare FastAPI app answering {"ok": true}, the framework's ceiling;
- ``cached``: one user's recommendations again and again;
- ``uncached``: a different user on every request;
- ``visitor``: new sessions rating 5 popular movies, then asking for recommendations
  (the p99 of that last request);
- ``cached_paced`` / ``uncached_paced``: the same requests paced at the floor's rate
  (2,000 and 600 req/s), for the p99 "at those rates" (a closed loop at saturation
  queues every request behind the others: its p99 is the queue, not the service);
- ``reload``: the uncached load while ``POST /admin/reload`` swaps the model (0 failures);
- ``experiment``: a second server runs an A/A experiment (both arms this model); the
  uncached load alternates between the two servers (3 rounds of ``--seconds / 3``) for the
  throughput ratio, and every list served must be an exposure in the store;
- ``artifact_load_s`` (a fresh process loading the artifact) and ``server_rss_mb``.

Floors from issue 8 (2-core machine, load generator sharing it): cached >= 2,000 req/s,
uncached >= 600 req/s, p99 <= 25 ms, 0 errors; visitor p99 <= 20 ms; reload 0 failures;
artifact load <= 3 s; RSS <= 2 GB.

    python benchmarks/bench_serve.py --scale 1 --seconds 60
    python benchmarks/bench_serve.py --scale 0.002 --seconds 3   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HELLO = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/hello")
async def hello():
    return {"ok": True}
"""

UNCACHED_LUA = """
counter = 0
setup = function(thread)
  thread:set("id", counter)
  counter = counter + 1
end
init = function(args)
  paths = {}
  for line in io.lines("%s") do paths[#paths + 1] = line end
  i = id * 7919
end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""

PACED_LUA = """
-- wrk (not wrk2) has no rate option: each request waits for its slot of a fixed schedule
-- (behind schedule, it goes at once); latency is still measured from the send
local ffi = require("ffi")
ffi.cdef[[ typedef struct { long tv_sec; long tv_nsec; } mr_timespec;
           int clock_gettime(int clk_id, mr_timespec *tp); ]]
local ts = ffi.new("mr_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local interval = %f
local slot = nil
delay = function()
  local t = now_ms()
  slot = (slot or t) + interval
  local d = slot - t
  if d < 0 then return 0 end
  return math.floor(d + 0.5)
end
"""

TOKEN = "bench-token"
AA_CONFIG = """
experiments:
  - name: bench-aa
    variants: {control: ials, treatment: ials}
    primary_metric: ctr
"""
FLOORS = {
    "cached": {"rps": 2000},
    "uncached": {"rps": 600},
    "cached_paced": {"rps": 2000, "p99_ms": 25, "errors": 0},
    "uncached_paced": {"rps": 600, "p99_ms": 25, "errors": 0},
    "experiment": {"rps_ratio_min": 0.9, "lost_exposures": 0},
    "visitor": {"p99_ms": 20},
    "artifact_load_s": {"max": 3.0},
    "server_rss_mb": {"max": 2048},
}


def emit(figure: str, scale: float, **kw) -> None:
    line = {"bench": "serve", "figure": figure, "scale": scale, **kw}
    if figure in FLOORS:
        line["floor"] = FLOORS[figure]
    print(json.dumps(line), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen, path: str = "/ready", timeout: float = 600):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} not ready in {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def rss_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return {"rss_mb": round(out.get("VmRSS", 0), 1), "peak_mb": round(out.get("VmHWM", 0), 1)}


# -- load generators -----------------------------------------------------------------------------
_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m[1]) * _UNIT[m[2]] if m else float("nan")


def wrk(url: str, seconds: int, threads: int, conns: int, script: str | None = None) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])}
    for p in ("50", "90", "99"):
        m = re.search(rf"^\s+{p}(?:\.0+)?%\s+(\S+)", out, re.M)
        res[f"p{p}_ms"] = round(_ms(m[1]), 3) if m else None
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m[1])
    res["requests"] = int(re.search(r"(\d+) requests in", out)[1])
    res["errors"] = errors
    res["rps"] = round(res["rps"], 1)
    return res


def pyload(base: str, paths: list[str], seconds: int, conns: int) -> dict:
    """A bounded Python load generator: ``conns`` threads, each with its own client."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker(t: int) -> None:
        c = httpx.Client(base_url=base, timeout=5)
        mine, bad, n = [], 0, t * 7919
        while time.monotonic() < end:
            n += 1
            t0 = time.perf_counter()
            try:
                ok = c.get(paths[n % len(paths)]).status_code < 400
            except httpx.HTTPError:
                ok = False
            mine.append((time.perf_counter() - t0) * 1e3)
            bad += not ok
        with lock:
            lat.extend(mine)
            errors[0] += bad

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(conns)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.monotonic() - t0
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
    return {"rps": round(len(lat) / took, 1), "p50_ms": round(q[49], 3), "p90_ms": round(q[89], 3),
            "p99_ms": round(q[98], 3), "requests": len(lat), "errors": errors[0]}  # fmt: skip


def load_phase(
    args,
    base: str,
    paths: list[str],
    work: Path,
    name: str,
    rate: float | None = None,
    seconds: int | None = None,
) -> dict:
    """wrk (or the Python generator) on ``paths``; ``rate``: paced at that many req/s."""
    seconds = seconds or args.seconds
    if args.tool == "python":
        if rate is not None:
            raise SystemExit("paced phases need --tool wrk")
        return pyload(base, paths, seconds, args.connections)
    lua = ""
    if len(paths) > 1:
        lines = work / f"{name}.paths"
        lines.write_text("\n".join(paths) + "\n")
        lua = UNCACHED_LUA % lines
    if rate is not None:
        lua += PACED_LUA % (1000.0 * args.threads / rate)
    if not lua:
        return wrk(base + paths[0], seconds, args.threads, args.connections)
    script = work / f"{name}.lua"
    script.write_text(lua)
    url = base + paths[0] if len(paths) == 1 else base
    return wrk(url, seconds, args.threads, args.connections, str(script))


# -- phases ---------------------------------------------------------------------------------------
def prepare(args, work: Path) -> tuple[Path, dict]:
    """Generate the data and train the artifact (reused when already there)."""
    from movierec.artifacts import save
    from movierec.data import load
    from movierec.data.synth import generate
    from movierec.models.ials import ImplicitALS

    data = work / f"ml25m-{args.scale:g}"
    if not (data / "ratings.csv").exists():
        generate("ml-25m", data, scale=args.scale, seed=0)
    art = work / f"ials64-{args.scale:g}"
    info = {}
    if not (art / "model.json").exists():
        ds = load(data, synthetic=True)
        t0 = time.perf_counter()
        m = ImplicitALS(factors=64, iterations=args.iterations, random_state=0).fit(ds)
        info["fit_s"] = round(time.perf_counter() - t0, 2)
        save(m, art, train=ds, extra={"label": "ials", "trained_on": "all"})
        info.update(users=ds.n_users, movies=ds.n_items, ratings=ds.n_ratings)
    return art, info


LOAD_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from movierec.serving.engine import Engine
t1 = time.perf_counter()
e = Engine(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "state_s": e.state.loaded_s}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument(
        "--tool", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python"
    )
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-serve")
    ap.add_argument(
        "--phases",
        default="hello,load,cached,cached_paced,uncached,uncached_paced,visitor,reload,experiment",
    )
    args = ap.parse_args()
    phases = set(args.phases.split(","))
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    art, info = prepare(args, work)
    if info:
        emit("train", args.scale, **info)
    s = args.scale

    if "hello" in phases:
        (work / "hello_app.py").write_text(HELLO)
        port = free_port()
        cmd = [sys.executable, "-m", "uvicorn", "hello_app:app", "--port", str(port),
               "--no-access-log", "--log-level", "warning"]  # fmt: skip
        proc = subprocess.Popen(cmd, cwd=work, env=env)
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc, "/hello", 60)
            res = load_phase(args, f"http://127.0.0.1:{port}", ["/hello"], work, "hello")
            emit("hello", s, tool=args.tool, **res)
        finally:
            stop(proc)

    if "load" in phases:
        times = []
        for _ in range(3):
            out = subprocess.run([sys.executable, "-c", LOAD_CHILD, str(art)], env=env,
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            times.append(json.loads(out.splitlines()[-1]))
        best = min(times, key=lambda t: t["load_s"])
        emit("artifact_load_s", s, value=round(best["load_s"], 3),
             import_s=round(best["import_s"], 3), runs=len(times))  # fmt: skip

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    db = work / "bench-feedback.db"
    db.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "movierec.cli", "serve", str(art), "--port", str(port),
           "--db", f"sqlite:///{db}", "--no-access-log"]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env={**env, "MOVIEREC_ADMIN_TOKEN": TOKEN})
    try:
        wait_ready(base, proc)
        emit("server_start_to_ready_s", s, value=round(time.perf_counter() - t0, 2))
        import numpy as np

        user_ids = np.load(art / "user_ids.npy")
        rng = np.random.default_rng(0)
        n = min(user_ids.size, 200_000)
        users = [f"/users/{u}/recommendations?k=10" for u in rng.permutation(user_ids)[:n]]
        httpx.get(base + users[0])  # compiles the kernels once
        if "cached" in phases:
            emit("cached", s, tool=args.tool, **load_phase(args, base, users[:1], work, "cached"))
        if "cached_paced" in phases:
            res = load_phase(args, base, users[:1], work, "cached_paced", rate=2000)
            emit("cached_paced", s, tool=args.tool, offered_rps=2000, **res)
        if "uncached" in phases:
            res = load_phase(args, base, users[1:], work, "uncached")
            emit("uncached", s, tool=args.tool, **res)
        if "uncached_paced" in phases:
            # from the other half of the users: none of them is in the cache yet
            half = len(users) // 2
            res = load_phase(args, base, users[half:] + users[1:half], work, "uncached_paced",
                             rate=600)  # fmt: skip
            emit("uncached_paced", s, tool=args.tool, offered_rps=600, **res)
        if "visitor" in phases:
            emit("visitor", s, **visitors(base, art, args.seconds))
        if "reload" in phases:
            emit("reload", s, tool=args.tool, **reload_under_load(args, base, users, work))
        emit("server_rss_mb", s, value=rss_mb(proc.pid)["rss_mb"], **rss_mb(proc.pid))
        if "experiment" in phases:
            emit("experiment", s, tool=args.tool, **experiment(args, base, art, users, work, env))
    finally:
        stop(proc)


def visitors(base: str, art: Path, seconds: int) -> dict:
    """New sessions: rate 5 popular movies, then time the recommendations request."""
    import numpy as np

    from movierec.artifacts import ITEM_IDS

    items = np.load(art / ITEM_IDS)
    with np.load(art / "history.npz") as h:
        counts = np.bincount(h["indices"], minlength=items.size)
    popular = items[np.argsort(-counts)[:200]].tolist()
    rng = np.random.default_rng(1)
    c = httpx.Client(base_url=base, timeout=5)
    lat, errors = [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sid = c.post("/sessions").json()["session_id"]
        for m in rng.choice(popular, 5, replace=False).tolist():
            r = c.post(f"/sessions/{sid}/ratings", json={"movieId": int(m), "rating": 4.5})
            errors += r.status_code != 201
        t0 = time.perf_counter()
        r = c.get(f"/sessions/{sid}/recommendations", params={"k": 10})
        lat.append((time.perf_counter() - t0) * 1e3)
        errors += r.status_code != 200 or r.json()["fallback"] is not None
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [float("nan")] * 99
    return {"visitors": len(lat), "p50_ms": round(q[49], 3), "p99_ms": round(q[98], 3),
            "errors": errors}  # fmt: skip


def served_lists(base: str) -> int:
    """The server's count of 200 responses to GET /users/{userId}/recommendations."""
    text = httpx.get(base + "/metrics").text
    pat = r"^movierec_requests_total\{(.*)\} (\S+)$"  # the route has braces
    return sum(
        int(float(v))
        for labels, v in re.findall(pat, text, re.M)
        if 'route="/users/{userId}/recommendations"' in labels and 'status="200"' in labels
    )


def experiment(args, base: str, art: Path, users: list[str], work: Path, env: dict) -> dict:
    """Throughput with an experiment running (A/A) over without, alternating servers, and
    exposures in the store against lists served."""
    import sqlite3

    cfg = work / "bench-aa.yaml"
    cfg.write_text(AA_CONFIG)
    db = work / "bench-aa.db"
    for f in work.glob("bench-aa.db*"):
        f.unlink()
    port = free_port()
    ab = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "movierec.cli", "serve", str(art), "--port", str(port),
           "--db", f"sqlite:///{db}", "--config", str(cfg), "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env)
    plain, with_exp = [], []
    try:
        wait_ready(ab, proc)
        httpx.get(ab + users[0])
        third = max(1, args.seconds // 3)
        for r in range(3):  # alternate, so drift of the machine hits both alike
            part = users[1 + r :: 3]
            plain.append(load_phase(args, base, part, work, "exp-off", seconds=third))
            with_exp.append(load_phase(args, ab, part, work, "exp-on", seconds=third))
        served = served_lists(ab)  # every list since the start, the warm-up's too
    finally:
        stop(proc)  # a clean stop drains the exposure queue
    with sqlite3.connect(db) as c:
        logged = c.execute("SELECT count(*) FROM exposures WHERE experiment = 'bench-aa'")
        logged = logged.fetchone()[0]
    ratios = [b["rps"] / a["rps"] for a, b in zip(plain, with_exp, strict=True)]
    return {
        "rps_off": [x["rps"] for x in plain], "rps_on": [x["rps"] for x in with_exp],
        "rps_ratio": round(statistics.median(ratios), 3),
        "errors": sum(x["errors"] for x in plain + with_exp),
        "lists_served": served, "exposures_logged": logged, "lost_exposures": served - logged,
    }  # fmt: skip


def reload_under_load(args, base: str, users: list[str], work: Path) -> dict:
    """The uncached load with ``POST /admin/reload`` at a third and two thirds of it."""
    took: list[float] = []
    failed = [0]

    def reloader() -> None:
        for _ in range(2):
            time.sleep(args.seconds / 3)
            t0 = time.perf_counter()
            r = httpx.post(base + "/admin/reload", timeout=120,
                           headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
            took.append(time.perf_counter() - t0)
            failed[0] += r.status_code != 200

    t = threading.Thread(target=reloader)
    t.start()
    res = load_phase(args, base, users[::-1], work, "reload")
    t.join()
    return {**res, "reloads": len(took), "reload_s": [round(x, 2) for x in took],
            "reload_failures": failed[0]}  # fmt: skip


if __name__ == "__main__":
    main()
