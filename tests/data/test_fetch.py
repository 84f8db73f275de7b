"""Tests for movierec.data.fetch against a local HTTP server (no internet needed)."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from movierec.data import fetch as fetch_mod
from movierec.data.fetch import RELEASES, fetch, home, list_releases, release_dir
from movierec.errors import FetchError

SMALL = "ml-latest-small"
SMALL_FILES = {
    "ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n",
    "movies.csv": b"movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,Heat (1995),Action\n",
    "tags.csv": b"userId,movieId,tag,timestamp\n2,60756,funny,1445714994\n",
    "links.csv": b"movieId,imdbId,tmdbId\n1,0114709,862\n",
    "README.txt": b"Summary\n=======\n",
}


def make_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def release_zip(folder: str, files: dict[str, bytes]) -> bytes:
    return make_zip({f"{folder}/": b"", **{f"{folder}/{k}": v for k, v in files.items()}})


GOOD = release_zip(SMALL, SMALL_FILES)
ML100K = release_zip("ml-100k", {"u.data": b"196\t242\t3\t881250949\n"})


@dataclass
class Route:
    body: bytes
    content_length: int | None = None  # declared length, when it differs from len(body)
    stall: float = 0.0  # seconds to hang after sending half the body


@dataclass
class Server:
    base: str
    routes: dict[str, Route]
    requests: list[str] = field(default_factory=list)

    def url(self, prefix: str) -> str:
        return f"{self.base}/{prefix}/"

    def add(self, prefix: str, name: str, body: bytes, md5_text: str, **kw: float) -> None:
        self.routes[f"/{prefix}/{name}.zip"] = Route(body, **kw)  # type: ignore[arg-type]
        self.routes[f"/{prefix}/{name}.zip.md5"] = Route(md5_text.encode())


@pytest.fixture
def server() -> Iterator[Server]:
    routes: dict[str, Route] = {}
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            route = routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            length = route.content_length if route.content_length is not None else len(route.body)
            self.send_header("Content-Length", str(length))
            self.end_headers()
            if route.stall:
                self.wfile.write(route.body[: len(route.body) // 2])
                self.wfile.flush()
                time.sleep(route.stall)
                return
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    srv = Server(f"http://127.0.0.1:{httpd.server_address[1]}", routes, requests)

    srv.add("good", SMALL, GOOD, f"{md5(GOOD)}  {SMALL}.zip\n")
    srv.add("plain", SMALL, GOOD, md5(GOOD))
    srv.add("bsd", SMALL, GOOD, f"MD5 ({SMALL}.zip) = {md5(GOOD)}\n")
    srv.add("truncated", SMALL, GOOD[: len(GOOD) // 2], md5(GOOD), content_length=len(GOOD))
    half = GOOD[: len(GOOD) // 2]
    srv.add("badzip", SMALL, half, md5(half))
    srv.add("badmd5", SMALL, GOOD, f"{md5(b'something else')}  {SMALL}.zip\n")
    srv.add("garbledmd5", SMALL, GOOD, "<html>not found</html>")
    slip = make_zip({f"{SMALL}/ratings.csv": b"x\n", f"{SMALL}/../../../evil.txt": b"pwned\n"})
    srv.add("slip", SMALL, slip, md5(slip))
    absolute = make_zip({f"{SMALL}/ratings.csv": b"x\n", "/tmp/movierec-evil.txt": b"pwned\n"})
    srv.add("absolute", SMALL, absolute, md5(absolute))
    wrong = release_zip("something-else", SMALL_FILES)
    srv.add("nofolder", SMALL, wrong, md5(wrong))
    srv.add("ml100k", "ml-100k", ML100K, f"{md5(ML100K)}  ml-100k.zip\n")
    srv.add("stall", SMALL, GOOD, md5(GOOD), stall=0.6)
    srv.add("ml100k-stall", "ml-100k", ML100K, md5(ML100K), stall=0.6)
    srv.add("ml100k-badmd5", "ml-100k", ML100K, md5(b"other"))
    yield srv
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("MOVIEREC_HOME", str(path))
    monkeypatch.delenv("MOVIEREC_BASE_URL", raising=False)
    return path


@pytest.fixture
def dead_url() -> str:
    """A base URL on a local port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the PyPI mirror fail without running pip."""

    def fail(dest: Path, timeout: float) -> Path:
        raise FetchError("pip download failed: ERROR: No matching distribution found")

    monkeypatch.setattr(fetch_mod, "_pip_download", fail)


@pytest.fixture
def fake_wheel(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Serve a small stand-in for the recbole wheel and pin its sha256."""
    wheel = make_zip(
        {
            "recbole/__init__.py": b"",
            **{m: f"{f} header\n1\t2\n".encode() for m, f in fetch_mod.RECBOLE_MEMBERS.items()},
        }
    )
    calls: list[Path] = []

    def download(dest: Path, timeout: float) -> Path:
        calls.append(dest)
        path = dest / fetch_mod.RECBOLE_WHEEL
        path.write_bytes(wheel)
        return path

    monkeypatch.setattr(fetch_mod, "_pip_download", download)
    monkeypatch.setattr(fetch_mod, "RECBOLE_WHEEL_SHA256", hashlib.sha256(wheel).hexdigest())
    return calls


