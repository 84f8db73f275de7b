"""The bad-input table (issue 11): hostile-but-honest commands, interruptions and faults.

Every case builds its input, runs the CLI (in-process through ``cli.main`` where that is
enough, in a subprocess for signals), and checks the exact exit code, the one-line message
(never a traceback), that nothing partial was left behind, and that the next correct
command still works.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from movierec import cli

DEAD_PID = 4_000_000  # above any pid_max: never a live process
UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: connection refused at once


# -- helpers ------------------------------------------------------------------------------------
def ratings_csv(n_users: int = 12, n_items: int = 24, bad: str | None = None) -> bytes:
    """A tiny ratings.csv; ``bad`` replaces the second data row."""
    rows = ["userId,movieId,rating,timestamp"]
    for u in range(1, n_users + 1):
        for i in range(1, n_items + 1):
            rows.append(f"{u},{i},{1 + (u * 7 + i * 3) % 9 / 2:g},{1_000_000 + u * 100 + i}")
    if bad is not None:
        rows[2] = bad
    return ("\n".join(rows) + "\n").encode()


MOVIES_CSV = b"movieId,title,genres\n" + b"".join(
    f"{i},Movie {i} (1999),Drama\n".encode() for i in range(1, 25)
)


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def run(*args: str) -> tuple[int, str, str]:
    """``movierec ARGS`` in this process: (exit code, stdout, stderr). A traceback escapes."""
    out, err = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["movierec", *args]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def fails(code: int, message: str, *args: str) -> str:
    """Run ``args``; assert the exit code and that stderr is one line holding ``message``."""
    rc, _, err = run(*args)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == code, (rc, err)
    assert "Traceback" not in err
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]
    return lines[0]


def ok(*args: str) -> str:
    rc, out, err = run(*args)
    assert rc == 0, err
    return out


def temps(folder: Path) -> list[str]:
    """Names of temp entries (staging folders and files) anywhere below ``folder``."""
    marks = (".tmp-", ".synth-", ".old-")
    return sorted(str(p) for p in folder.rglob(".*") if any(m in p.name for m in marks))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    h = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MOVIEREC_HOME", str(h))
        mp.setenv("MOVIEREC_BASE_URL", UNREACHABLE)
        yield h


@pytest.fixture(scope="module")
def good(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("good")
    return write(d, {"ratings.csv": ratings_csv(), "movies.csv": MOVIES_CSV})


def config(folder: Path, good: Path, extra: str = "", data: Path | None = None) -> Path:
    path = folder / "exp.yaml"
    path.write_text(
        f"dataset: ml-100k\ndata: {data or good}\nsynthetic_fallback: true\n"
        f"output: {folder / 'runs'}\nlearning_curve: {{enabled: false}}\n"
        "models:\n  pop: {model: popularity}\n  svd: {model: svd, params: {n_factors: 4}}\n" + extra
    )
    return path


@pytest.fixture(scope="module")
def artifact(good: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("art")
    ok("train", "--config", str(config(d, good)), "--model", "svd", "--out", str(d / "m"))
    return d / "m"


@contextlib.contextmanager
def mounted(path: Path, opts: str) -> Iterator[Path]:
    """A tmpfs at ``path`` (root only); skip where mounting is not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip() or r.returncode})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# -- the data table: `movierec data info FOLDER` ------------------------------------------------
