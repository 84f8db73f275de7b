"""End to end: `movierec serve` as a real uvicorn process on a free 127.0.0.1 port, stopped
by its pid; SIGHUP reloads; SIGKILL mid-load loses no acknowledged write."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from serving_data import BEST, build_run, train_data

from movierec.artifacts import save
from movierec.models import make_model

pytestmark = pytest.mark.slow
TOKEN = "e2e-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, path: Path, db: str, log: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "MOVIEREC_ADMIN_TOKEN": TOKEN, "NUMBA_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "movierec.cli", "serve", str(path), "--port",
               str(self.port), "--db", db, "--workers", str(workers), "--no-access-log"]  # fmt: skip
        self.log = log
        self.proc = subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 90) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                r = httpx.get(self.url + "/ready", timeout=2)
                if r.status_code == 200:
                    return r.json()
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"not ready in {timeout} s:\n{self.log.read_text()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_run(
        tmp_path_factory.mktemp("e2e"), {"popularity": {}, "ease": {"l2": 10.0, "threshold": 4.0}}
    )


@pytest.fixture
def server(run: Path, tmp_path: Path):
    s = Server(run, f"sqlite:///{tmp_path / 'fb.db'}", tmp_path / "server.log")
    s.wait_ready()
    yield s
    s.stop()


def test_endpoints_over_real_http(server: Server) -> None:
    c = httpx.Client(base_url=server.url, timeout=10)
    assert c.get("/health").json() == {"status": "ok"}
    assert c.get("/ready").json()["default"] == BEST
    rec = c.get("/users/1/recommendations", params={"k": 5}).json()
    assert len(rec["items"]) == 5 and rec["fallback"] is None
    assert (
        c.post(
            "/users/1/ratings", json={"movieId": rec["items"][0]["movieId"], "rating": 5}
        ).status_code
        == 201
    )
    after = c.get("/users/1/recommendations", params={"k": 5}).json()
    assert rec["items"][0]["movieId"] not in [m["movieId"] for m in after["items"]]
    sid = c.post("/sessions").json()["session_id"]
    assert c.post(f"/sessions/{sid}/ratings", json={"movieId": 7, "rating": 5}).status_code == 201
    assert c.get(f"/sessions/{sid}/recommendations", params={"favorite": 17}).json()["items"]
    assert c.get("/movies/search", params={"q": "movie 3"}).json()["items"][0]["movieId"] == 37
    assert c.get("/movies/37/similar", params={"kind": "hybrid"}).json()["items"]
    assert "movierec_requests_total" in c.get("/metrics").text
    assert c.get("/").status_code == 200


def test_sighup_reloads_the_same_path(run: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    s = Server(copy, f"sqlite:///{tmp_path / 'fb.db'}", tmp_path / "server.log")
    try:
        v1 = {m["label"]: m["version"] for m in s.wait_ready()["models"]}
        # retrain ease with another l2 into the same folder (atomically replaced)
        save(make_model("ease", l2=50.0, threshold=4.0).fit(train_data()),
             copy / "models" / "ease", train=train_data(), extra={"label": "ease"})  # fmt: skip
        os.kill(s.proc.pid, signal.SIGHUP)
        for _ in range(100):
            v2 = {m["label"]: m["version"] for m in httpx.get(s.url + "/ready").json()["models"]}
            if v2["ease"] != v1["ease"]:
                break
            time.sleep(0.1)
        assert v2["ease"] != v1["ease"] and v2["popularity"] == v1["popularity"]
        # a bad artifact: SIGHUP is refused, the old model keeps serving
        (copy / "models" / "ease" / "arrays.npz").write_bytes(b"garbage")
        os.kill(s.proc.pid, signal.SIGHUP)
        time.sleep(1.5)
        assert s.proc.poll() is None
        v3 = {m["label"]: m["version"] for m in httpx.get(s.url + "/ready").json()["models"]}
        assert v3 == v2
        assert httpx.get(s.url + "/users/1/recommendations").status_code == 200
        assert "reload on SIGHUP refused" in s.log.read_text()
    finally:
        s.stop()


def test_sigkill_mid_load_keeps_every_acknowledged_write(run: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fb.db'}"
    s = Server(run, db, tmp_path / "server.log")
    s.wait_ready()
    acked: list[tuple[int, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def post(t: int) -> None:
        c = httpx.Client(base_url=s.url, timeout=5)
        n = 0
        while not stop.is_set():
            user, movie = 1000 + t, [7, 17, 27, 37, 47, 57, 67, 77][n % 8]
            key = f"{t}-{n}"
            try:
                r = c.post(f"/users/{user}/ratings", json={"movieId": movie, "rating": 4},
                           headers={"Idempotency-Key": key})  # fmt: skip
            except httpx.HTTPError:
                break
            if r.status_code == 201:
                with lock:
                    acked.append((user, key))
            n += 1

    threads = [threading.Thread(target=post, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    while len(acked) < 100:
        time.sleep(0.05)
    s.stop(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join(10)
    assert s.proc.returncode == -signal.SIGKILL
    s2 = Server(run, db, tmp_path / "server2.log")
    try:
        s2.wait_ready()
        with sqlite3.connect(tmp_path / "fb.db") as con:
            keys = {k for (k,) in con.execute("SELECT idempotency_key FROM ratings")}
        assert len(acked) >= 100 and {k for _, k in acked} <= keys
        h = httpx.get(s2.url + f"/users/{acked[0][0]}/history").json()["items"]
        assert h and h[0]["source"] == "feedback"
    finally:
        s2.stop()


def test_two_workers(run: Path, tmp_path: Path) -> None:
    s = Server(run, f"sqlite:///{tmp_path / 'fb.db'}", tmp_path / "server.log", workers=2)
    try:
        s.wait_ready()  # one worker is ready; the other may still be loading (503)
        ready: set[str] = set()
        end = time.monotonic() + 90
        while len(ready) < 2:  # fresh connections until both workers say they are ready
            assert time.monotonic() < end, s.log.read_text()
            lines = httpx.get(s.url + "/metrics", timeout=10).text.splitlines()
            ready |= {x.split('worker="')[1].split('"')[0] for x in lines
                      if x.startswith("movierec_ready{") and float(x.split()[-1]) == 1}  # fmt: skip
        c = httpx.Client(base_url=s.url, timeout=10)
        top = [m["movieId"] for m in c.get("/users/2/recommendations").json()["items"]]
        assert c.post("/users/2/ratings", json={"movieId": top[0], "rating": 5}).status_code == 201
        # whichever worker answers, the new rating is seen (the cache checks the store)
        for _ in range(6):
            got = [m["movieId"] for m in c.get("/users/2/recommendations").json()["items"]]
            assert top[0] not in got
        # /metrics sums the workers' requests, whichever worker answers the scrape
        for _ in range(20):
            c.get("/users/3/recommendations")
        route = 'route="/users/{userId}/recommendations",status="200"'
        workers = set()
        for _ in range(8):
            text = c.get("/metrics").text
            line = next(x for x in text.splitlines() if x.startswith("movierec_requests_total")
                        and route in x)  # fmt: skip
            assert float(line.split()[-1]) == 27
            workers |= {x.split('worker="')[1].split('"')[0] for x in text.splitlines()
                        if x.startswith("movierec_ready{")}  # fmt: skip
        assert workers  # the engine's own figures name the worker that answered
    finally:
        s.stop()


def test_eight_threads_of_500_rating_posts_store_4000_rows(server: Server, tmp_path: Path) -> None:
    """8 threads x 500 POSTs over real HTTP, some replayed with the same Idempotency-Key."""
    errors: list[int] = []

    def post(t: int) -> None:
        c = httpx.Client(base_url=server.url, timeout=30)
        for n in range(500):
            body = {"movieId": [7, 17, 27, 37][n % 4], "rating": 0.5 + (n % 10) / 2}
            head = {"Idempotency-Key": f"k{t}-{n}"}
            r = c.post(f"/users/{2000 + t}/ratings", json=body, headers=head)
            if r.status_code != 201:
                errors.append(r.status_code)
            if n % 50 == 0:  # a client retry: stored once
                again = c.post(f"/users/{2000 + t}/ratings", json=body, headers=head)
                if again.status_code not in (200, 201):
                    errors.append(again.status_code)

    threads = [threading.Thread(target=post, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert errors == []
    with sqlite3.connect(tmp_path / "fb.db") as con:
        (n,) = con.execute("SELECT COUNT(*) FROM ratings").fetchone()
        (users,) = con.execute("SELECT COUNT(DISTINCT user_id) FROM ratings").fetchone()
    assert n == 4000 and users == 8