def assert_clean(path: Path) -> None:
    """No release folder, no temp file: the cache is as empty as before the fetch."""
    assert sorted(p.name for p in path.iterdir()) == []


# ---------------------------------------------------------------------------- releases


def test_releases_table() -> None:
    assert list(RELEASES) == [
        "ml-100k",
        "ml-1m",
        "ml-10m",
        "ml-20m",
        "ml-25m",
        "ml-32m",
        "ml-latest",
        "ml-latest-small",
    ]
    r = RELEASES["ml-10m"]
    assert r.folder == "ml-10M100K"
    assert r.url == "https://files.grouplens.org/datasets/movielens/ml-10m.zip"
    assert r.md5_url == r.url + ".md5"
    for name, rel in RELEASES.items():
        assert rel.name == name and rel.size and rel.description
    with pytest.raises(AttributeError):
        r.name = "x"  # type: ignore[misc]


def test_home_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOVIEREC_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert home() == (tmp_path / ".cache" / "movierec").resolve()
    assert home().is_dir()
    monkeypatch.setenv("MOVIEREC_HOME", str(tmp_path / "elsewhere"))
    assert home() == (tmp_path / "elsewhere").resolve() and home().is_dir()


def test_unknown_release(cache: Path) -> None:
    with pytest.raises(FetchError, match="ml-25m.*ml-latest-small"):
        fetch("ml-5m")
    with pytest.raises(FetchError, match="unknown MovieLens release 'ml-5m'"):
        release_dir("ml-5m")


@pytest.mark.parametrize(
    "text",
    [
        "0123456789abcdef0123456789ABCDEF",
        "0123456789abcdef0123456789abcdef  ml-1m.zip\n",
        "0123456789abcdef0123456789abcdef ml-1m.zip",
        "MD5 (ml-1m.zip) = 0123456789abcdef0123456789abcdef\n",
    ],
)
def test_parse_md5_formats(text: str) -> None:
    assert fetch_mod._parse_md5(text, "ml-1m") == "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize("text", ["", "nope", "0123 ml-1m.zip", "a" * 32 + "  " + "b" * 32])
def test_parse_md5_rejects(text: str) -> None:
    with pytest.raises(FetchError, match="md5 file for ml-1m"):
        fetch_mod._parse_md5(text, "ml-1m")


# ---------------------------------------------------------------------------- good download


@pytest.mark.parametrize("prefix", ["good", "plain", "bsd"])
def test_fetch_extracts_release(server: Server, cache: Path, prefix: str) -> None:
    path = fetch(SMALL, base_url=server.url(prefix))
    assert path == cache.resolve() / SMALL / SMALL
    assert {p.name for p in path.iterdir()} == set(SMALL_FILES)
    for name, data in SMALL_FILES.items():
        assert (path / name).read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == [SMALL]  # no temp leftovers
    assert release_dir(SMALL) == path


def test_second_fetch_uses_cache(server: Server, cache: Path) -> None:
    first = fetch(SMALL, base_url=server.url("good"))
    n = len(server.requests)
    assert n == 2  # .md5 then .zip
    assert fetch(SMALL, base_url=server.url("good")) == first
    assert fetch(SMALL, base_url="http://127.0.0.1:9/") == first
    assert len(server.requests) == n


