"""The CLI's command functions, end to end on the checkerboard written as MovieLens files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from contract import global_mean_rmse
from workflow_data import write_checkerboard, write_config

from movierec.artifacts import load_bundle
from movierec.errors import ArtifactError, ConfigError, UnknownIdError
from movierec.experiment import commands as C
from movierec.experiment.config import load_config

MODELS = {
    "svd": {"model": "svd", "params": {"n_factors": 8, "n_epochs": 30, "lr_all": 0.01}},
    "ease": {"model": "ease", "params": {"l2": 10.0, "threshold": 4.0}},
    "pop": {"model": "popularity"},
    "biases": {"model": "biases"},
}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workflow")
    mp = pytest.MonkeyPatch()
    mp.setenv("MOVIEREC_HOME", str(root / "home"))
    try:
        data = write_checkerboard(root / "cb")
        cfg = write_config(root / "exp.yaml", data, MODELS)
        for label in MODELS:
            # the split's train part: these tests rely on held-out ratings and cold users
            text = C.train(cfg, label, root / "art" / label, on="train")
            assert f"saved to {root / 'art' / label}" in text
    finally:
        mp.undo()
    return root


def test_train_saves_the_train_part_with_its_label(work: Path) -> None:
    b = load_bundle(work / "art" / "svd")
    cfg = load_config(work / "exp.yaml")
    assert (
        b.meta["extra"]["label"] == "svd" and b.meta["extra"]["split"]["kind"] == "random_holdout"
    )
    assert b.model.n_factors == 8 and b.model.random_state == cfg.seed
    split = cfg.make_split(cfg.load_dataset())
    mean_rmse = global_mean_rmse(split.train, split.validation)
    assert 0 < b.meta["extra"]["metrics"]["validation_rmse"] < mean_rmse - 0.5, mean_rmse
    assert b.meta["extra"]["trained_on"] == "train"
    # trained on the train part only: fewer ratings than the whole data set
    assert 0 < b.meta["train"]["n_ratings"] < 1464
    assert b.history.nnz == b.meta["train"]["n_ratings"]


def test_train_errors(work: Path) -> None:
    with pytest.raises(ConfigError, match="no model labelled 'nope'"):
        C.train(work / "exp.yaml", "nope", work / "x")
    with pytest.raises(ConfigError, match="models.svd.params.n_factor"):
        C.train(work / "exp.yaml", "svd", work / "x", overrides=["models.svd.params.n_factor=3"])


def _rows(text: str, header: str) -> list[str]:
    lines = text.splitlines()
    start = next(j for j, ln in enumerate(lines) if ln.startswith(header))
    out = []
    for ln in lines[start + 1 :]:
        if not ln.startswith("  "):
            break
        out.append(ln)
    return out


def test_recommend_shows_history_then_titled_recommendations(work: Path) -> None:
    text = C.recommend(work / "art" / "svd", user=1, k=4, history=3)
    hist = _rows(text, "user 1:")
    assert len(hist) == 3 and all(re.match(r"\s+[45]\.0  Movie \d+ \(\d{4}\)", h) for h in hist)
    recs = _rows(text, "top 4 for user 1 (svd)")
    assert len(recs) == 4 and recs[0].lstrip().startswith("1.")
    # user 1 is in the first taste group: good recommendations are Drama items 0..19
    assert all("Drama" in r for r in recs)
    b = load_bundle(work / "art" / "svd")
    u = int(b.user_index(1)[0])
    seen = {b.items["title"][int(i)] for i in b.history[u].indices}
    for r in recs:
        title = re.search(r"(Movie \d+) \(", r)[1]
        assert title not in seen
    assert "because you rated Movie" in text
    scores = [float(re.search(r"\s(-?\d+\.\d{3})(\s|$)", r)[1]) for r in recs]
    assert scores == sorted(scores, reverse=True)


def test_recommend_explanations_only_where_similarity_exists(work: Path) -> None:
    assert "because you rated" in C.recommend(work / "art" / "ease", user=2, k=3)
    assert "because you rated" not in C.recommend(work / "art" / "pop", user=2, k=3)


def test_recommend_unknown_and_cold_users(work: Path) -> None:
    with pytest.raises(UnknownIdError, match="user 999 is not in this model's training data"):
        C.recommend(work / "art" / "svd", user=999)
    b = load_bundle(work / "art" / "svd")
    counts = np.diff(b.history.indptr)
    cold = [int(b.user_map.raw[u]) for u in np.flatnonzero(counts == 0)]
    if cold:  # a user whose ratings all fell in validation/test
        text = C.recommend(work / "art" / "svd", user=cold[0], k=3)
        assert "no training ratings" in text and "top 3" in text
    with pytest.raises(ConfigError, match="k must be >= 1"):
        C.recommend(work / "art" / "svd", user=1, k=0)


def test_similar_fuzzy_titles(work: Path) -> None:
    art = work / "art" / "ease"
    text = C.similar(art, "movie 3", k=5)
    assert text.splitlines()[0] == "movies most similar to Movie 3 (1993) [id 37]:"
    rows = text.splitlines()[1:]
    assert len(rows) == 5 and all("Drama" in r for r in rows)  # same taste block
    assert "Movie 3 (1993)" not in "\n".join(rows)
    assert C.similar(art, "37", k=2).splitlines()[0].endswith("[id 37]:")
    assert C.similar(art, "Movie 3 (1993)", k=2) == C.similar(art, "movie 3", k=2)
    # an exact title wins over longer ones containing it
    assert "Movie 1 (1991) [id 17]" in C.similar(art, "movie 1", k=1).splitlines()[0]
    with pytest.raises(ConfigError, match=r"'ovie 1' matches 11 movies: .*give the year"):
        C.similar(art, "ovie 1")  # no exact title; 'Movie 1', 'Movie 10'..'Movie 19' contain it
    with pytest.raises(
        UnknownIdError, match=r"no movie matches 'Moive 33'; did you mean: Movie 33"
    ):
        C.similar(art, "Moive 33")
    with pytest.raises(UnknownIdError, match="no movie matches 'zzzz'$"):
        C.similar(art, "zzzz")
    with pytest.raises(ConfigError, match="has no item similarity"):
        C.similar(work / "art" / "pop", "movie 3")


def test_predict(work: Path) -> None:
    b = load_bundle(work / "art" / "svd")
    text = C.predict(work / "art" / "svd", user=1, movie="Movie 25")
    i = int(b.item_index(257)[0])
    want = b.model.predict(b.user_index(1), [i])[0]
    assert f"predicted rating {want:.2f}" in text and "Movie 25 (1995)" in text
    assert C.predict(work / "art" / "svd", user=1, movie="257") == text
    # a movie the user rated in training says so
    rated = int(b.item_map.raw[b.history[int(b.user_index(1)[0])].indices[0]])
    assert "the user rated it" in C.predict(work / "art" / "svd", user=1, movie=str(rated))
    with pytest.raises(ConfigError, match="does not predict ratings"):
        C.predict(work / "art" / "ease", user=1, movie="37")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_reproduces_predictions_without_movierec(
    work: Path, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / "exp"
    text = C.export(work / "art" / "svd", format=fmt, out=out)
    assert "8 factors, with biases" in text
    read = pl.read_csv if fmt == "csv" else pl.read_parquet
    users, items = read(out / f"users.{fmt}"), read(out / f"items.{fmt}")
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["n_factors"] == 8 and meta["formula"].startswith("rating = clip(")
    fcols = [f"f{j}" for j in range(8)]
    P, Q = users.select(fcols).to_numpy(), items.select(fcols).to_numpy()
    est = (
        meta["global_mean"] + users["bias"].to_numpy()[:, None] + items["bias"].to_numpy()[None, :]
    )
    est = np.clip(est + P @ Q.T, *meta["rating_scale"])
    b = load_bundle(work / "art" / "svd")
    u = np.flatnonzero(users["n_ratings"].to_numpy() > 0)[:10]
    want = b.model.predict(
        np.repeat(u, b.model.n_items_), np.tile(np.arange(b.model.n_items_), u.size)
    )
    np.testing.assert_allclose(est[u].ravel(), want, atol=1e-4)
    assert users["user_id"].to_list() == b.user_map.raw.tolist()
    assert items["title"][3] == "Movie 3" and items["genres"][3] == "Drama"


def test_export_biases_only_and_refusals(work: Path, tmp_path: Path) -> None:
    text = C.export(work / "art" / "biases", out=tmp_path / "b")
    assert "0 factors, with biases" in text
    cols = pl.read_csv(tmp_path / "b" / "items.csv").columns
    assert "bias" in cols and "f0" not in cols
    with pytest.raises(ConfigError, match="no user/item factors or biases"):
        C.export(work / "art" / "pop", out=tmp_path / "p")
    with pytest.raises(ConfigError, match="unknown format 'xlsx'"):
        C.export(work / "art" / "svd", format="xlsx")
    with pytest.raises(ArtifactError, match="does not exist"):
        C.export(tmp_path / "nothing")


def test_tune_command_writes_a_ready_config(work: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MOVIEREC_HOME", str(work / "home"))
    out = tmp_path / "tuned.yaml"
    text = C.tune(work / "exp.yaml", "biases", trials=3, metric="rmse", out=out)
    assert "tuned biases on the tuning split (each user's last 5 training ratings)" in text
    assert ": 3 trials" in text
    assert re.search(r"check on the validation part \(not used to choose\): rmse \d\.\d{4}", text)
    assert re.search(r"best rmse \d\.\d{4}", text) and f"wrote {out}" in text
    cfg = load_config(out)
    assert set(cfg.models["biases"].params) == {"reg_u", "reg_i"}
    text = C.tune(work / "exp.yaml", "ease", trials=2, sampler="grid", out=tmp_path / "e.yaml")
    assert "best ndcg@10" in text and "2 trials" in text
