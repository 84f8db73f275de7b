"""Download, verify and cache MovieLens releases.

Cache layout (the only place that knows it)::

    home()/                           $MOVIEREC_HOME or ~/.cache/movierec
        ml-25m/ml-25m/ratings.csv     home()/NAME/FOLDER/..., FOLDER = the zip's top folder
        ml-10m/ml-10M100K/ratings.dat
        ml-100k-recbole/ml-100k-recbole/ml-100k.inter   the PyPI mirror of ml-100k
        parsed/                       reserved for parsed data (not written here)
        .tmp-PID-*                    in-flight downloads and extractions, removed on exit
                                      (and by the next fetch if that process was killed)

A cache entry appears only through ``os.replace`` of a fully extracted temp folder, so
``home()/NAME/FOLDER`` existing means the release is complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import IO, Any

from movierec import __version__
from movierec.atomic import check_interrupt
from movierec.errors import FetchError, SourceUnreachableError

__all__ = [
    "DEFAULT_BASE_URL",
    "MIRROR_FOLDER",
    "RECBOLE_WHEEL",
    "RECBOLE_WHEEL_SHA256",
    "RELEASES",
    "Release",
    "fetch",
    "home",
    "list_releases",
    "release_dir",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens/"

# The real MovieLens 100K, as RecBole atomic files inside this pinned wheel from PyPI.
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_MEMBERS = {
    "recbole/dataset_example/ml-100k/ml-100k.inter": "ml-100k.inter",
    "recbole/dataset_example/ml-100k/ml-100k.item": "ml-100k.item",
    "recbole/dataset_example/ml-100k/ml-100k.user": "ml-100k.user",
}
MIRROR_FOLDER = "ml-100k-recbole"
PIP_TIMEOUT_S = 600.0

_TMP_PREFIX = ".tmp-"
_CHUNK = 1 << 20
_MD5_RE = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])")


@dataclass(frozen=True)
class Release:
    """One MovieLens release as published by GroupLens.

    Attributes
    ----------
    name : str
        Release name, e.g. ``"ml-25m"``.
    folder : str
        The top folder inside the zip, e.g. ``"ml-10M100K"`` for ``ml-10m``.
    size : str
        Approximate size of the zip, for display.
    description : str
        One line on what the release holds.
    """

    name: str
    folder: str
    size: str
    description: str

    @property
    def url(self) -> str:
        """URL of the zip on files.grouplens.org."""
        return f"{DEFAULT_BASE_URL}{self.name}.zip"

    @property
    def md5_url(self) -> str:
        """URL of the zip's md5 file on files.grouplens.org."""
        return f"{self.url}.md5"


RELEASES: dict[str, Release] = {
    r.name: r
    for r in (
        Release(
            "ml-100k",
            "ml-100k",
            "5 MB",
            "100,000 ratings from 943 users on 1,682 movies, with user demographics (1998)",
        ),
        Release(
            "ml-1m",
            "ml-1m",
            "6 MB",
            "1,000,209 ratings from 6,040 users on 3,706 movies, with user demographics (2003)",
        ),
        Release(
            "ml-10m",
            "ml-10M100K",
            "63 MB",
            "10,000,054 ratings and 95,580 tags from 69,878 users on 10,677 movies (2009)",
        ),
        Release(
            "ml-20m",
            "ml-20m",
            "190 MB",
            "20,000,263 ratings and 465,564 tags from 138,493 users on 27,278 movies (2015)",
        ),
        Release(
            "ml-25m",
            "ml-25m",
            "250 MB",
            "25,000,095 ratings and 1,093,360 tags from 162,541 users on 62,423 movies (2019)",
        ),
        Release(
            "ml-32m",
            "ml-32m",
            "240 MB",
            "32,000,204 ratings and 2,000,072 tags from 200,948 users on 87,585 movies (2023)",
        ),
        Release(
            "ml-latest",
            "ml-latest",
            "335 MB",
            "all current ratings and tags; changes over time, not for reproducible results",
        ),
        Release(
            "ml-latest-small",
            "ml-latest-small",
            "1 MB",
            "about 100,000 ratings from 610 users on 9,700 movies; changes over time",
        ),
    )
}


class _SourceUnavailable(SourceUnreachableError):
    """The source could not be reached or would not serve the file (a mirror may help)."""


# ---------------------------------------------------------------------------- cache layout


def home() -> Path:
    """Return the cache folder, creating it if needed.

    Returns
    -------
    Path
        ``$MOVIEREC_HOME`` if set, else ``~/.cache/movierec``.
    """
    env = os.environ.get("MOVIEREC_HOME")
    path = Path(env).expanduser() if env else Path.home() / ".cache" / "movierec"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(
            f"cannot create the cache folder {path}: {e.strerror or e}; "
            "set MOVIEREC_HOME to a writable folder"
        ) from e
    return path.resolve()


