"""Atomic file writes: write aside in the same folder, fsync, rename.

A reader sees the old file or the new one, never half of one; a failure (or Ctrl-C)
leaves no temporary file behind. Writers that need a file name (``np.save``,
``savefig``, polars) use :func:`atomic_path`; text and tables have shortcuts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

_interrupt = threading.Event()


def on_sigint(signum: int, frame: object) -> None:
    """SIGINT handler the CLI installs: remember the Ctrl-C, then raise it.

    CPython drops a KeyboardInterrupt raised inside a ctypes callback (numba's compiler
    runs some), and the command would go on; so every publishing rename below first
    calls :func:`check_interrupt`, and nothing appears after a Ctrl-C."""
    _interrupt.set()
    raise KeyboardInterrupt


def check_interrupt() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C came (even one that was swallowed)."""
    if _interrupt.is_set():
        raise KeyboardInterrupt


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed to it.

    The temporary name starts with a dot and keeps the suffix (some writers choose the
    format by it). On an exception the temporary file is removed and ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # named after this process, so a later write can tell a killed run's file is stale
    clean_stale(path.parent, f".{path.stem}.tmp-")
    prefix = f".{path.stem}.tmp-{os.getpid()}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        check_interrupt()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_bytes(path, text.encode(encoding))


def write_table(df: pl.DataFrame, path: str | os.PathLike, fmt: str) -> Path:
    """Write ``df`` as ``fmt`` ("csv" or "parquet") to ``path``; a failure leaves no file."""
    with atomic_path(path) as tmp:
        if fmt == "csv":
            df.write_csv(tmp)
        else:
            df.write_parquet(tmp)
    return Path(path)


# -- staging folders and what killed runs leave ---------------------------------------------------
STALE_S = 3600.0


def alive(pid: int) -> bool:
    """Whether a process with this pid exists (a zombie counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True


def clean_stale(parent: str | os.PathLike, prefix: str, max_age: float | None = STALE_S) -> None:
    """Remove temp entries ``parent/{prefix}*`` left by killed runs: those named after a
    process that is gone (``{prefix}{pid}-...``), and any not touched for ``max_age``
    seconds (None: only the dead processes')."""
    parent = Path(parent)
    cutoff = -1.0 if max_age is None else time.time() - max_age
    try:
        entries = [p for p in parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for p in entries:
        pid = p.name[len(prefix) :].split("-", 1)[0]
        try:
            dead = pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid))
            if dead or p.lstat().st_mtime < cutoff:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        except OSError:
            pass


def stage_dir(parent: str | os.PathLike, prefix: str, max_age: float | None = STALE_S) -> Path:
    """A new temp folder ``parent/{prefix}{pid}-XXXX`` (stale ones of that prefix removed
    first, see :func:`clean_stale`), to be renamed into place once complete."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    clean_stale(parent, prefix, max_age)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent))
