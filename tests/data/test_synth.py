"""The MovieLens-shaped generator: exact file layout, realism, learnability, determinism."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numba
import numpy as np
import polars as pl
import pytest

from movierec.data import synth
from movierec.errors import DataError

FILES = ("ratings.csv", "movies.csv", "tags.csv", "links.csv")
GENRES = {
    "Action",
    "Adventure",
    "Animation",
    "Children",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "IMAX",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
}
# real ml-25m shares of 0.5 .. 5.0 stars
HIST_25M = np.array([1.57, 3.11, 1.60, 6.56, 5.05, 19.59, 12.71, 26.56, 8.80, 14.45]) / 100


def _read(folder: Path) -> dict[str, pl.DataFrame]:
    return {
        "ratings": pl.read_csv(folder / "ratings.csv"),
        "movies": pl.read_csv(folder / "movies.csv"),
        "tags": pl.read_csv(folder / "tags.csv"),
        "links": pl.read_csv(folder / "links.csv", schema_overrides={"imdbId": pl.String}),
    }


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, dict[str, pl.DataFrame]]:
    out = tmp_path_factory.mktemp("synth") / "ml-100k"
    summary = synth.generate("ml-100k", out, seed=0)
    return summary, out, _read(out)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, dict[str, pl.DataFrame]]:
    out = tmp_path_factory.mktemp("synth") / "latest-small"
    summary = synth.generate("ml-latest-small", out, seed=1)
    return summary, out, _read(out)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, dict[str, pl.DataFrame]]:
    """ml-25m shape at 10% (16254 users, 5905 movies, 2.5M ratings)."""
    out = tmp_path_factory.mktemp("synth") / "ml-25m-10pct"
    summary = synth.generate("ml-25m", out, scale=0.1, seed=0)
    return summary, out, _read(out)


# -- layout -------------------------------------------------------------------------------


def test_exact_headers_and_value_formats(ml100k):
    _, out, _ = ml100k
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    heads = {name: (out / name).read_text(encoding="utf-8").split("\n", 2)[:2] for name in FILES}
    assert heads["ratings.csv"][0] == "userId,movieId,rating,timestamp"
    assert heads["movies.csv"][0] == "movieId,title,genres"
    assert heads["tags.csv"][0] == "userId,movieId,tag,timestamp"
    assert heads["links.csv"][0] == "movieId,imdbId,tmdbId"
    text = (out / "ratings.csv").read_text()
    assert text.endswith("\n") and "\r" not in text
    assert re.fullmatch(r"(\d+,\d+,[0-5]\.[05],\d{9,10}\n)+", text.split("\n", 1)[1])


def test_movies_titles_quoting_years_and_genres(ml100k, big):
    for _, out, frames in (ml100k, big):
        raw = (out / "movies.csv").read_text(encoding="utf-8").splitlines()[1:]
        quoted = [line for line in raw if re.match(r'^\d+,"', line)]
        assert quoted, "some titles contain commas and must be quoted"
        rows = list(csv.reader((out / "movies.csv").open(encoding="utf-8")))[1:]
        titles = [r[1] for r in rows]
        assert all(len(r) == 3 for r in rows)
        assert any("," in t for t in titles)
        assert any(t.endswith(", The") or ", The (" in t for t in titles)
        with_year = [t for t in titles if re.search(r" \((1[89]|20)\d\d\)$", t)]
        assert 0 < len(titles) - len(with_year) < 0.03 * len(titles)
        genres = frames["movies"]["genres"].to_list()
        assert "(no genres listed)" in genres
        for g in genres:
            if g != "(no genres listed)":
                parts = g.split("|")
                assert set(parts) <= GENRES and parts == sorted(parts)
        assert frames["movies"]["movieId"].is_sorted()


def test_links_imdb_padded_and_some_tmdb_missing(ml100k):
    _, out, frames = ml100k
    links, movies = frames["links"], frames["movies"]
    assert links["movieId"].to_list() == movies["movieId"].to_list()
    imdb = links["imdbId"].to_list()
    assert all(re.fullmatch(r"\d{7,8}", x) for x in imdb)
    assert any(x.startswith("0") for x in imdb)
    assert len(set(imdb)) == len(imdb)
    assert 0 < links["tmdbId"].null_count() < 0.05 * links.height
    raw = (out / "links.csv").read_text().splitlines()
    assert any(line.endswith(",") for line in raw[1:])  # empty tmdbId, as in the real files


def test_tags_are_on_rated_movies(ml100k, big):
    for _, _, frames in (ml100k, big):
        tags, ratings = frames["tags"], frames["ratings"]
        assert tags.height > 0
        joined = tags.join(ratings, on=["userId", "movieId"], how="left")
        assert joined["rating"].null_count() == 0
        assert (joined["timestamp"] >= joined["timestamp_right"]).all()
        assert tags.select(["userId", "movieId", "tag"]).is_unique().all()
        assert tags["tag"].str.contains(" ").any()
        assert tags["userId"].n_unique() < 0.25 * ratings["userId"].n_unique()


# -- counts, ids and order -----------------------------------------------------------------


def test_counts_ids_and_no_duplicates(ml100k):
    summary, _, frames = ml100k
    r, movies = frames["ratings"], frames["movies"]
    users, n_movies, n_ratings = synth.SHAPES["ml-100k"]
    assert r.height == n_ratings == summary["ratings"]
    assert r["userId"].unique().sort().to_list() == list(range(1, users + 1))
    assert r["movieId"].n_unique() == n_movies == summary["movies"]
    assert r.select(["userId", "movieId"]).is_unique().all()
    assert r.group_by("userId").len()["len"].min() >= 20
    ids = movies["movieId"].to_numpy()
    assert np.all(np.diff(ids) >= 1) and np.any(np.diff(ids) > 1)  # gaps, as in real data
    assert ids.max() > len(ids)
    assert set(r["movieId"].unique().to_list()) <= set(ids.tolist())


def test_default_order_is_user_then_movie_as_released(ml100k):
    summary, _, frames = ml100k
    r = frames["ratings"]
    assert r["userId"].is_sorted()
    per_user = r.with_columns(pl.col("movieId").diff().over("userId").alias("d"))
    assert per_user.filter(pl.col("d") <= 0).height == 0
    t0, t1 = summary["model"]["time_range"]
    assert r["timestamp"].min() >= t0 and r["timestamp"].max() <= t1


def test_time_order_is_available(tmp_path):
    synth.generate("ml-100k", tmp_path / "t", scale=0.05, seed=3, order="timestamp")
    r = pl.read_csv(tmp_path / "t" / "ratings.csv")
    assert r["userId"].is_sorted()
    back = r.with_columns(pl.col("timestamp").diff().over("userId").alias("d"))
    assert back.filter(pl.col("d") < 0).height == 0


def test_timestamps_spread_over_the_years(big):
    _, _, frames = big
    years = frames["ratings"].select(pl.from_epoch("timestamp").dt.year())["timestamp"]
    share = years.value_counts(normalize=True)
    assert years.min() <= 1996 and years.max() == 2019
    assert share["proportion"].max() < 0.15  # no single year dominates
    assert years.n_unique() >= 24


# -- realism -------------------------------------------------------------------------------


def test_whole_star_histogram_for_ml100k(ml100k):
    r = ml100k[2]["ratings"]["rating"]
    got = r.value_counts(normalize=True).sort("rating")
    assert got["rating"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0]
    real = np.array([6110, 11370, 27145, 34174, 21201]) / 100000
    assert np.abs(got["proportion"].to_numpy() - real).max() < 0.005


def test_half_star_histogram_like_ml25m(big):
    r = big[2]["ratings"]["rating"]
    got = r.value_counts(normalize=True).sort("rating")
    assert got["rating"].to_list() == [x / 2 for x in range(1, 11)]
    assert np.abs(got["proportion"].to_numpy() - HIST_25M).max() < 0.005
    assert got.sort("proportion")["rating"][-1] == 4.0
    assert 3.45 < r.mean() < 3.6


def test_popularity_has_a_head_and_a_long_tail(big):
    summary, _, frames = big
    counts = np.sort(frames["ratings"].group_by("movieId").len()["len"].to_numpy())
    users = summary["users"]
    assert 0.4 < counts[-1] / users < 0.6  # real ml-25m: 81,491 / 162,541
    assert counts[-1] == summary["top_movie_ratings"]
    assert (counts <= 5).mean() > 0.03  # at full size: about 43%
    n = len(counts)
    gini = float((2 * np.arange(1, n + 1) - n - 1) @ counts / (n * counts.sum()))
    assert gini > 0.75


def test_user_activity_is_lognormal_like(big):
    n = big[2]["ratings"].group_by("userId").len()["len"].to_numpy()
    assert n.min() >= 20
    assert np.median(n) < 0.6 * n.mean()  # right-skewed
    assert n.max() > 15 * np.median(n)
    z = np.log(n - 19)
    skew = float(((z - z.mean()) ** 3).mean() / z.std() ** 3)
    assert abs(skew) < 0.6  # log(n - 20) is roughly symmetric


def test_learned_models_beat_baselines(ml100k):
    """Biases beat the global mean, low rank beats biases, SVD top-N beats popularity."""
    r = ml100k[2]["ratings"]
    u = r["userId"].to_numpy() - 1
    _, i = np.unique(r["movieId"].to_numpy(), return_inverse=True)
    y = r["rating"].to_numpy().astype(np.float64)
    n_u, n_i = u.max() + 1, i.max() + 1
    test = np.random.default_rng(0).uniform(size=len(y)) < 0.2
    tr = ~test

    def rmse(pred: np.ndarray) -> float:
        return float(np.sqrt(np.mean((y[test] - pred) ** 2)))

    mu = y[tr].mean()
    bu, bi = np.zeros(n_u), np.zeros(n_i)
    for _ in range(10):
        bi = np.bincount(i[tr], y[tr] - mu - bu[u[tr]], n_i) / (np.bincount(i[tr], None, n_i) + 5)
        bu = np.bincount(u[tr], y[tr] - mu - bi[i[tr]], n_u) / (np.bincount(u[tr], None, n_u) + 5)
    base = mu + bu[u] + bi[i]
    # truncated SVD of the zero-filled residual matrix, shrinkage fitted on train
    res = y - base
    m = np.zeros((n_u, n_i))
    m[u[tr], i[tr]] = res[tr]
    left, s, right = np.linalg.svd(m, full_matrices=False)
    low = ((left[:, :10] * s[:10]) @ right[:10])[u, i]
    alpha = (low[tr] @ res[tr]) / (low[tr] @ low[tr])
    rmse_mean, rmse_bias, rmse_svd = (
        rmse(mu),
        rmse(base[test]),
        rmse(base[test] + alpha * low[test]),
    )
    assert rmse_bias < rmse_mean - 0.1
    assert rmse_svd < rmse_bias - 0.005

    # top-N: PureSVD on the binary train matrix vs most popular, recall@10
    seen = np.zeros((n_u, n_i))
    seen[u[tr], i[tr]] = 1.0
    held = np.zeros((n_u, n_i), dtype=bool)
    held[u[test], i[test]] = True

    def recall(scores: np.ndarray) -> float:
        scores = np.where(seen > 0, -np.inf, scores)
        top = np.argpartition(-scores, 10, axis=1)[:, :10]
        hits = np.take_along_axis(held, top, 1).sum(1)
        n = held.sum(1)
        ok = n > 0
        return float((hits[ok] / np.minimum(10, n[ok])).mean())

    v = np.linalg.svd(seen, full_matrices=False)[2][:10].T
    pop = recall(np.broadcast_to(seen.sum(0), seen.shape).copy())
    pure_svd = recall(seen @ v @ v.T)
    assert pure_svd > 1.2 * pop


# -- determinism ---------------------------------------------------------------------------


def _bytes(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in FILES}


def test_same_seed_same_bytes_whatever_the_thread_count(tmp_path):
    synth.generate("ml-latest-small", tmp_path / "a", scale=0.3, seed=7)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        synth.generate("ml-latest-small", tmp_path / "b", scale=0.3, seed=7)
    finally:
        numba.set_num_threads(before)
    synth.generate("ml-latest-small", tmp_path / "c", scale=0.3, seed=8)
    a, b, c = _bytes(tmp_path / "a"), _bytes(tmp_path / "b"), _bytes(tmp_path / "c")
    assert a == b
    assert all(a[name] != c[name] for name in FILES)


# -- sizes, errors, atomic writes ------------------------------------------------------------


def test_scale_and_tiny_shapes(tmp_path):
    s = synth.generate("ml-100k", tmp_path / "half", scale=0.5, seed=0)
    assert (s["users"], s["movies"], s["ratings"]) == (472, 841, 50000)
    tiny = synth.generate("ml-100k", tmp_path / "tiny", scale=0.001, seed=0)
    r = pl.read_csv(tmp_path / "tiny" / "ratings.csv")
    assert tiny["users"] >= 3 and tiny["movies"] >= 20
    assert r.height == tiny["ratings"] <= tiny["users"] * tiny["movies"]
    assert r.group_by("userId").len()["len"].min() >= 20
    assert r.select(["userId", "movieId"]).is_unique().all()


def test_summary_reports_the_planted_model(small):
    summary = small[0]
    assert set(summary) >= {"users", "movies", "ratings", "tags", "seconds", "model"}
    model = summary["model"]
    assert model["rank"] == 10 and model["taste_sd"] > 0 and model["noise_sd"] > 0
    assert abs(sum(model["rating_histogram"].values()) - 1) < 1e-3
    assert summary["tags"] == small[2]["tags"].height


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"like": "ml-5m"}, "ml-100k, ml-1m"),
        ({"like": "ml-100k", "scale": 0}, "scale"),
        ({"like": "ml-100k", "scale": -1.0}, "scale"),
        ({"like": "ml-100k", "scale": float("nan")}, "scale"),
        ({"like": "ml-100k", "scale": "big"}, "scale"),
        ({"like": "ml-100k", "seed": -1}, "seed"),
        ({"like": "ml-100k", "order": "rating"}, "order"),
    ],
)
def test_bad_arguments_raise_data_error(tmp_path, kwargs, message):
    with pytest.raises(DataError, match=message):
        synth.generate(out=tmp_path / "x", **kwargs)
    assert not (tmp_path / "x").exists()


def test_output_path_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        synth.generate("ml-100k", tmp_path / "f", scale=0.05)


def test_interrupted_write_leaves_no_partial_files(tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = {"n": 0}
    original = pl.DataFrame.write_csv

    def flaky(self, file=None, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return original(self, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_csv", flaky)
    with pytest.raises(DataError, match="disk full"):
        synth.generate("ml-100k", out, scale=0.05)
    assert not out.exists() or not any(out.iterdir())
    assert sorted(os.listdir(tmp_path)) in ([], ["out"])  # no temp folder left behind
    monkeypatch.undo()
    synth.generate("ml-100k", out, scale=0.05)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert sorted(os.listdir(tmp_path)) == ["out"]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MOVIEREC_SLOW"), reason="set MOVIEREC_SLOW=1 (~1 min)")
def test_full_ml25m_shape(tmp_path):
    summary = synth.generate("ml-25m", tmp_path / "full", seed=0)
    assert summary["ratings"] == 25000095
    assert 72_000 <= summary["top_movie_ratings"] <= 90_000
    counts = (
        pl.scan_csv(tmp_path / "full" / "ratings.csv").group_by("movieId").len().collect()["len"]
    )
    assert counts.len() == 59047 and (counts <= 5).mean() > 0.3
