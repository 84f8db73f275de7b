"""The one formatter of text tables for the terminal (rich lays out the columns)."""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def text_table(
    rows: Sequence[Sequence[Any]],
    header: Sequence[str] | None = None,
    *,
    right: Collection[int] = (),
    indent: int = 0,
) -> str:
    """Plain-text table: columns two spaces apart, a dashed rule under the header.

    Parameters
    ----------
    rows : sequence of rows (cells are turned into text with ``str``)
    header : column names, or None for a table without header and rule
    right : indices of right-aligned columns (numbers); the others are left-aligned
    indent : spaces in front of every line

    Widths are measured in terminal cells, so wide characters (CJK titles) stay aligned;
    no colour, no markup, no wrapping, trailing spaces stripped. Empty ``rows`` without a
    header give "".
    """
    n = len(header) if header is not None else (len(rows[0]) if rows else 0)
    if n == 0:
        return ""
    t = Table(box=None, show_header=header is not None, pad_edge=False, padding=(0, 1))
    for j in range(n):
        t.add_column(
            "" if header is None else str(header[j]),
            justify="right" if j in right else "left",
            no_wrap=True,
        )
    for r in rows:
        t.add_row(*(str(c) for c in r))
    buf = io.StringIO()
    Console(
        file=buf,
        width=1 << 16,
        color_system=None,
        force_terminal=False,
        highlight=False,
        markup=False,
        emoji=False,
    ).print(t)
    lines = [ln.rstrip() for ln in buf.getvalue().splitlines()]
    if header is not None:
        lines.insert(1, "-" * max(len(ln) for ln in lines))
    pad = " " * indent
    return "\n".join(pad + ln for ln in lines)
