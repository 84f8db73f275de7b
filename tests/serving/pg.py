"""A throwaway PostgreSQL 15 cluster for tests: initdb and pg_ctl as the postgres user.

The cluster lives in a temporary folder owned by ``postgres``, listens on a free port on
127.0.0.1 only (its socket in that folder too) and is stopped by the postmaster's pid.
Without root or the PostgreSQL binaries the ``postgres`` fixture skips, except under CI
(the ``CI`` environment variable set), where that is a failure.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_BINARIES = ("initdb", "pg_ctl", "runuser")


def unavailable() -> str | None:
    """Why a cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "PostgreSQL tests need root (to run initdb/pg_ctl as the postgres user)"
    missing = [b for b in _BINARIES if shutil.which(b) is None]
    if missing:
        return f"PostgreSQL tests need {', '.join(missing)} on PATH"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "PostgreSQL tests need a 'postgres' system user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, timeout=60
    )


@dataclass
class Cluster:
    root: Path
    port: int
    pid: int
    _n = itertools.count()

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def new_database(self) -> str:
        """A fresh, empty database on this cluster; returns its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._n)}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown by the postmaster's pid, then remove the folder."""
        try:
            os.kill(self.pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 30
        while (self.data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if (self.data / "postmaster.pid").exists():
            os.kill(self.pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


def start() -> Cluster:
    """initdb a new cluster in a temporary folder and start it on a free port."""
    root = Path(tempfile.mkdtemp(prefix="movierec-pg-"))
    pg = pwd.getpwnam("postgres")
    os.chown(root, pg.pw_uid, pg.pw_gid)
    data, sock = root / "data", root / "sock"
    r = _as_postgres(
        "initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
        "--locale=C", "--no-sync",
    )  # fmt: skip
    if r.returncode:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {r.stderr.strip()}")
    _as_postgres("mkdir", str(sock))
    for _ in range(5):  # a free port can be taken between the probe and the start
        port = _free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
        r = _as_postgres(
            "pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "-t", "30", "-o", opts,
            "start",
        )  # fmt: skip
        if r.returncode == 0:
            pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
            return Cluster(root, port, pid)
    log = (root / "log").read_text()[-2000:] if (root / "log").exists() else r.stderr
    shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"pg_ctl start failed: {log.strip()}")


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """One PostgreSQL cluster for the test session (skipped where impossible, not in CI)."""
    reason = unavailable()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI is set: PostgreSQL tests must run)")
        pytest.skip(reason)
    cluster = start()
    try:
        yield cluster
    finally:
        cluster.stop()
