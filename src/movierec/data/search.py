"""Movie titles by (typo-tolerant) text: the CLI's ``--movie`` lookup and the API's search.

Titles are compared normalized: lower case, punctuation dropped, MovieLens' trailing
article moved to the front ("Godfather, The" -> "the godfather"). Fuzzy matching is
rapidfuzz's; among equally good matches the more often rated movie comes first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from movierec.data.dataset import IdMap
from movierec.data.formats import split_title
from movierec.errors import ConfigError, UnknownIdError

_ARTICLES = ("the", "a", "an", "les", "la", "le", "l'", "il", "el", "das", "der", "die")
_TRAILING = re.compile(r"^(.*),\s*(" + "|".join(re.escape(a) for a in _ARTICLES) + r")$")
_PUNCT = re.compile(r"[^\w\s]")


def normalize(title: str) -> str:
    """Lower case, punctuation as spaces, a trailing ", The" moved to the front."""
    t = title.lower().strip()
    m = _TRAILING.match(t)
    if m:
        t = f"{m[2]} {m[1]}"
    return " ".join(_PUNCT.sub(" ", t).split())


def _label(title: str | None, year: int | None) -> str:
    return f"{title or '(untitled)'}" + (f" ({year})" if year is not None else "")


class TitleIndex:
    """Normalized titles of a movie table (row i = item i) for fuzzy search.

    Parameters
    ----------
    titles : sequence of str
    years : sequence of int or None
    popularity : array, optional
        Tie-break among equal matches (e.g. training rating counts); higher first.
    """

    def __init__(
        self,
        titles: Sequence[str | None],
        years: Sequence[int | None],
        popularity: np.ndarray | None = None,
    ) -> None:
        self.titles = [t or "" for t in titles]
        self.years = list(years)
        self.norm = [normalize(t) for t in self.titles]
        n = len(self.titles)
        self.popularity = (
            np.zeros(n) if popularity is None else np.asarray(popularity, dtype=np.float64)
        )

    @classmethod
    def from_items(cls, items: pl.DataFrame, popularity: np.ndarray | None = None) -> TitleIndex:
        """From an artifact's items table (``title``, ``year`` columns)."""
        return cls(items["title"].to_list(), items["year"].to_list(), popularity)

    def search(
        self,
        query: str,
        limit: int = 10,
        allowed: np.ndarray | None = None,
        cutoff: float = 60.0,
    ) -> list[tuple[int, float]]:
        """Best matches for ``query``: [(item index, match 0..100)], best first.

        A year in parentheses ("alien (1979)") keeps only that year; ``allowed`` is a
        boolean mask of the items that may be returned (filters). Titles starting with the
        query rank above titles that only contain it, so suggestions work as one types.
        """
        title, year = split_title(query)
        q = normalize(title)
        if not q or limit < 1:
            return []
        ok = np.ones(len(self.norm), dtype=bool) if allowed is None else allowed.copy()
        if year is not None:
            ok &= np.array([y == year for y in self.years], dtype=bool)
        cands = np.flatnonzero(ok)
        choices = {int(j): self.norm[j] for j in cands}
        hits = process.extract(
            q, choices, scorer=fuzz.WRatio, limit=None, score_cutoff=cutoff, processor=None
        )
        scored = []
        for _, score, j in hits:
            t = self.norm[j]
            bonus = 10.0 if t == q else 5.0 if t.startswith(q) else 0.0
            scored.append((min(100.0, score + bonus), float(self.popularity[j]), j))
        scored.sort(key=lambda x: (-x[0], -x[1], x[2]))
        return [(int(j), round(float(s), 1)) for s, _, j in scored[:limit]]


def find_movie(
    items: pl.DataFrame,
    movie: str | int,
    item_map: IdMap | None = None,
    popularity: np.ndarray | None = None,
) -> int:
    """Dense index of a movie given by raw id or (fuzzy) title.

    Exact title matches win (``"toy story"`` is Toy Story, not Toy Story 2); a year in
    parentheses narrows them; otherwise a unique title containing the query is taken.
    Several matches raise :class:`ConfigError` listing them (most rated first); none
    raises :class:`UnknownIdError` with the closest titles.
    """
    text = str(movie).strip()
    if not text:
        raise ConfigError("give a movie id or title")
    if text.isdigit() and item_map is not None:
        pos = item_map.index(int(text), missing="minus1")[0]
        if pos >= 0:
            return int(pos)
    titles, years = items["title"].to_list(), items["year"].to_list()
    raw = items["item"].to_list()
    query, year = split_title(text)
    q = normalize(query)
    norm = [normalize(t or "") for t in titles]

    def ok_year(j: int) -> bool:
        return year is None or years[j] == year

    exact = [j for j, t in enumerate(norm) if t == q and ok_year(j)]
    if len(exact) == 1:
        return exact[0]
    cands = exact or [j for j, t in enumerate(norm) if q and q in t and ok_year(j)]
    if len(cands) == 1:
        return cands[0]
    if cands:
        if popularity is not None:
            cands.sort(key=lambda j: -float(popularity[j]))
        shown = ", ".join(f"{_label(titles[j], years[j])} [id {raw[j]}]" for j in cands[:8])
        more = f" and {len(cands) - 8} more" if len(cands) > 8 else ""
        raise ConfigError(
            f"{text!r} matches {len(cands)} movies: {shown}{more}; give the year, e.g. "
            f'"{_label(titles[cands[0]], years[cands[0]])}", or the movie id'
        )
    by_norm: dict[str, int] = {}
    for j, t in enumerate(norm):
        by_norm.setdefault(t, j)
    close = process.extract(q, list(by_norm), scorer=fuzz.ratio, limit=5, score_cutoff=60)
    hint = (
        "; did you mean: "
        + ", ".join(
            f"{_label(titles[by_norm[c]], years[by_norm[c]])} [id {raw[by_norm[c]]}]"
            for c, _, _ in close
        )
        if close
        else ""
    )
    raise UnknownIdError(f"no movie matches {text!r}{hint}")
