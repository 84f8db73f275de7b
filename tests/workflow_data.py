"""Test helpers for the workflow tests: the checkerboard written as a MovieLens folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from contract import checkerboard


def write_checkerboard(folder: Path) -> Path:
    """Write the contract's checkerboard as a MovieLens folder (ml-100k layout)."""
    from movierec.data.formats import _ML100K_GENRES

    full, _ = checkerboard()
    folder.mkdir(parents=True, exist_ok=True)
    u = full.user_map.to_raw(full.users)
    i = full.item_map.to_raw(full.items)
    rows = zip(u, i, full.ratings, full.timestamps, strict=True)
    (folder / "u.data").write_text("".join(f"{a}\t{b}\t{int(r)}\t{t}\n" for a, b, r, t in rows))
    m = full.movies
    lines = []
    for mid, title, year, g in zip(m["item"], m["title"], m["year"], m["genres"], strict=True):
        flags = "|".join("1" if name in g else "0" for name in _ML100K_GENRES)
        lines.append(f"{mid}|{title} ({year})|01-Jan-{year}||http://example.org|{flags}\n")
    (folder / "u.item").write_text("".join(lines))
    return folder


def write_config(path: Path, data: Path, models: dict[str, Any], **extra: Any) -> Path:
    """A config over the checkerboard folder: random holdout with a validation part."""
    cfg = {
        "dataset": "checkerboard",
        "data": str(data),
        "seed": 3,
        "output": str(path.parent / "runs"),
        "split": {"kind": "random_holdout", "test_fraction": 0.1, "val_fraction": 0.1},
        "metrics": {"k": [5, 10], "threshold": 4.0, "primary": "ndcg@10"},
        "models": models,
        **extra,
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


__all__ = ["write_checkerboard", "write_config"]