def _entry(key: str) -> Path:
    """Folder that one cache entry is renamed into: ``home()/KEY``."""
    return home() / key


def _cached(key: str, folder: str) -> Path | None:
    """The data folder of a cache entry, or None when it is not (completely) cached."""
    path = _entry(key) / folder
    return path if path.is_dir() else None


def _release(name: str) -> Release:
    try:
        return RELEASES[name]
    except KeyError:
        known = ", ".join(RELEASES)
        raise FetchError(f"unknown MovieLens release {name!r}; known releases: {known}") from None


def release_dir(name: str) -> Path | None:
    """Return the extracted folder of a cached release.

    Parameters
    ----------
    name : str
        A key of `RELEASES`.

    Returns
    -------
    Path or None
        The folder holding the release's files, or None if it is not cached. For
        ``ml-100k`` this is the GroupLens folder if cached, else the PyPI mirror folder
        (RecBole atomic files ``ml-100k.inter``, ``.item``, ``.user``).

    Raises
    ------
    FetchError
        If `name` is not a known release.
    """
    release = _release(name)
    path = _cached(release.name, release.folder)
    if path is None and release.name == "ml-100k":
        path = _cached(MIRROR_FOLDER, MIRROR_FOLDER)
    return path


def list_releases() -> list[dict]:
    """Describe every known release and whether it is cached.

    Returns
    -------
    list of dict
        One dict per release with keys ``name``, ``description``, ``size``, ``url``,
        ``cached`` (bool), ``path`` (str or None) and ``source`` (``"grouplens"``,
        ``"pypi:recbole==1.2.1"`` or None).
    """
    rows = []
    for release in RELEASES.values():
        path = release_dir(release.name)
        source = None
        if path is not None:
            source = "grouplens" if path.name == release.folder else f"pypi:{RECBOLE_REQUIREMENT}"
        rows.append(
            {
                "name": release.name,
                "description": release.description,
                "size": release.size,
                "url": release.url,
                "cached": path is not None,
                "path": str(path) if path is not None else None,
                "source": source,
            }
        )
    return rows


# ---------------------------------------------------------------------------- fetch


def fetch(
    name: str,
    *,
    base_url: str | None = None,
    mirror: bool = True,
    progress: bool = False,
    timeout: float = 30.0,
) -> Path:
    """Return the folder of the release's files, downloading it first if not cached.

    The zip and its ``.md5`` are downloaded from `base_url`, the md5 is checked, and the
    zip is extracted atomically into ``home()/NAME/``. Nothing partial is left behind on
    failure.

    Parameters
    ----------
    name : str
        A key of `RELEASES`, e.g. ``"ml-25m"``.
    base_url : str, optional
        Folder URL holding ``NAME.zip`` and ``NAME.zip.md5`` (your own mirror, or a
        ``file://`` folder). Defaults to ``$MOVIEREC_BASE_URL``, else GroupLens.
    mirror : bool, default True
        For ``ml-100k`` only: if the base URL cannot be reached, get the data from the
        ``recbole==1.2.1`` wheel on PyPI (via ``pip download``; the wheel's sha256 is
        pinned, recbole is never installed). With False, a cached mirror copy is ignored
        too and only the GroupLens files are returned.
    progress : bool, default False
        Show a progress bar on stderr while downloading.
    timeout : float, default 30.0
        Seconds to wait on each network operation.

    Returns
    -------
    Path
        The release's folder, e.g. ``home()/ml-25m/ml-25m``.

    Raises
    ------
    FetchError
        Unknown name; source unreachable (and no usable mirror); checksum mismatch;
        truncated or corrupt zip; unsafe paths in the zip.
    """
    release = _release(name)
    cached = release_dir(name) if mirror else _cached(release.name, release.folder)
    if cached is not None:
        return cached
    _remove_stale_temps()
    base = base_url or os.environ.get("MOVIEREC_BASE_URL") or DEFAULT_BASE_URL
    try:
        return _fetch_zip(release, base, progress=progress, timeout=timeout)
    except _SourceUnavailable as primary:
        if not (mirror and release.name == "ml-100k"):
            raise
        note = f"{primary}; trying the PyPI mirror ({RECBOLE_REQUIREMENT})"
        if progress:
            _console().print(note, markup=False, highlight=False)
        else:
            logger.warning(note)
        try:
            return _fetch_mirror(timeout=timeout)
        except FetchError as second:
            message = (
                f"could not fetch ml-100k from either source: {primary}; "
                f"PyPI mirror ({RECBOLE_REQUIREMENT}): {second}"
            )
            # pip failing to download counts as unreachable too; a bad wheel does not
            unreachable = "checksum mismatch" not in str(second)
            kind = SourceUnreachableError if unreachable else FetchError
            raise kind(" ".join(message.split())) from second


