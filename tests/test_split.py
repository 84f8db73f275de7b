"""Splits: property tests (no leaks, exact cover, time order) and hand-built reports."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec import split as S
from movierec.data import Dataset
from movierec.errors import ConfigError
from movierec.kernels.sparse import in_sorted

EMPTY_MOVIES = pl.DataFrame(
    schema={"item": pl.Int64, "title": pl.String, "year": pl.Int32, "genres": pl.List(pl.String)}
)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make(users, items, ts, ratings=None) -> Dataset:
    n = len(users)
    ratings = np.full(n, 4.0) if ratings is None else np.asarray(ratings, float)
    return Dataset.from_raw(
        np.asarray(users, np.int64),
        np.asarray(items, np.int64),
        ratings,
        np.asarray(ts, np.int64),
        EMPTY_MOVIES,
        name="h",
    )


@st.composite
def datasets(draw: st.DrawFn) -> Dataset:
    """Small data sets with few users/items and many equal timestamps."""
    n = draw(st.integers(1, 80))
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 15))
    t_span = draw(st.sampled_from([1, 3, 10, 1000]))
    base = draw(st.sampled_from([0, 1_000_000_000]))
    users = draw(st.lists(st.integers(0, n_users - 1), min_size=n, max_size=n))
    items = draw(st.lists(st.integers(0, n_items - 1), min_size=n, max_size=n))
    ts = draw(st.lists(st.integers(base, base + t_span - 1), min_size=n, max_size=n))
    ratings = draw(st.lists(st.integers(1, 10), min_size=n, max_size=n))
    # raw ids spread out so that dense and raw indices differ
    return make(
        [u * 7 + 3 for u in users], [i * 11 + 1 for i in items], ts, [r / 2 for r in ratings]
    )


def rows(ds: Dataset) -> list[tuple]:
    """Every rating as (user, item, rating, timestamp), sorted, for multiset comparison."""
    return sorted(
        zip(
            ds.users.tolist(),
            ds.items.tolist(),
            ds.ratings.tolist(),
            ds.timestamps.tolist(),
            strict=True,
        )
    )


def pairs(ds: Dataset) -> set[tuple[int, int]]:
    return set(zip(ds.users.tolist(), ds.items.tolist(), strict=True))


def check_partition(ds: Dataset, s: S.Split) -> None:
    parts = (s.train, s.validation, s.test)
    for p in parts:
        assert p.user_map is ds.user_map and p.item_map is ds.item_map
    assert sum(p.n_ratings for p in parts) == ds.n_ratings
    assert sorted(rows(s.train) + rows(s.validation) + rows(s.test)) == rows(ds)
    a, b, c = (pairs(p) for p in parts)
    assert not (a & b) and not (a & c) and not (b & c)
    lk = S.leaks(s)
    assert (
        lk["pairs_train_validation"] == lk["pairs_train_test"] == lk["pairs_validation_test"] == 0
    )


# ----------------------------------------------------------------------------- temporal_global


@SETTINGS
@given(
    ds=datasets(),
    fr=st.sampled_from(
        [(0.7, 0.15, 0.15), (0.8, 0.0, 0.2), (0.5, 0.25, 0.25), (1.0, 0.0, 0.0), (0.34, 0.33, 0.33)]
    ),
)
def test_temporal_global_properties(ds: Dataset, fr: tuple[float, float, float]) -> None:
    s = S.temporal_global(ds, fr)
    check_partition(ds, s)
    parts = [p.timestamps for p in (s.train, s.validation, s.test) if p.n_ratings]
    for a, b in zip(parts, parts[1:], strict=False):
        assert a.max() < b.min()
    assert S.leaks(s)["time_order_breaks"] == 0
    n = ds.n_ratings
    k1, k2 = round(fr[0] * n), round((fr[0] + fr[1]) * n)
    # ties go to the earlier part, so train holds at least its share of the ratings
    assert s.train.n_ratings >= k1
    assert s.train.n_ratings + s.validation.n_ratings >= k2
    if len(np.unique(ds.timestamps)) == n:  # no ties: exact sizes
        assert (s.train.n_ratings, s.validation.n_ratings) == (k1, k2 - k1)


def test_temporal_global_hand_built() -> None:
    ds = make(range(20), [1] * 20, list(range(100, 120)))
    s = S.temporal_global(ds, (0.7, 0.15, 0.15))
    assert (s.train.n_ratings, s.validation.n_ratings, s.test.n_ratings) == (14, 3, 3)
    assert s.train.timestamps.max() == 113 and s.test.timestamps.min() == 117
    # all ratings in one second: everything is train, nothing later to test on
    one = make(range(10), range(10), [5] * 10)
    s = S.temporal_global(one)
    assert (s.train.n_ratings, s.validation.n_ratings, s.test.n_ratings) == (10, 0, 0)


# ----------------------------------------------------------------------------- temporal_per_user


@SETTINGS
@given(
    ds=datasets(),
    n_val=st.integers(0, 2),
    n_test=st.integers(0, 3),
    min_train=st.integers(0, 3),
)
def test_temporal_per_user_properties(ds: Dataset, n_val: int, n_test: int, min_train: int) -> None:
    s = S.temporal_per_user(ds, n_val=n_val, n_test=n_test, min_train=min_train)
    check_partition(ds, s)
    need = min_train + n_val + n_test
    counts = ds.user_counts()
    short = 0
    for u in range(ds.n_users):
        tr = s.train.timestamps[s.train.users == u]
        va = s.validation.timestamps[s.validation.users == u]
        te = s.test.timestamps[s.test.users == u]
        if counts[u] < need:
            short += 1
            assert tr.size == counts[u] and va.size == 0 and te.size == 0
            continue
        assert (va.size, te.size) == (n_val, n_test)
        assert tr.size == counts[u] - n_val - n_test >= min_train
        if te.size and va.size:
            assert te.min() >= va.max()
        if te.size and tr.size:
            assert te.min() >= tr.max()
        if va.size and tr.size:
            assert va.min() >= tr.max()
    assert s.params["users_kept_in_train"] == short


def test_temporal_per_user_hand_built() -> None:
    # user 1: 8 ratings at t=1..8 (rated in reverse file order); user 2: 3 ratings (too few)
    ds = make(
        [1] * 8 + [2] * 3, [8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3], [8, 7, 6, 5, 4, 3, 2, 1, 1, 2, 3]
    )
    s = S.temporal_per_user(ds, n_val=1, n_test=2, min_train=3)
    raw = ds.item_map.to_raw
    u1 = ds.user_map.index(1)[0]
    assert sorted(raw(s.test.items[s.test.users == u1]).tolist()) == [7, 8]
    assert raw(s.validation.items[s.validation.users == u1]).tolist() == [6]
    assert s.train.n_ratings == 5 + 3
    assert s.params["users_kept_in_train"] == 1
    # equal timestamps: ties broken by movie index, deterministically
    tie = make([1] * 6, [60, 50, 40, 30, 20, 10], [0] * 6)
    s = S.temporal_per_user(tie, n_val=1, n_test=2, min_train=1)
    assert sorted(tie.item_map.to_raw(s.test.items).tolist()) == [50, 60]
    assert tie.item_map.to_raw(s.validation.items).tolist() == [40]


# ----------------------------------------------------------------------------- kfold / holdout


@SETTINGS
@given(ds=datasets(), k=st.integers(2, 6), seed=st.integers(0, 3))
def test_kfold_partitions_the_ratings(ds: Dataset, k: int, seed: int) -> None:
    if k > ds.n_ratings:
        with pytest.raises(ConfigError):
            S.kfold(ds, k=k, seed=seed)
        return
    folds = S.kfold(ds, k=k, seed=seed)
    assert len(folds) == k
    tests = []
    for f in folds:
        check_partition(ds, f)
        assert f.validation.n_ratings == 0
        assert abs(f.test.n_ratings - ds.n_ratings / k) < 1
        tests += rows(f.test)
    assert sorted(tests) == rows(ds)  # every rating in exactly one test fold
    again = S.kfold(ds, k=k, seed=seed)
    for a, b in zip(folds, again, strict=True):
        assert rows(a.test) == rows(b.test)


@SETTINGS
@given(
    ds=datasets(),
    tf=st.sampled_from([0.1, 0.2, 0.5, 0.9]),
    vf=st.sampled_from([0.0, 0.05, 0.09]),
    seed=st.integers(0, 3),
)
def test_random_holdout_sizes(ds: Dataset, tf: float, vf: float, seed: int) -> None:
    s = S.random_holdout(ds, test_fraction=tf, seed=seed, val_fraction=vf)
    check_partition(ds, s)
    n = ds.n_ratings
    assert s.test.n_ratings == round(tf * n)
    assert s.validation.n_ratings == min(round(vf * n), n - round(tf * n))
    assert rows(S.random_holdout(ds, test_fraction=tf, seed=seed, val_fraction=vf).test) == rows(
        s.test
    )


def test_random_holdout_seed_changes_the_split() -> None:
    ds = make(list(range(100)), [1] * 100, list(range(100)))
    a = S.random_holdout(ds, 0.2, seed=0)
    b = S.random_holdout(ds, 0.2, seed=1)
    assert a.test.n_ratings == b.test.n_ratings == 20
    assert rows(a.test) != rows(b.test)


# ----------------------------------------------------------------------------- report


def test_report_counts_cold_users_and_movies() -> None:
    # user 30 and movie 300 appear only after the cut: cold in validation / test
    ds = make(
        [10, 10, 20, 20, 10, 30, 20, 30],
        [100, 200, 100, 200, 300, 100, 300, 400],
        [1, 2, 3, 4, 5, 6, 7, 8],
        [1.0, 2.0, 3.0, 4.0, 5.0, 3.0, 4.0, 5.0],
    )
    s = S.temporal_global(ds, (0.5, 0.25, 0.25))
    rep = s.report()
    p = rep["parts"]
    assert rep["kind"] == "temporal_global"
    assert [p[k]["ratings"] for k in ("train", "validation", "test")] == [4, 2, 2]
    assert p["train"]["users"] == 2 and p["train"]["movies"] == 2
    assert (p["train"]["cold_users"], p["train"]["cold_movies"]) == (0, 0)
    # validation: (10, 300) t=5, (30, 100) t=6 -> user 30 cold, movie 300 cold
    assert (p["validation"]["users"], p["validation"]["movies"]) == (2, 2)
    assert (p["validation"]["cold_users"], p["validation"]["cold_movies"]) == (1, 1)
    # test: (20, 300) t=7, (30, 400) t=8 -> user 30 cold; movies 300 and 400 cold
    assert (p["test"]["cold_users"], p["test"]["cold_movies"]) == (1, 2)
    assert p["train"]["mean_rating"] == pytest.approx(2.5)
    assert p["test"]["mean_rating"] == pytest.approx(4.5)
    assert (p["test"]["time_min"], p["test"]["time_max"]) == (7, 8)
    assert rep["leaks"] == {
        "pairs_train_validation": 0,
        "pairs_train_test": 0,
        "pairs_validation_test": 0,
        "time_order_breaks": 0,
    }


def test_leaks_detects_a_leaky_split() -> None:
    ds = make([1, 1, 2], [1, 2, 1], [1, 2, 3])
    s = S.random_holdout(ds, 0.34, seed=0)
    bad = S.Split(ds, s.validation, ds.subset(np.array([0])), "random_holdout")
    assert S.leaks(bad)["pairs_train_test"] == 1
    late_train = S.Split(
        ds.subset(np.array([2])),
        ds.subset(np.array([1])),
        ds.subset(np.array([0])),
        "temporal_global",
    )
    assert S.leaks(late_train)["time_order_breaks"] == 2


def test_in_sorted_equals_isin() -> None:
    rng = np.random.default_rng(3)
    for n_a, n_b in ((0, 5), (5, 0), (50, 40), (1000, 3000)):
        a = rng.integers(0, 200, n_a)  # repeats on both sides
        b = rng.integers(0, 200, n_b)
        assert int(in_sorted(a, np.sort(b)).sum()) == int(np.isin(a, b).sum())
        np.testing.assert_array_equal(in_sorted(a, np.sort(b)), np.isin(a, b))


def test_leaks_counts_every_shared_pair() -> None:
    ds = make([1, 1, 2, 2, 3], [1, 2, 1, 3, 2], [1, 2, 3, 4, 5])
    train, val, test = (ds.subset(np.array(i)) for i in ((0, 1, 2), (1, 2, 3), (0, 3, 4)))
    s = S.Split(train, val, test, "random_holdout")
    assert S.leaks(s) == {
        "pairs_train_validation": 2,
        "pairs_train_test": 1,
        "pairs_validation_test": 1,
    }


# ----------------------------------------------------------------------------- bad params

DS = make([1, 1, 2, 2, 3], [1, 2, 1, 3, 2], [1, 2, 3, 4, 5])


@pytest.mark.parametrize(
    ("fn", "kw"),
    [
        (S.temporal_global, {"fractions": (0.5, 0.5)}),
        (S.temporal_global, {"fractions": (0.6, 0.3, 0.3)}),
        (S.temporal_global, {"fractions": (1.2, -0.1, -0.1)}),
        (S.temporal_global, {"fractions": (0.0, 0.5, 0.5)}),
        (S.temporal_per_user, {"n_test": -1}),
        (S.temporal_per_user, {"n_val": -2}),
        (S.temporal_per_user, {"min_train": -1}),
        (S.random_holdout, {"test_fraction": 0.0}),
        (S.random_holdout, {"test_fraction": 1.0}),
        (S.random_holdout, {"test_fraction": 0.6, "val_fraction": 0.4}),
        (S.random_holdout, {"test_fraction": 0.2, "val_fraction": -0.1}),
        (S.kfold, {"k": 1}),
        (S.kfold, {"k": 6}),
    ],
)
def test_bad_params_raise_config_error(fn, kw) -> None:
    with pytest.raises(ConfigError):
        fn(DS, **kw)


def test_make_split() -> None:
    s = S.make_split(DS, "random_holdout", test_fraction=0.4, seed=1)
    assert s.kind == "random_holdout" and s.test.n_ratings == 2
    with pytest.raises(ConfigError, match="unknown split"):
        S.make_split(DS, "by_moon_phase")
    with pytest.raises(ConfigError, match="bad parameters"):
        S.make_split(DS, "temporal_global", frac=0.5)


def test_real_ml100k_per_user_split(ml100k: Dataset) -> None:
    s = S.temporal_per_user(ml100k)
    assert s.test.n_ratings == 943 * 5 and s.validation.n_ratings == 943  # all have >= 20
    assert s.report()["leaks"] == {
        "pairs_train_validation": 0,
        "pairs_train_test": 0,
        "pairs_validation_test": 0,
    }