LATIN1_MOVIES = "1::Amélie (2001)::Comedy|Romance\n2::Heat (1995)::Action\n".encode("latin-1")
DAT_RATINGS = b"1::1::5::978300760\n1::2::3::978302109\n2::1::4::978301968\n"
DATA_ERRORS = {
    "rating out of range names the file": (
        {"ratings.csv": ratings_csv(bad="1,2,7,1000102")},
        "ratings.csv: line 3 (row 2): rating 7 is out of range",
    ),
    "NaN rating": (
        {"ratings.csv": ratings_csv(bad="1,2,nan,1000102")},
        "ratings.csv: line 3 (row 2): rating nan is out of range",
    ),
    "two releases in one folder": (
        {"a/ratings.csv": ratings_csv(), "b/ratings.csv": ratings_csv(), "b/tags.csv": b"x"},
        "holds 2 MovieLens releases",
    ),
    "fractional user id": (
        {"ratings.csv": ratings_csv(bad="1.7,2,4,1000102")},
        "ratings.csv: line 3: column 'user' has '1.7', not an integer",
    ),
    "id beyond int64": (
        {"ratings.csv": ratings_csv(bad="99999999999999999999,2,4,1000102")},
        "column 'user' has '99999999999999999999', too large",
    ),
    "links.csv with a bad movieId": (
        {"ratings.csv": ratings_csv(), "links.csv": b"movieId,imdbId,tmdbId\n1,1,2\nx1,3,4\n"},
        "links.csv: line 3: column 'movieId' has a non-numeric value 'x1'",
    ),
    "malformed u.user": (
        {"u.data": b"1\t1\t5\t881250949\n", "u.item": b"", "u.user": b"1|24|M\n2|53|F\n"},
        "u.user: expected 5 '|'-separated fields",
    ),
    "RecBole .item without a title": (
        {
            "x.inter": b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t1\t4\t5\n",
            "x.item": b"item_id:token\tclass:token_seq\n1\tDrama\n",
        },
        "x.item: missing column(s) ['movie_title']",
    ),
    "wrong header shows the header found": (
        {"ratings.csv": b"user,item,rating,ts\n1,1,4,5\n"},
        "found 'user,item,rating,ts'",
    ),
    "bad movie id in movies.dat": (
        {"ratings.dat": DAT_RATINGS, "movies.dat": b"1::A (2001)::Drama\nx::B (1999)::War\n"},
        "movies.dat: line 2: movie id 'x' is not an integer",
    ),
}


@pytest.mark.parametrize("case", list(DATA_ERRORS))
def test_data_errors(case: str, home: Path, good: Path, tmp_path: Path) -> None:
    files, message = DATA_ERRORS[case]
    folder = write(tmp_path / "d", files)
    before = sorted(folder.rglob("*"))
    parsed = sorted((home / "parsed").glob("*")) if (home / "parsed").exists() else []
    fails(1, message, "data", "info", str(folder))
    assert sorted(folder.rglob("*")) == before  # nothing written next to the source
    after = sorted((home / "parsed").glob("*")) if (home / "parsed").exists() else []
    assert after == parsed and not temps(home)  # no cache entry, no temp folder
    assert "ratings" in ok("data", "info", str(good))


PATH_ERRORS = {
    "a CSV file as the data set": (lambda g: str(g / "ratings.csv"), "is a file, not a MovieLens"),
    "an empty path": (lambda g: "", "no data set given (an empty path)"),
    "an unknown ~user": (lambda g: "~nosuchuser-movierec/x", "cannot expand '~'"),
    "a missing folder": (lambda g: str(g / "nope"), "no such file or folder"),
}


@pytest.mark.parametrize("case", list(PATH_ERRORS))
def test_path_errors(case: str, good: Path) -> None:
    make, message = PATH_ERRORS[case]
    fails(1, message, "data", "info", make(good))
    ok("data", "info", str(good))