def _fetch_zip(release: Release, base: str, *, progress: bool, timeout: float) -> Path:
    """Download, verify and extract one release zip from `base`."""
    url = base.rstrip("/") + f"/{release.name}.zip"
    md5_text = _get_text(f"{url}.md5", release, timeout)
    expected = _parse_md5(md5_text, release.name)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f"{_TMP_PREFIX}{os.getpid()}-{release.name}-", suffix=".zip", dir=home()
    )
    tmp_zip = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            actual = _download(url, out, release, timeout=timeout, progress=progress)
        if actual != expected:
            raise FetchError(
                f"checksum mismatch for {release.name} from {url}: "
                f"expected md5 {expected}, got {actual}; the download is corrupt or was "
                "tampered with, try again or use another mirror"
            )
        return _install_zip(tmp_zip, release)
    finally:
        tmp_zip.unlink(missing_ok=True)


def _parse_md5(text: str, name: str) -> str:
    """Pull the digest out of a GroupLens ``.md5`` file.

    Accepts ``DIGEST``, ``DIGEST  NAME.zip`` and the BSD ``MD5 (NAME.zip) = DIGEST``.
    """
    digests = {d.lower() for d in _MD5_RE.findall(text)}
    if len(digests) != 1:
        raise FetchError(
            f"the md5 file for {name} is not understood (expected one md5 hex digest, "
            f"got {text.strip()[:80]!r})"
        )
    return digests.pop()


def _open(url: str, release: Release, timeout: float) -> Any:
    try:
        request = urllib.request.Request(url, headers={"User-Agent": f"movierec/{__version__}"})
        return urllib.request.urlopen(request, timeout=timeout)
    except ValueError as e:
        raise FetchError(f"cannot download {release.name}: bad URL {url!r} ({e})") from e
    except urllib.error.HTTPError as e:
        raise _SourceUnavailable(
            f"cannot download {release.name}: {url} answered HTTP {e.code} {e.reason}"
        ) from e
    except urllib.error.URLError as e:
        raise _SourceUnavailable(
            f"cannot download {release.name}: {url} is unreachable ({e.reason})"
        ) from e
    except (HTTPException, OSError) as e:
        raise _SourceUnavailable(
            f"cannot download {release.name}: {url} is unreachable ({e})"
        ) from e


def _get_text(url: str, release: Release, timeout: float) -> str:
    with _open(url, release, timeout) as response:
        try:
            data = response.read(1 << 16)
        except (HTTPException, OSError) as e:
            raise _SourceUnavailable(f"cannot download {release.name}: {url} failed ({e})") from e
    return data.decode("ascii", errors="replace")


def _download(url: str, out: IO[bytes], release: Release, *, timeout: float, progress: bool) -> str:
    """Stream `url` into `out`; return the md5 hex digest of what was received."""
    md5 = hashlib.md5()
    received = 0
    with _open(url, release, timeout) as response:
        length_header = response.headers.get("Content-Length")
        expected = int(length_header) if length_header and length_header.isdigit() else None
        bar = _progress_bar(release.name, expected) if progress else None
        try:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (HTTPException, OSError) as e:
                    # A stalled or reset connection is a network problem: a mirror may help.
                    raise _SourceUnavailable(
                        f"download of {release.name} from {url} was interrupted after "
                        f"{received:,} bytes ({e}); try again"
                    ) from e
                if not chunk:
                    break
                _write(out, chunk, release)
                md5.update(chunk)
                received += len(chunk)
                if bar is not None:
                    bar(len(chunk))
        finally:
            if bar is not None:
                bar(None)
    if expected is not None and received != expected:
        raise FetchError(
            f"download of {release.name} from {url} is truncated: got {received:,} of "
            f"{expected:,} bytes; try again"
        )
    return md5.hexdigest()


def _write(out: IO[bytes], chunk: bytes, release: Release) -> None:
    try:
        out.write(chunk)
    except OSError as e:
        raise FetchError(
            f"cannot save the {release.name} download in {home()}: {e}; free some space "
            "or set MOVIEREC_HOME to another folder"
        ) from e


def _check_member_path(name: str, release_name: str) -> None:
    """Refuse zip entries that would land outside the extraction folder (zip-slip)."""
    posix = name.replace("\\", "/")
    parts = PurePosixPath(posix).parts
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix) or ".." in parts:
        raise FetchError(
            f"the {release_name} zip holds an unsafe path {name!r} (absolute or with '..'); "
            "refusing to extract it"
        )


