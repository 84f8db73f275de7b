"""IdMap, Dataset (from_raw, stats, matrices, columnar cache) and the real MovieLens 100K."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from movierec.data import Dataset, IdMap
from movierec.data.dataset import load_columnar, save_columnar
from movierec.errors import DataError, UnknownIdError

EMPTY_MOVIES = pl.DataFrame(
    schema={"item": pl.Int64, "title": pl.String, "year": pl.Int32, "genres": pl.List(pl.String)}
)


def make(users, items, ratings=None, ts=None, **kw) -> Dataset:
    n = len(users)
    ratings = np.full(n, 3.0) if ratings is None else ratings
    ts = np.arange(n) if ts is None else ts
    return Dataset.from_raw(
        np.asarray(users),
        np.asarray(items),
        np.asarray(ratings),
        np.asarray(ts),
        EMPTY_MOVIES,
        **kw,
    )


# ----------------------------------------------------------------------------- IdMap


def test_idmap_round_trip() -> None:
    raw = np.array([50, 7, 50, 1000, 7, 3], dtype=np.int64)
    m, dense = IdMap.encode(raw)
    assert m.raw.tolist() == [3, 7, 50, 1000]
    assert dense.dtype == np.int32
    assert dense.tolist() == [2, 1, 2, 3, 1, 0]
    assert len(m) == 4
    np.testing.assert_array_equal(m.to_raw(dense), raw)
    np.testing.assert_array_equal(m.index(raw), dense)
    assert m.index(1000).tolist() == [3]
    assert m.index(np.array([3, 50])).dtype == np.int32


def test_idmap_unknown_ids() -> None:
    m, _ = IdMap.encode(np.array([10, 20, 30]))
    with pytest.raises(UnknownIdError, match="25"):
        m.index([10, 25])
    with pytest.raises(UnknownIdError):
        m.index(31)  # beyond the largest id
    with pytest.raises(UnknownIdError):
        m.index(-5)  # below the smallest id
    assert m.index([10, 25, 30, 99, -1], missing="minus1").tolist() == [0, -1, 2, -1, -1]


@pytest.mark.parametrize("raw", [[10, 20, 30], [], [-(2**62), -7, 0, 2**62]])
def test_idmap_find_agrees_with_index(raw: list[int]) -> None:
    m, _ = IdMap.encode(np.array(raw, dtype=np.int64))
    probes = [*raw, -8, -1, 1, 15, 31, 2**62 - 1, 2**63 - 1, -(2**63), 2**70, -(2**70)]
    for x in probes:
        want = int(m.index([x], missing="minus1")[0]) if -(2**63) <= x < 2**63 else -1
        assert m.find(x) == want, x


def test_idmap_empty() -> None:
    m, dense = IdMap.encode(np.array([], dtype=np.int64))
    assert len(m) == 0 and dense.size == 0 and dense.dtype == np.int32
    assert m.index([1, 2], missing="minus1").tolist() == [-1, -1]
    with pytest.raises(UnknownIdError):
        m.index(1)


@pytest.mark.parametrize(
    "raw",
    [
        [300_000_000, 5, 300_000_000, 2**40],  # above the presence-table limit
        [-7, 3, -7, 0, 12],  # negative ids
        [-(2**62), 2**62, 0],
    ],
)
def test_idmap_large_and_negative_ids(raw: list[int]) -> None:
    arr = np.array(raw, dtype=np.int64)
    m, dense = IdMap.encode(arr)
    assert m.raw.tolist() == sorted(set(raw))
    assert dense.dtype == np.int32
    np.testing.assert_array_equal(m.to_raw(dense), arr)
    np.testing.assert_array_equal(m.index(arr), dense)
    assert m.index([1234567], missing="minus1").tolist() == [-1]


def test_idmap_table_and_unique_paths_agree() -> None:
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 5000, 2000)
    m1, d1 = IdMap.encode(raw)
    m2, d2 = IdMap.encode(raw - 10_000)  # negative: np.unique path
    np.testing.assert_array_equal(m1.raw, np.unique(raw))
    np.testing.assert_array_equal(d1, d2)
    np.testing.assert_array_equal(m2.raw, m1.raw - 10_000)


def test_idmap_rejects_unsorted_or_repeated_ids() -> None:
    with pytest.raises(DataError):
        IdMap(np.array([3, 1, 2]))
    with pytest.raises(DataError):
        IdMap(np.array([1, 1, 2]))
    assert IdMap(np.array([1, 2])) == IdMap(np.array([1, 2]))
    assert IdMap(np.array([1, 2])) != IdMap(np.array([1, 3]))


# ----------------------------------------------------------------------------- Dataset


def test_from_raw_columns_and_order_independence() -> None:
    users = [30, 10, 30, 20, 10]
    items = [7, 7, 5, 9, 5]
    ratings = [1.0, 2.0, 3.0, 4.0, 5.0]
    ts = [100, 101, 102, 103, 104]
    a = make(users, items, ratings, ts)
    assert a.user_map.raw.tolist() == [10, 20, 30] and a.item_map.raw.tolist() == [5, 7, 9]
    triples = set(
        zip(
            a.user_map.to_raw(a.users).tolist(),
            a.item_map.to_raw(a.items).tolist(),
            a.ratings.tolist(),
            strict=True,
        )
    )
    assert triples == {(30, 7, 1.0), (10, 7, 2.0), (30, 5, 3.0), (20, 9, 4.0), (10, 5, 5.0)}
    perm = [3, 0, 4, 2, 1]
    b = make(*[[c[k] for k in perm] for c in (users, items, ratings, ts)])
    assert a.fingerprint() == b.fingerprint()  # the same ratings in any file order


def test_from_raw_rejects_out_of_range_and_empty() -> None:
    with pytest.raises(DataError, match="out of range"):
        make([1, 2], [1, 1], [3.0, 0.0])
    with pytest.raises(DataError, match="out of range"):
        make([1], [1], [np.nan])
    with pytest.raises(DataError, match="no rows"):
        make([], [], [], [])


def test_duplicates_policy_in_from_raw() -> None:
    ds = make(
        [1, 1, 1, 2, 2, 2],
        [5, 5, 5, 5, 5, 6],
        [1.0, 2.0, 3.0, 4.0, 4.5, 5.0],
        [10, 30, 20, 7, 7, 1],
    )
    got = {
        (int(u), int(i)): (float(r), int(t))
        for u, i, r, t in zip(
            ds.user_map.to_raw(ds.users),
            ds.item_map.to_raw(ds.items),
            ds.ratings,
            ds.timestamps,
            strict=True,
        )
    }
    assert got == {(1, 5): (2.0, 30), (2, 5): (4.5, 7), (2, 6): (5.0, 1)}
    assert ds.notes["duplicates_dropped"] == 3 and ds.stats()["duplicates_dropped"] == 3


def test_stats_and_matrices() -> None:
    ds = make([1, 1, 2, 3], [10, 20, 10, 30], [4.0, 2.5, 5.0, 4.0], [5, 6, 7, 8], name="tiny")
    st = ds.stats()
    assert (st["users"], st["movies"], st["ratings"]) == (3, 3, 4)
    assert st["density"] == pytest.approx(4 / 9)
    assert st["rating_mean"] == pytest.approx(3.875)
    assert st["rating_histogram"] == {"2.5": 1, "4": 2, "5": 1}
    assert (st["time_min"], st["time_max"]) == (5, 8)
    assert st["name"] == "tiny" and st["duplicates_dropped"] == 0
    json.dumps(st)  # JSON-ready
    m = ds.csr()
    assert m.shape == (3, 3) and m.dtype == np.float32
    np.testing.assert_array_equal(
        m.toarray(), np.array([[4.0, 2.5, 0.0], [5.0, 0.0, 0.0], [0.0, 0.0, 4.0]], np.float32)
    )
    assert m.has_sorted_indices
    assert ds.csr() is m  # cached
    np.testing.assert_array_equal(ds.csc().toarray(), m.toarray())
    assert ds.csc().format == "csc"
    assert ds.user_counts().tolist() == [2, 1, 1] and ds.item_counts().tolist() == [2, 1, 1]
    assert ds.rating_scale == (2.5, 5.0)


def test_subset_shares_maps() -> None:
    ds = make([1, 1, 2, 3], [10, 20, 10, 30])
    sub = ds.subset(np.array([True, False, False, True]))
    assert sub.user_map is ds.user_map and sub.item_map is ds.item_map
    assert sub.n_ratings == 2 and sub.n_users == 3 and sub.csr().shape == (3, 3)


def test_columnar_round_trip(tmp_path: Path) -> None:
    movies = pl.DataFrame(
        {"item": [10, 20], "title": ["A", "B"], "year": [1999, None], "genres": [["Drama"], []]},
        schema=EMPTY_MOVIES.schema,
    )
    tags = pl.DataFrame({"user": [1], "item": [10], "tag": ["x: y"], "timestamp": [5]})
    raw = (
        np.array([1, 2, 1]),
        np.array([10, 10, 20]),
        np.array([4.0, 3.5, 1.0]),
        np.array([3, 2, 1]),
    )
    ds = Dataset.from_raw(*raw, movies, tags=tags, name="rt", synthetic=True, notes={"k": 1})
    save_columnar(ds, tmp_path / "c", {"signature": [["a", 1, 2]]})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]
    back, meta = load_columnar(tmp_path / "c")
    assert meta["signature"] == [["a", 1, 2]]
    for a in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(back, a), getattr(ds, a))
        assert getattr(back, a).dtype == getattr(ds, a).dtype
    assert back.user_map == ds.user_map and back.item_map == ds.item_map
    assert back.movies.equals(movies) and back.tags.equals(tags) and back.links is None
    assert (back.name, back.synthetic, back.notes) == ("rt", True, ds.notes)
    assert load_columnar(tmp_path / "missing") is None
    # overwrite in place
    save_columnar(ds.subset(np.array([0])), tmp_path / "c", {})
    assert load_columnar(tmp_path / "c")[0].n_ratings == 1


# ----------------------------------------------------------------------------- real data


def test_real_ml100k(ml100k: Dataset) -> None:
    ds = ml100k
    assert not ds.synthetic
    assert (ds.n_users, ds.n_items, ds.n_ratings) == (943, 1682, 100_000)
    st = ds.stats()
    assert (st["users"], st["movies"], st["ratings"]) == (943, 1682, 100_000)
    assert st["density"] == pytest.approx(100_000 / (943 * 1682))
    assert round(st["density"], 6) == 0.063047
    assert st["duplicates_dropped"] == 0
    assert st["rating_histogram"] == {"1": 6110, "2": 11370, "3": 27145, "4": 34174, "5": 21201}
    assert ds.ratings.dtype == np.float32 and ds.timestamps.dtype == np.int64
    assert ds.user_map.raw.tolist() == list(range(1, 944))
    assert ds.item_map.raw.tolist() == list(range(1, 1683))
    toy = ds.movies.filter(pl.col("item") == 1).row(0, named=True)
    assert (toy["title"], toy["year"]) == ("Toy Story", 1995)
    assert "Animation" in toy["genres"]
    k = int(ds.item_map.index(1)[0])
    assert ds.item_table.row(k, named=True)["title"] == "Toy Story"
    # user 196 rated movie 242 (Kolya) 3 stars: the first line of u.data
    u, i = ds.user_map.index(196)[0], ds.item_map.index(242)[0]
    row = np.flatnonzero((ds.users == u) & (ds.items == i))
    assert row.size == 1 and ds.ratings[row[0]] == 3.0 and ds.timestamps[row[0]] == 881250949
    assert ds.csr()[u, i] == 3.0
    assert ds.user_info is not None and ds.user_info.height == 943
