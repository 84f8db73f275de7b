"""Atomic file writes: write aside in the same folder, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import polars as pl


def write_table(df: pl.DataFrame, path: str | os.PathLike, fmt: str) -> Path:
    """Write ``df`` as ``fmt`` ("csv" or "parquet") to ``path``; a failure leaves no file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "csv":
            df.write_csv(tmp)
        else:
            df.write_parquet(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