ACCEPTED = {
    "UTF-8 BOM and CRLF": {
        "ratings.csv": b"\xef\xbb\xbf" + ratings_csv().replace(b"\n", b"\r\n"),
        "movies.csv": b"\xef\xbb\xbf" + MOVIES_CSV.replace(b"\n", b"\r\n"),
    },
    "ml-1m with a UTF-8 movies.dat": {
        "ratings.dat": DAT_RATINGS,
        "movies.dat": "1::Amélie (2001)::Comedy|Romance\n2::Heat (1995)::Action\n".encode(),
        "users.dat": b"1::F::1::10::48067\n2::M::56::16::70072\n",
    },
    "latin-1 movies.dat without users.dat": {
        "ratings.dat": DAT_RATINGS,
        "movies.dat": LATIN1_MOVIES,
    },
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_accepted_variants(case: str, home: Path, tmp_path: Path) -> None:
    from movierec.data import load

    folder = write(tmp_path / "d", ACCEPTED[case])
    st = json.loads(ok("data", "info", str(folder), "--json"))
    assert st["ratings"] in (3, 288)
    titles = load(folder).movies["title"].to_list()
    assert "Amélie" in titles or "Movie 1" in titles, titles


def test_tampered_parsed_cache_is_rebuilt(home: Path, tmp_path: Path) -> None:
    folder = write(tmp_path / "d", {"ratings.csv": ratings_csv()})
    clean = json.loads(ok("data", "info", str(folder), "--json"))
    from movierec.data import _cache_dir

    entry = _cache_dir(folder)
    r = np.load(entry / "ratings.npy")
    r[0] = 7.0
    np.save(entry / "ratings.npy", r)
    assert json.loads(ok("data", "info", str(folder), "--json")) == clean
    r[0] = np.nan
    np.save(entry / "ratings.npy", r)
    assert json.loads(ok("data", "info", str(folder), "--json")) == clean
    assert np.load(entry / "ratings.npy").max() <= 5  # and the entry was rewritten


def test_stale_temps_are_removed(home: Path, good: Path, tmp_path: Path) -> None:
    """Leftovers of killed runs (dead pid, or an hour old) go; a live run's stay."""
    parsed = home / "parsed"
    parsed.mkdir(exist_ok=True)
    dead = parsed / f".tmp-{DEAD_PID}-abc"
    old = parsed / ".tmp-oldstyle"
    live = parsed / f".tmp-{os.getpid()}-live"
    for d in (dead, old, live):
        d.mkdir()
        (d / "ratings.npy").write_bytes(b"x" * 100)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    folder = write(tmp_path / "d", {"ratings.csv": ratings_csv()})
    ok("data", "info", str(folder))
    assert not dead.exists() and not old.exists() and live.exists()
    shutil.rmtree(live)
    synth_tmp = tmp_path / f".s.synth-{DEAD_PID}-x"
    art_tmp = tmp_path / f".m.tmp-{DEAD_PID}-x"
    fetch_tmp = home / f".tmp-{DEAD_PID}-ml-1m-x.zip"
    synth_tmp.mkdir()
    art_tmp.mkdir()
    fetch_tmp.write_bytes(b"x")
    ok("data", "synth", "--like", "ml-100k", "--scale", "0.02", "--out", str(tmp_path / "s"))
    ok(
        "train",
        "--config",
        str(config(tmp_path, good)),
        "--model",
        "pop",
        "--out",
        str(tmp_path / "m"),
    )
    fails(1, "ml-1m", "data", "fetch", "ml-1m")
    assert not synth_tmp.exists() and not art_tmp.exists() and not fetch_tmp.exists()


# -- configs, params and options ---------------------------------------------------------------
def test_bad_data_is_never_replaced_by_generated_data(good: Path, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad", {"ratings.csv": ratings_csv(bad="1,2,7,1000102")})
    cfg = config(tmp_path, good, data=bad)
    fails(1, "rating 7 is out of range", "train", "--config", str(cfg), "--model", "pop",
          "--out", str(tmp_path / "m"))  # fmt: skip
    assert not (tmp_path / "m").exists() and not (tmp_path / "runs").exists()
    ok(
        "train",
        "--config",
        str(config(tmp_path, good)),
        "--model",
        "pop",
        "--out",
        str(tmp_path / "m"),
    )


def test_fallback_when_no_source_is_reachable(tmp_path: Path) -> None:
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(
        f"dataset: ml-latest-small\nsynthetic_fallback: true\noutput: {tmp_path / 'runs'}\n"
        "models:\n  pop: {model: popularity}\n"
    )
    rc, out, err = run(
        "train", "--config", str(cfg), "--model", "pop", "--out", str(tmp_path / "m")
    )
    assert rc == 0, err
    assert "no source reachable for ml-latest-small" in err and "(synthetic)" in out


CONFIG_ERRORS = {
    "a key given twice": ("seed: 1\nseed: 2\n", [], "duplicate key 'seed'"),
    "n_factors: true": (
        "  bad: {model: svd, params: {n_factors: true}}\n",
        [],
        "models.bad.params.n_factors: expected an integer, got True",
    ),
    "l2 as a string via --set": (
        "  ease: {model: ease}\n",
        ["--set", "models.ease.params.l2=abc"],
        "models.ease.params.l2: expected a number, got 'abc'",
    ),
}


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_config_errors(case: str, good: Path, tmp_path: Path) -> None:
    extra, args, message = CONFIG_ERRORS[case]
    cfg = config(tmp_path, good)
    text = cfg.read_text()
    cfg.write_text(extra + text if case == "a key given twice" else text + extra)
    out = tmp_path / "m"
    fails(1, message, "train", "--config", str(cfg), "--model", "pop", "--out", str(out), *args)
    assert not out.exists()
    ok("train", "--config", str(config(tmp_path, good)), "--model", "pop", "--out", str(out))


def test_cv_params_errors(good: Path, tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("svd: {n_factors: 4}\nsvdd: {n_factors: 4}\n")
    fails(1, "unknown model(s) svdd", "cv", "--dataset", str(good), "--params", str(p))
    p.write_text("svd: {n_factors: 4}\nals: {n_factors: 4}\n")
    fails(1, "has params for als, not in --models svd", "cv", "--dataset", str(good),
          "--models", "svd", "--params", str(p))  # fmt: skip
    p.write_text("svd: {n_factors: true}\n")
    fails(1, "svd.params.n_factors: expected an integer", "cv", "--dataset", str(good),
          "--models", "svd", "--params", str(p))  # fmt: skip
    p.write_text("svd: {n_factors: 4, n_epochs: 2}\n")
    ok("cv", "--dataset", str(good), "--models", "svd", "--folds", "2", "--params", str(p))


@pytest.mark.parametrize("k", ["abc", "5,,10", "0"])
def test_evaluate_bad_k(k: str, good: Path) -> None:
    fails(
        1, f"-k {k!r}: give cut-offs as integers >= 1", "evaluate", "--dataset", str(good), "-k", k
    )


def test_recommend_id_beyond_int64(artifact: Path) -> None:
    big = "1180591620717411303424"
    fails(1, f"user {big} is not in this model's training data", "recommend", str(artifact),
          "--user", big)  # fmt: skip
    assert "top" in ok("recommend", str(artifact), "--user", "1")


def test_artifact_path_that_is_a_file(artifact: Path) -> None:
    fails(1, "is a file, not a movierec artifact folder", "recommend",
          str(artifact / "model.json"), "--user", "1")  # fmt: skip


def test_out_below_a_regular_file(good: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    cfg = config(tmp_path, good)
    fails(
        1,
        "f: ",
        "train",
        "--config",
        str(cfg),
        "--model",
        "pop",
        "--out",
        str(tmp_path / "f" / "m"),
    )
    assert (tmp_path / "f").read_text() == "x"
    ok("train", "--config", str(cfg), "--model", "pop", "--out", str(tmp_path / "m"))


def test_synth_refuses_a_non_empty_out_without_force(tmp_path: Path) -> None:
    out = write(tmp_path / "x", {"ratings.csv": b"mine\n", "movies.csv": b"mine\n"})
    args = ("data", "synth", "--like", "ml-100k", "--scale", "0.02", "--out", str(out))
    fails(1, "is not empty: choose a new --out, or pass --force", *args)
    assert (out / "ratings.csv").read_bytes() == b"mine\n"
    ok(*args, "--force")
    assert (out / "ratings.csv").read_bytes().startswith(b"userId,movieId")


def test_synth_too_big_says_how_big(tmp_path: Path) -> None:
    fails(1, "needs about", "data", "synth", "--like", "ml-25m", "--scale", "1000000",
          "--out", str(tmp_path / "x"))  # fmt: skip
    assert not (tmp_path / "x").exists() and not temps(tmp_path)


def test_tune_negative_timeout(good: Path, tmp_path: Path) -> None:
    fails(1, "--timeout must be a number of seconds > 0, got -1", "tune", "--config",
          str(config(tmp_path, good)), "--model", "svd", "--timeout", "-1")  # fmt: skip


# -- read-only places and a full disk (a tmpfs; needs root) -------------------------------------
def test_read_only_outputs(good: Path, artifact: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    with mounted(ro, "size=1m,ro"):
        cfg = config(tmp_path, good)
        msg = "Read-only file system; the file system is read-only"
        fails(1, msg, "train", "--config", str(cfg), "--model", "pop", "--out", str(ro / "m"))
        fails(1, msg, "evaluate", "--dataset", str(good), "--save-recs", str(ro / "r.csv"))
        fails(1, msg, "export", str(artifact), "--out", str(ro / "e"))
        fails(1, msg, "tune", "--config", str(cfg), "--model", "pop", "--trials", "1",
              "--out", str(ro / "t.yaml"))  # fmt: skip
    ok("train", "--config", str(cfg), "--model", "pop", "--out", str(tmp_path / "m"))


def test_read_only_home_only_disables_the_cache(tmp_path: Path, monkeypatch) -> None:
    folder = write(tmp_path / "d", {"ratings.csv": ratings_csv()})
    ro = tmp_path / "home"
    with mounted(ro, "size=1m,ro"):
        monkeypatch.setenv("MOVIEREC_HOME", str(ro))
        assert '"ratings": 288' in ok("data", "info", str(folder), "--json")


def test_full_disk_during_save(good: Path, tmp_path: Path) -> None:
    small = tmp_path / "small"
    cfg = config(tmp_path, good)
    with mounted(small, "size=16k"):
        (small / "filler").write_bytes(b"x" * 12 * 1024)
        fails(1, "No space left on device; the disk is full", "train", "--config", str(cfg),
              "--model", "svd", "--out", str(small / "m"))  # fmt: skip
        assert sorted(p.name for p in small.iterdir()) == ["filler"]  # no partial artifact
        (small / "filler").unlink()
    ok("train", "--config", str(cfg), "--model", "svd", "--out", str(tmp_path / "m"))


# -- signals (subprocesses) ---------------------------------------------------------------------
def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "movierec.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "NUMBA_NUM_THREADS": "1", **env},
    )


def stop_when(p: subprocess.Popen, ready: Callable[[], bool], sig: int, limit: float = 60) -> None:
    """Send ``sig`` as soon as ``ready()`` holds (or the process ends first)."""
    end = time.monotonic() + limit
    while p.poll() is None and time.monotonic() < end:
        if ready():
            p.send_signal(sig)
            break
        time.sleep(0.002)


def finish(p: subprocess.Popen) -> tuple[int, str]:
    _, err = p.communicate(timeout=120)
    return p.returncode, err.decode()


@pytest.fixture(scope="module")
def big(home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 500,000 generated ratings: slow enough to interrupt at chosen points."""
    out = tmp_path_factory.mktemp("big") / "b"
    ok("data", "synth", "--like", "ml-10m", "--scale", "0.05", "--out", str(out))
    return out


def test_sigint_synth(tmp_path: Path, home: Path) -> None:
    out = tmp_path / "x"
    env = {"MOVIEREC_HOME": str(home)}
    for delay in (1.0, "staged"):
        start = time.monotonic()
        p = spawn(["data", "synth", "--like", "ml-10m", "--scale", "0.2", "--out", str(out)], env)
        if delay == "staged":
            stop_when(p, lambda: bool(list(tmp_path.glob(".x.synth-*"))), signal.SIGINT)
        else:
            stop_when(p, lambda: time.monotonic() - start > delay, signal.SIGINT)  # noqa: B023
        rc, err = finish(p)
        assert rc == 130, err
        assert err.strip().splitlines()[-1] == "interrupted" and "Error" not in err
        assert not out.exists() and not temps(tmp_path)
    ok("data", "synth", "--like", "ml-100k", "--scale", "0.02", "--out", str(out))


def test_sigint_data_info_and_train(big: Path, home: Path, tmp_path: Path, good: Path) -> None:
    own = tmp_path / "home"
    p = spawn(["data", "info", str(big)], {"MOVIEREC_HOME": str(own)})
    stop_when(p, lambda: bool(list(own.glob("parsed/.tmp-*"))), signal.SIGINT)
    rc, err = finish(p)
    assert rc == 130 and err.strip() == "interrupted", err
    assert not temps(own) and not list(own.glob("parsed/b-*"))
    cfg = config(tmp_path, good, data=big)
    cfg.write_text(cfg.read_text() + "  long: {model: svd, params: {n_epochs: 500}}\n")
    p = spawn(["train", "--config", str(cfg), "--model", "long", "--out", str(tmp_path / "m")],
              {"MOVIEREC_HOME": str(home)})  # fmt: skip
    stop_when(p, lambda: bool(list(home.glob("parsed/b-*/meta.json"))), signal.SIGINT)
    time.sleep(0.5)  # inside the numba epochs by now
    rc, err = finish(p)
    assert rc == 130 and err.strip().splitlines()[-1] == "interrupted", err
    assert not (tmp_path / "m").exists() and not temps(tmp_path)


# -- SIGKILL at chosen points: nothing partial, the next run succeeds ----------------------------
def test_sigkill_first_parse(big: Path, tmp_path: Path) -> None:
    own = tmp_path / "home"
    env = {"MOVIEREC_HOME": str(own)}
    for ready in (lambda: bool(list(own.glob("parsed/.tmp-*"))),
                  lambda: bool(list(own.glob("parsed/.tmp-*/movies.parquet")))):  # fmt: skip
        p = spawn(["data", "info", str(big), "--json"], env)
        stop_when(p, ready, signal.SIGKILL)
        rc, _ = finish(p)
        assert rc == -signal.SIGKILL
        assert not list(own.glob("parsed/b-*"))  # no partial cache entry
    p = spawn(["data", "info", str(big), "--json"], env)
    rc, err = finish(p)
    assert rc == 0, err
    assert not temps(own)  # the killed runs' folders were removed


class _Slow(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.endswith(".md5"):
            data = hashlib.md5(self.body).hexdigest().encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        half = len(self.body) // 2
        self.wfile.write(self.body[:half])
        self.wfile.flush()
        if self.server.stall:  # type: ignore[attr-defined]
            time.sleep(30)
        self.wfile.write(self.body[half:])

    def log_message(self, *a: object) -> None:
        pass


def test_sigkill_fetch(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ml-latest-small/ratings.csv", ratings_csv())
        zf.writestr("ml-latest-small/movies.csv", MOVIES_CSV)
    _Slow.body = buf.getvalue()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    srv.stall = True  # type: ignore[attr-defined]
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    own = tmp_path / "home"
    env = {"MOVIEREC_HOME": str(own), "MOVIEREC_BASE_URL": f"http://127.0.0.1:{srv.server_port}/"}
    try:
        for ready in (lambda: own.exists(), lambda: bool(list(own.glob(".tmp-*.zip")))):
            p = spawn(["data", "fetch", "ml-latest-small"], env)
            stop_when(p, ready, signal.SIGKILL)
            assert finish(p)[0] == -signal.SIGKILL
            assert not (own / "ml-latest-small").exists()
        srv.stall = False  # type: ignore[attr-defined]
        p = spawn(["data", "fetch", "ml-latest-small"], env)
        rc, err = finish(p)
        assert rc == 0, err
        assert (own / "ml-latest-small" / "ml-latest-small" / "ratings.csv").is_file()
        assert not temps(own)
    finally:
        srv.shutdown()


def test_sigkill_train_and_compare(big: Path, good: Path, home: Path, tmp_path: Path) -> None:
    from movierec.artifacts import load

    env = {"MOVIEREC_HOME": str(home)}
    cfg = config(tmp_path, good)
    m = tmp_path / "m"
    ok("train", "--config", str(cfg), "--model", "pop", "--out", str(m))  # an artifact to replace
    for ready in (lambda: bool(list(tmp_path.glob(".m.tmp-*"))),
                  lambda: bool(list(tmp_path.glob(".m.old-*")))):  # fmt: skip
        p = spawn(["train", "--config", str(cfg), "--model", "svd", "--out", str(m)], env)
        stop_when(p, ready, signal.SIGKILL)
        finish(p)
        load(m) if m.exists() else None  # the old or the new artifact, whole
    p = spawn(["train", "--config", str(cfg), "--model", "svd", "--out", str(m)], env)
    assert finish(p)[0] == 0
    assert type(load(m)).__name__ == "SVD" and not temps(tmp_path)
    out = tmp_path / "c"
    p = spawn(["compare", "--config", str(cfg), "--out", str(out)], env)
    stop_when(p, lambda: bool(list(tmp_path.glob(".c.tmp-*"))), signal.SIGKILL)
    assert finish(p)[0] == -signal.SIGKILL
    assert not out.exists()
    p = spawn(["compare", "--config", str(cfg), "--out", str(out)], env)
    rc, err = finish(p)
    assert rc == 0, err
    assert (out / "results.json").is_file()
    assert not temps(tmp_path)  # the killed run's stage (a dead pid's) was removed
