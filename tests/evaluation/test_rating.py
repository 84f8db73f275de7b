import numpy as np
import pytest
from contract import checkerboard

from movierec.errors import ConfigError
from movierec.evaluation.rating import cross_validate, format_table, holdout
from movierec.models.baselines import Biases, GlobalMean
from movierec.models.popularity import Popularity
from movierec.split import kfold, random_holdout


@pytest.fixture(scope="module")
def full():
    return checkerboard()[0]


def test_cross_validate_matches_hand_computed_global_mean(full) -> None:
    res = cross_validate(full, {"mean": GlobalMean(), "biases": Biases()}, folds=3, seed=4)
    assert set(res) == {"mean", "biases"}
    r = res["mean"]
    assert len(r["folds"]) == 3
    want = []
    for s in kfold(full, 3, seed=4):
        d = s.test.ratings - s.train.ratings.mean()
        want.append(np.sqrt(np.mean(d.astype(np.float64) ** 2)))
    assert np.isclose(r["rmse_mean"], np.mean(want), atol=1e-5)
    assert np.isclose(r["rmse_std"], np.std(want), atol=1e-5)
    assert r["mae_mean"] <= r["rmse_mean"]
    assert sum(f["n"] for f in r["folds"]) == full.n_ratings
    assert res["biases"]["rmse_mean"] != r["rmse_mean"]
    assert r["fit_s"] >= 0 and r["test_s"] >= 0


def test_fallbacks_are_counted(full) -> None:
    # train without user 0, test on user 0 only: every test pair needs the fallback
    s = random_holdout(full.subset(full.users != 0), 0.3, seed=0)
    s.test = full.subset(full.users == 0)
    out = holdout(s, {"b": Biases()})
    assert out["b"]["test"]["n_fallback"] == s.test.n_ratings > 0
    assert out["b"]["validation"]["n_fallback"] == 0
    res = cross_validate(full, {"b": Biases()}, folds=2)
    assert res["b"]["n_fallback"] == sum(f["n_fallback"] for f in res["b"]["folds"])


def test_holdout_reports_both_parts(full) -> None:
    s = random_holdout(full, 0.2, seed=1, val_fraction=0.2)
    out = holdout(s, {"mean": GlobalMean()})
    mu = s.train.ratings.mean()
    for part, ds in (("validation", s.validation), ("test", s.test)):
        assert np.isclose(out["mean"][part]["mae"], np.mean(np.abs(ds.ratings - mu)), atol=1e-5)
        assert out["mean"][part]["n"] == ds.n_ratings


def test_ranking_models_and_empty_model_sets_are_rejected(full) -> None:
    with pytest.raises(ConfigError, match="does not predict ratings"):
        cross_validate(full, {"pop": Popularity()}, folds=2)
    with pytest.raises(ConfigError):
        cross_validate(full, {}, folds=2)


def test_format_table(full) -> None:
    res = cross_validate(full, {"mean": GlobalMean(), "biases_long_name": Biases()}, folds=2)
    text = format_table(res)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["model", "RMSE"]
    assert lines[2].startswith("mean ") and lines[3].startswith("biases_long_name")
    assert len({len(x) for x in lines[:2]}) == 1  # header and rule aligned
    assert f"{res['mean']['rmse_mean']:.4f}" in lines[2]
    h = format_table(
        holdout(random_holdout(full, 0.2, seed=0, val_fraction=0.2), {"m": GlobalMean()})
    )
    assert "val RMSE" in h.splitlines()[0] and h.splitlines()[2].startswith("m ")
    assert format_table({}) == "(no results)"