def test_base_url_from_env(server: Server, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEREC_BASE_URL", server.url("good").rstrip("/"))
    assert (fetch(SMALL) / "ratings.csv").is_file()
    assert server.requests == [f"/good/{SMALL}.zip.md5", f"/good/{SMALL}.zip"]


def test_file_url_mirror(cache: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mirror"
    folder.mkdir()
    (folder / f"{SMALL}.zip").write_bytes(GOOD)
    (folder / f"{SMALL}.zip.md5").write_text(md5(GOOD))
    assert (fetch(SMALL, base_url=folder.as_uri()) / "movies.csv").is_file()


def test_progress_bar(server: Server, cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = fetch(SMALL, base_url=server.url("good"), progress=True)
    assert (path / "ratings.csv").is_file()
    assert SMALL in capsys.readouterr().err


def test_list_releases(server: Server, cache: Path) -> None:
    rows = {r["name"]: r for r in list_releases()}
    assert set(rows) == set(RELEASES)
    assert not rows[SMALL]["cached"] and rows[SMALL]["path"] is None
    assert set(rows[SMALL]) >= {"name", "description", "size", "cached", "path"}
    path = fetch(SMALL, base_url=server.url("good"))
    rows = {r["name"]: r for r in list_releases()}
    assert rows[SMALL]["cached"] and rows[SMALL]["path"] == str(path)
    assert rows[SMALL]["source"] == "grouplens"
    assert not rows["ml-25m"]["cached"]


def test_incomplete_entry_is_replaced(server: Server, cache: Path) -> None:
    (cache / SMALL).mkdir(parents=True)  # e.g. a user emptied it by hand
    assert release_dir(SMALL) is None
    assert (fetch(SMALL, base_url=server.url("good")) / "ratings.csv").is_file()


def test_stale_temps_removed(server: Server, cache: Path) -> None:
    cache.mkdir()
    old, new = cache / ".tmp-ml-1m-old.zip", cache / ".tmp-ml-1m-new.zip"
    old.write_bytes(b"x")
    new.write_bytes(b"x")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(old, (day_ago, day_ago))
    fetch(SMALL, base_url=server.url("good"))
    assert not old.exists() and new.exists()


# ---------------------------------------------------------------------------- bad downloads


@pytest.mark.parametrize(
    ("prefix", "message"),
    [
        ("truncated", "truncated: got"),
        ("badzip", "not a valid zip"),
        ("badmd5", "checksum mismatch for ml-latest-small"),
        ("garbledmd5", "md5 file for ml-latest-small is not understood"),
        ("slip", "unsafe path"),
        ("absolute", "unsafe path"),
        ("nofolder", "no top folder 'ml-latest-small'"),
        ("missing", "HTTP 404"),
    ],
)
def test_bad_download_leaves_nothing(
    server: Server, cache: Path, tmp_path: Path, prefix: str, message: str
) -> None:
    with pytest.raises(FetchError, match=message):
        fetch(SMALL, base_url=server.url(prefix))
    assert_clean(cache)
    assert release_dir(SMALL) is None
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/movierec-evil.txt").exists()


def test_md5_mismatch_names_digests(server: Server, cache: Path) -> None:
    with pytest.raises(FetchError) as info:
        fetch(SMALL, base_url=server.url("badmd5"))
    text = str(info.value)
    assert SMALL in text and md5(b"something else") in text and md5(GOOD) in text


def test_unreachable_without_mirror(cache: Path, dead_url: str) -> None:
    with pytest.raises(FetchError, match="unreachable"):
        fetch("ml-100k", base_url=dead_url, mirror=False)
    assert_clean(cache)


def test_no_mirror_for_other_releases(cache: Path, dead_url: str, fake_wheel: list[Path]) -> None:
    with pytest.raises(FetchError, match="unreachable"):
        fetch(SMALL, base_url=dead_url)
    assert fake_wheel == []
    assert_clean(cache)


def test_stalled_download(server: Server, cache: Path) -> None:
    with pytest.raises(FetchError, match="interrupted after"):
        fetch(SMALL, base_url=server.url("stall"), timeout=0.2)
    assert_clean(cache)


def test_bad_base_url(cache: Path) -> None:
    with pytest.raises(FetchError, match="bad URL"):
        fetch(SMALL, base_url="not a url")


# ---------------------------------------------------------------------------- ml-100k mirror


def test_mirror_when_unreachable(cache: Path, dead_url: str, fake_wheel: list[Path]) -> None:
    path = fetch("ml-100k", base_url=dead_url)
    assert path == cache.resolve() / "ml-100k-recbole" / "ml-100k-recbole"
    assert sorted(p.name for p in path.iterdir()) == [
        "ml-100k.inter",
        "ml-100k.item",
        "ml-100k.user",
    ]
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k-recbole"]
    assert release_dir("ml-100k") == path
    row = next(r for r in list_releases() if r["name"] == "ml-100k")
    assert row["cached"] and row["source"] == "pypi:recbole==1.2.1"
    # cached now: no second pip call
    assert fetch("ml-100k", base_url=dead_url) == path
    assert len(fake_wheel) == 1


def test_mirror_on_http_error(server: Server, cache: Path, fake_wheel: list[Path]) -> None:
    path = fetch("ml-100k", base_url=server.url("missing"))
    assert path.name == "ml-100k-recbole" and len(fake_wheel) == 1


def test_mirror_on_stalled_download(server: Server, cache: Path, fake_wheel: list[Path]) -> None:
    path = fetch("ml-100k", base_url=server.url("ml100k-stall"), timeout=0.2)
    assert path.name == "ml-100k-recbole" and len(fake_wheel) == 1
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k-recbole"]


def test_no_mirror_on_checksum_mismatch(
    server: Server, cache: Path, fake_wheel: list[Path]
) -> None:
    with pytest.raises(FetchError, match="checksum mismatch for ml-100k"):
        fetch("ml-100k", base_url=server.url("ml100k-badmd5"))
    assert fake_wheel == []
    assert_clean(cache)


def test_grouplens_copy_preferred(
    server: Server, cache: Path, dead_url: str, fake_wheel: list[Path]
) -> None:
    mirror = fetch("ml-100k", base_url=dead_url)
    # the mirror copy is served while present, unless the caller refuses mirrors
    assert fetch("ml-100k", base_url=server.url("ml100k")) == mirror
    grouplens = fetch("ml-100k", base_url=server.url("ml100k"), mirror=False)
    assert grouplens == cache.resolve() / "ml-100k" / "ml-100k"
    assert (grouplens / "u.data").is_file()
    assert release_dir("ml-100k") == grouplens


def test_both_sources_fail(cache: Path, dead_url: str, no_pip: None) -> None:
    with pytest.raises(FetchError) as info:
        fetch("ml-100k", base_url=dead_url)
    text = str(info.value)
    assert "\n" not in text
    assert "either source" in text and "unreachable" in text and "pip download failed" in text
    assert_clean(cache)


def test_mirror_wheel_sha_mismatch(
    cache: Path, dead_url: str, fake_wheel: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch_mod, "RECBOLE_WHEEL_SHA256", "0" * 64)
    with pytest.raises(FetchError, match="checksum mismatch for recbole-1.2.1"):
        fetch("ml-100k", base_url=dead_url)
    assert_clean(cache)


@pytest.fixture(scope="session")
def ml100k_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder kept for the session ($MOVIEREC_TEST_HOME if set)."""
    env = os.environ.get("MOVIEREC_TEST_HOME")
    return Path(env) if env else tmp_path_factory.mktemp("movierec-home")


@pytest.mark.slow
def test_real_mirror(ml100k_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOVIEREC_HOME", str(ml100k_home))
    path = fetch("ml-100k", base_url="http://127.0.0.1:9/", mirror=True)
    if path.name != fetch_mod.MIRROR_FOLDER:
        pytest.skip("GroupLens ml-100k is already cached in MOVIEREC_TEST_HOME")
    for name in ("ml-100k.inter", "ml-100k.item", "ml-100k.user"):
        assert (path / name).is_file()
    with open(path / "ml-100k.inter", "rb") as f:
        header = f.readline()
        assert header.startswith(b"user_id:token\titem_id:token\trating:float")
        assert 1 + sum(1 for _ in f) == 100_001
