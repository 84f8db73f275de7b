"""Spark reading and splitting give exactly what the local reader and splits give."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.data import load
from movierec.errors import DataError
from movierec.split import make_split


def _rows(ds):
    order = np.lexsort((ds.items, ds.users))
    return ds.users[order], ds.items[order], ds.ratings[order], ds.timestamps[order]


def _same(a, b):
    for x, y in zip(_rows(a), _rows(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_csv_layout_reads_like_the_local_reader(sdata, local):
    ds = sdata.dataset()
    assert np.array_equal(sdata.user_ids, local.user_map.raw)
    assert np.array_equal(sdata.item_ids, local.item_map.raw)
    assert ds.fingerprint() == local.fingerprint()
    assert ds.item_table.equals(local.item_table)
    assert sdata.links is not None and sdata.links.equals(local.links)
    assert sdata.notes["duplicates_dropped"] == 0


def test_dat_and_ml100k_layouts_with_duplicates(spark, tmp_path):
    from movierec.spark import io

    dat = tmp_path / "ml-1m"
    dat.mkdir()
    # (1, 10) twice: the later timestamp wins; (2, 10) twice with one timestamp: the later line
    (dat / "ratings.dat").write_text(
        "1::10::4::100\n1::20::3::90\n1::10::2::300\n2::10::5::50\n2::10::1::50\n3::30::4::7\n"
    )
    (dat / "movies.dat").write_text(
        "10::Alpha (1990)::Drama\n20::Beta::Comedy|Drama\n30::Gamma (2001)::(no genres listed)\n"
    )
    u100 = tmp_path / "ml-100k"
    u100.mkdir()
    (u100 / "u.data").write_text("1\t10\t4\t100\n2\t10\t3\t5\n2\t20\t5\t6\n")
    genres = "|".join(["0"] * 19)
    (u100 / "u.item").write_text(f"10|A (1995)|x|y|z|{genres}\n20|B (1996)|x|y|z|{genres}\n")
    for d in (dat, u100):
        sd = io.read(spark, d)
        want = load(d, cache=False)
        got = sd.dataset()
        _same(got, want)
        assert got.fingerprint() == want.fingerprint()
        assert got.item_table.equals(want.item_table)
        assert sd.notes["duplicates_dropped"] == want.notes["duplicates_dropped"]
        sd.close()
    assert load(dat, cache=False).notes["duplicates_dropped"] == 2


@pytest.mark.parametrize(
    "text, where",
    [
        ("userId,movieId,rating,timestamp\n1,2,4.0,5\nx,2,4.0,6\n", "line 3: column 'user'"),
        (
            "userId,movieId,rating,timestamp\n1,2,4.0,5\n1,3,7,6\n",
            "line 3: rating 7 is out of range",
        ),
        ("userId,movieId,rating,timestamp\n1,2,4.0,5\n1,3,4.0\n", "line 3 has 3 fields"),
        ("userId,movieId,stars,timestamp\n1,2,4.0,5\n", "missing column(s) ['rating']"),
        (
            "userId,movieId,rating,timestamp\n1,2.5,4.0,5\n",
            "line 2: column 'item' has '2.5', not an",
        ),
        ("", "the ratings file is empty"),
    ],
)
def test_bad_input_is_one_data_error(spark, tmp_path, text, where):
    from movierec.spark import io

    (tmp_path / "ratings.csv").write_text(text)
    with pytest.raises(DataError) as e:
        io.read(spark, tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("ratings.csv: ") and where in msg, msg
    with pytest.raises(DataError):  # the local reader refuses the same file
        load(tmp_path, cache=False)


def test_missing_folder_and_zip_are_data_errors(spark, tmp_path):
    from movierec.spark import io

    with pytest.raises(DataError, match="no such file or folder"):
        io.read(spark, tmp_path / "nope")
    (tmp_path / "ml.zip").write_bytes(b"PK")
    with pytest.raises(DataError, match="unzip"):
        io.read(spark, tmp_path / "ml.zip")


def test_per_user_split_equals_the_local_split(per_user, local_per_user, sdata):
    for part in ("train", "validation", "test"):
        _same(sdata.dataset(getattr(per_user, part)), getattr(local_per_user, part))
    assert per_user.params == local_per_user.params


@pytest.mark.parametrize(
    "kind, params",
    [
        ("temporal_per_user", {"n_val": 2, "n_test": 3, "min_train": 10}),
        ("temporal_global", {"fractions": (0.6, 0.25, 0.15)}),
        ("random_holdout", {"test_fraction": 0.2, "val_fraction": 0.1, "seed": 7}),
    ],
)
def test_splits_with_tied_timestamps_equal_the_local_splits(spark, coarse, kind, params):
    from movierec.spark import io
    from movierec.spark.split import make_split as spark_split

    sd = io.from_dataset(spark, coarse)
    got = spark_split(sd, kind, **params)
    want = make_split(coarse, kind, **params)
    for part in ("train", "validation", "test"):
        g = sd.dataset(getattr(got, part))
        assert g.n_ratings == getattr(want, part).n_ratings > 0
        _same(g, getattr(want, part))
    assert got.params == want.params
    got.close()
    sd.close()
