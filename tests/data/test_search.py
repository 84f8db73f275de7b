"""Typo-tolerant title search and the CLI's movie lookup (rapidfuzz)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import IdMap
from movierec.data.search import TitleIndex, find_movie, normalize
from movierec.errors import ConfigError, UnknownIdError

ITEMS = pl.DataFrame(
    {
        "item": [1, 50, 172, 181, 222, 127],
        "title": [
            "Toy Story",
            "Star Wars",
            "Empire Strikes Back, The",
            "Return of the Jedi",
            "Star Trek: First Contact",
            "Godfather, The",
        ],  # fmt: skip
        "year": [1995, 1977, 1980, 1983, 1996, 1972],
    }
)


def test_normalize_moves_the_article_and_drops_punctuation() -> None:
    assert normalize("Godfather, The") == "the godfather"
    assert normalize("Star Trek: First Contact") == "star trek first contact"


def test_search_tolerates_typos_and_prefixes() -> None:
    idx = TitleIndex.from_items(ITEMS, popularity=np.array([5, 9, 8, 7, 3, 6]))
    assert idx.search("star wras", 1)[0][0] == 1
    assert idx.search("godfater", 1)[0][0] == 5
    assert idx.search("the godfather", 1) == [(5, 100.0)]
    # typing a prefix: both Star titles, the exact prefix match first
    got = [j for j, _ in idx.search("star", 2)]
    assert set(got) == {1, 4}
    assert idx.search("star (1996)", 5) == [(4, idx.search("star (1996)", 5)[0][1])]
    allowed = np.array([True, False, True, True, True, True])
    assert 1 not in [j for j, _ in idx.search("star wars", 5, allowed=allowed)]
    assert idx.search("zzzzqqq", 5) == [] and idx.search("  ", 5) == []


def test_find_movie_exact_ambiguous_and_unknown() -> None:
    m = IdMap(np.array(sorted(ITEMS["item"].to_list())))
    items = ITEMS.sort("item")
    assert items["item"][find_movie(items, "50", item_map=m)] == 50
    assert items["title"][find_movie(items, "the godfather")] == "Godfather, The"
    with pytest.raises(ConfigError, match="'star' matches 2 movies: Star Wars"):
        find_movie(items, "star", popularity=np.array([5, 6, 9, 8, 7, 3]))
    with pytest.raises(UnknownIdError, match="did you mean: Return of the Jedi"):
        find_movie(items, "Return of the Jedy")
