"""Reading, fetching and generating MovieLens data."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from movierec.data.dataset import Dataset, IdMap, load_columnar, save_columnar
from movierec.data.formats import Source, expand_path, read
from movierec.errors import MovierecError

__all__ = ["Dataset", "IdMap", "load", "read"]


def _cache_dir(path: Path) -> Path:
    from movierec.data.fetch import home

    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return home() / "parsed" / f"{path.name}-{key}"


def load(
    name_or_path: str | os.PathLike,
    *,
    cache: bool = True,
    fetch: bool = True,
    synthetic: bool | None = None,
) -> Dataset:
    """Load a release by name (fetched and cached) or from a folder/.zip of any layout.

    The parsed data is cached as .npy + parquet under ``$MOVIEREC_HOME/parsed`` and reused
    while the source files keep their size and modification time and the cached files
    their checksums. A cache that cannot be written (read-only home) is skipped.
    """
    from movierec.data import fetch as fetch_mod

    text = str(name_or_path)
    if text in fetch_mod.RELEASES and not Path(text).exists():
        folder = fetch_mod.fetch(text) if fetch else fetch_mod.release_dir(text)
        if folder is None:
            from movierec.errors import DataError

            raise DataError(f"{text} is not cached; run `movierec data fetch {text}`")
        path, name = Path(folder), text
    else:
        path = expand_path(text)
        name = path.name
    src = Source(path)
    marker = path / ".movierec-synthetic"
    synth = synthetic if synthetic is not None else marker.exists()
    sig = [list(x) for x in src.signature()]
    target = None
    if cache:
        try:
            target = _cache_dir(path)
        except MovierecError:  # no usable cache folder: parse without caching
            target = None
    if target is not None:
        hit = load_columnar(target)
        if hit is not None and hit[1].get("signature") == sig:
            return hit[0]
    ds = read(path, name=name, synthetic=synth)
    if target is not None:
        try:
            save_columnar(ds, target, {"signature": sig})
        except OSError as e:
            logging.getLogger(__name__).warning("not caching the parsed data in %s: %s", target, e)
    return ds
