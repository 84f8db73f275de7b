"""The `movierec data ...` and `movierec demo` commands, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

_EXE = Path(sys.executable).with_name("movierec")
CMD = [str(_EXE)] if _EXE.exists() else [sys.executable, "-m", "movierec.cli"]

RATINGS = (
    b"userId,movieId,rating,timestamp\n"
    b"1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,3.0,1445714835\n3,5,0.5,1306463578\n"
)
MOVIES = b'movieId,title,genres\n1,Toy Story (1995),Animation\n3,"Grumpier Old Men, The (1995)",Comedy\n5,Heat (1995),Action\n'


def movierec(
    *args: str, home: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if home is not None:
        env["MOVIEREC_HOME"] = str(home)
    return subprocess.run(
        [*CMD, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def one_line_error(r: subprocess.CompletedProcess, *words: str) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "ml-latest-small"
    d.mkdir()
    (d / "ratings.csv").write_bytes(RATINGS)
    (d / "movies.csv").write_bytes(MOVIES)
    return d


def test_data_info_text(folder: Path, tmp_path: Path) -> None:
    r = movierec("data", "info", str(folder), home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    lines: dict[str, str] = {}
    for ln in out.splitlines():
        if ln.strip():
            lines.setdefault(
                ln.split()[0], ln
            )  # first line of each label ("ratings", not "ratings per user")
    assert lines["users"].split()[1] == "3"
    assert lines["movies"].split()[1] == "3"
    assert lines["ratings"].split()[1] == "4"
    assert "44.4444%" in lines["density"]  # 4 / (3 x 3)
    assert "ml-latest-small" in out


def test_data_info_json(folder: Path, tmp_path: Path) -> None:
    r = movierec("data", "info", str(folder), "--json", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert (st["users"], st["movies"], st["ratings"]) == (3, 3, 4)
    assert st["density"] == pytest.approx(4 / 9)
    assert st["rating_histogram"] == {"0.5": 1, "3": 1, "4": 1, "4.5": 1}
    assert st["synthetic"] is False


def test_data_info_missing_path(tmp_path: Path) -> None:
    r = movierec("data", "info", "/no/such", home=tmp_path / "home")
    one_line_error(r, "/no/such")


def test_data_info_bad_file(tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "ratings.csv").write_bytes(b"userId,movieId,rating,timestamp\n1,1,9,5\n")
    r = movierec("data", "info", str(d), home=tmp_path / "home")
    one_line_error(r, "out of range")
    assert not (tmp_path / "home" / "parsed").exists() or not any(
        (tmp_path / "home" / "parsed").iterdir()
    )


def test_data_list(tmp_path: Path) -> None:
    r = movierec("data", "list", home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    names = [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]
    for n in ("ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small"):
        assert n in names
    row = next(ln for ln in r.stdout.splitlines() if ln.split()[0] == "ml-25m")
    assert "cached" not in row.split()  # an empty home has nothing cached


def test_data_fetch_unknown_release(tmp_path: Path) -> None:
    r = movierec("data", "fetch", "ml-99", home=tmp_path / "home")
    line = one_line_error(r, "ml-99")
    assert "ml-25m" in line  # says which names exist
    assert not any(p for p in (tmp_path / "home").rglob("*") if p.name.startswith(".tmp"))


def test_no_command_and_bad_option_do_not_trace(tmp_path: Path) -> None:
    r = movierec("data", "info", home=tmp_path / "home")  # missing argument
    assert r.returncode != 0 and "Traceback" not in r.stderr
    r = movierec("data", "info", "x", "--nope", home=tmp_path / "home")
    assert r.returncode != 0 and "Traceback" not in r.stderr


def fixture_home() -> str | None:
    """The cache home the ml100k fixture uses (MOVIEREC_TEST_HOME, else the default)."""
    return os.environ.get("MOVIEREC_TEST_HOME") or os.environ.get("MOVIEREC_HOME")


def test_demo(ml100k) -> None:
    h = fixture_home()
    r = movierec("demo", home=Path(h) if h else None, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    out = r.stdout
    assert "split temporal_per_user" in out
    assert "pairs_train_validation=0, pairs_train_test=0, pairs_validation_test=0" in out
    parts = {
        ln.split()[0]: ln.split()
        for ln in out.splitlines()
        if ln.split()[:1] in (["train"], ["validation"], ["test"])
    }
    assert set(parts) == {"train", "validation", "test"}
    n = {k: int(v[1].replace(",", "")) for k, v in parts.items()}
    users = next(ln for ln in out.splitlines() if ln.startswith("users"))
    ratings = next(ln for ln in out.splitlines() if ln.startswith("ratings "))
    total = int(ratings.split()[1].replace(",", ""))
    assert sum(n.values()) == total
    if "(synthetic)" not in out:  # the real ml-100k, as the fixture sees it
        assert users.split()[1] == "943" and total == 100_000
        assert (n["validation"], n["test"]) == (943, 943 * 5)