def _install_zip(zip_path: Path, release: Release) -> Path:
    """Extract a verified zip into a temp folder, then rename it into the cache."""
    tmp_dir = Path(
        tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-{release.name}-", dir=home())
    )
    try:
        try:
            with zipfile.ZipFile(zip_path) as archive:
                members = archive.infolist()
                for info in members:
                    _check_member_path(info.filename, release.name)
                for info in members:
                    target = tmp_dir.joinpath(
                        *PurePosixPath(info.filename.replace("\\", "/")).parts
                    )
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(info) as src:
                        _write_synced(target, src)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
            raise FetchError(
                f"the {release.name} download is not a valid zip ({e}); try again"
            ) from e
        except OSError as e:
            raise FetchError(f"cannot extract {release.name} into {home()}: {e}") from e
        if not (tmp_dir / release.folder).is_dir():
            raise FetchError(
                f"the {release.name} zip has no top folder {release.folder!r}; "
                "is the base URL serving the right file?"
            )
        return _commit(tmp_dir, release.name, release.folder)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def _write_synced(target: Path, src: IO[bytes]) -> None:
    with open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
        dst.flush()
        os.fsync(dst.fileno())


def _commit(tmp_dir: Path, key: str, folder: str) -> Path:
    """Atomically move a complete temp folder to ``home()/KEY``; return its data folder."""
    final = _entry(key)
    if final.exists() and _cached(key, folder) is None:
        # An entry without its data folder is not ours to trust: replace it.
        _remove(final)
    check_interrupt()
    try:
        os.replace(tmp_dir, final)
    except OSError:
        # Another process finished the same release first; use its copy.
        done = _cached(key, folder)
        if done is None:
            raise
        return done
    _fsync_dir(final.parent)
    return final / folder


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_stale_temps() -> None:
    """Remove temp files and folders left by a process that was killed mid-fetch (its pid
    is gone, or they were not touched for an hour)."""
    from movierec.atomic import clean_stale

    clean_stale(home(), _TMP_PREFIX)


# ---------------------------------------------------------------------------- mirror


def _pip_download(dest: Path, timeout: float) -> Path:
    """Download the pinned recbole wheel into `dest` with pip; return its path."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--quiet",
        "--disable-pip-version-check",
        "--timeout",
        str(max(1, round(timeout))),
        RECBOLE_REQUIREMENT,
        "-d",
        str(dest),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        raise FetchError(f"pip download did not finish in {PIP_TIMEOUT_S:.0f} s") from e
    except OSError as e:
        raise FetchError(f"cannot run pip ({e})") from e
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")]
        detail = (errors or lines or [f"exit status {proc.returncode}"])[-1]
        raise FetchError(f"pip download failed: {detail}")
    wheel = dest / RECBOLE_WHEEL
    if not wheel.is_file():
        raise FetchError(f"pip download did not produce {RECBOLE_WHEEL}")
    return wheel


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_mirror(*, timeout: float) -> Path:
    """Get ml-100k from the pinned recbole wheel on PyPI into the cache."""
    tmp_dir = Path(
        tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-{MIRROR_FOLDER}-", dir=home())
    )
    try:
        download_dir = tmp_dir / "wheel"
        download_dir.mkdir()
        wheel = _pip_download(download_dir, timeout)
        actual = _sha256(wheel)
        if actual != RECBOLE_WHEEL_SHA256:
            raise FetchError(
                f"checksum mismatch for {RECBOLE_WHEEL}: expected sha256 "
                f"{RECBOLE_WHEEL_SHA256}, got {actual}"
            )
        entry = tmp_dir / "entry"
        data = entry / MIRROR_FOLDER
        data.mkdir(parents=True)
        try:
            with zipfile.ZipFile(wheel) as archive:
                for member, filename in RECBOLE_MEMBERS.items():
                    with archive.open(member) as src:
                        _write_synced(data / filename, src)
        except (zipfile.BadZipFile, KeyError) as e:
            raise FetchError(f"{RECBOLE_WHEEL} does not hold the ml-100k files ({e})") from e
        except OSError as e:
            raise FetchError(f"cannot extract ml-100k into {home()}: {e}") from e
        return _commit(entry, MIRROR_FOLDER, MIRROR_FOLDER)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


# ---------------------------------------------------------------------------- progress


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _progress_bar(name: str, total: int | None) -> Callable[[int | None], None]:
    """Start a rich download bar; call with a byte count to advance, None to stop."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=_console(),
    )
    task = bar.add_task(name, total=total)
    bar.start()

    def update(n: int | None) -> None:
        if n is None:
            bar.stop()
        else:
            bar.advance(task, n)

    return update
