"""Nested CV (`movierec cv --tune`): no outer test rating reaches any tuning fit or score."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from contract import checkerboard
from typer.testing import CliRunner

import movierec.cli as cli
import movierec.experiment.tuning as T
from movierec.errors import ConfigError
from movierec.evaluation.metrics import rmse
from movierec.models import make_model
from movierec.split import kfold


@pytest.fixture(scope="module")
def data():
    return checkerboard()[0]


def _pairs(ds: Any) -> set[tuple[int, int]]:
    return set(zip(ds.users.tolist(), ds.items.tolist(), strict=True))


def test_inner_objective_never_sees_an_outer_test_rating(data, monkeypatch) -> None:
    seen: list[tuple[set, set]] = []
    real = T._fit_score

    def spy(build, params, train, target, *a, **k):
        seen.append((_pairs(train), _pairs(target)))
        return real(build, params, train, target, *a, **k)

    monkeypatch.setattr(T, "_fit_score", spy)
    folds, trials = 3, 4
    res = T.nested_cv(data, {"biases": {}}, folds=folds, trials=trials, seed=2)["biases"]
    outer = kfold(data, folds, seed=2)
    assert len(seen) == folds * trials  # every trial went through the spy, fold by fold
    for c, (fit, target) in enumerate(seen):
        s = outer[c // trials]
        test = _pairs(s.test)
        assert not fit & test and not target & test
        assert fit | target == _pairs(s.train) and not fit & target
    # the reported outer score is the chosen params refitted on the outer train, on the test fold
    assert len(res["folds"]) == folds
    for s, f in zip(outer, res["folds"], strict=True):
        m = make_model("biases", **f["params"]).fit(s.train)
        assert f["rmse"] == pytest.approx(
            rmse(m.predict(s.test.users, s.test.items), s.test.ratings)
        )
        assert set(f["params"]) == {"reg_u", "reg_i"} and f["trials"] == trials
    assert res["rmse_mean"] == pytest.approx(np.mean([f["rmse"] for f in res["folds"]]))
    assert res["rmse_std"] == pytest.approx(np.std([f["rmse"] for f in res["folds"]]))


def test_nested_cv_errors(data) -> None:
    with pytest.raises(ConfigError, match="ranks items"):
        T.nested_cv(data, {"ease": {}}, folds=3, trials=1)
    with pytest.raises(ConfigError, match="at least 1 trial"):
        T.nested_cv(data, {"biases": {}}, folds=3, trials=0)
    with pytest.raises(ConfigError, match="no search space"):
        T.nested_cv(data, {"globalmean": {}}, folds=3, trials=1)


def test_cv_tune_command(data, monkeypatch) -> None:
    monkeypatch.setattr(cli, "_load", lambda *a, **k: data)
    r = CliRunner().invoke(
        cli.app, ["cv", "--tune", "2", "--models", "biases", "--folds", "3"], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    assert "outer RMSE of params tuned inside each fold's training part" in r.output
    assert r.output.count("fold ") == 3 and "reg_u=" in r.output
    bad = ["cv", "--tune", "2", "--models", "biases", "--split", "temporal_global"]
    with pytest.raises(cli.MovierecError, match="nested k-fold"):
        CliRunner().invoke(cli.app, bad, catch_exceptions=False)


def test_blend_is_fitted_on_outer_train_only_with_the_folds_nested_choices(
    data, monkeypatch
) -> None:
    from movierec.models.blend import RatingBlend

    fits: list[tuple[set, dict]] = []
    real_fit = RatingBlend.fit

    def spy_fit(self, train, *a, **k):
        fits.append((_pairs(train), self.get_params()["models"]))
        return real_fit(self, train, *a, **k)

    studies: list[tuple[list[str], set, Any]] = []
    real_study = T.run_study

    def spy_study(build, space, parts, *a, **k):
        study = real_study(build, space, parts, *a, **k)
        ((fit, target),) = parts
        studies.append((sorted(space), _pairs(fit) | _pairs(target), study))
        return study

    monkeypatch.setattr(RatingBlend, "fit", spy_fit)
    monkeypatch.setattr(T, "run_study", spy_study)
    folds, trials = 3, 3
    blend = {"models": {"biases": {}, "knnbaseline": {"k": 10}}}
    res = T.nested_cv(data, {"biases": {}, "blend": blend}, folds=folds, trials=trials, seed=1)
    outer = kfold(data, folds, seed=1)
    assert len(fits) == folds  # one blend fit per outer fold, no blend trials
    # biases is tuned once per fold (its choice reused), knnbaseline once per fold for the blend
    assert [names for names, _, _ in studies] == [["reg_i", "reg_u"]] * folds + [
        ["k", "min_k", "shrinkage"]
    ] * folds
    for j, s in enumerate(outer):
        test = _pairs(s.test)
        rows, subs = fits[j]
        assert rows == _pairs(s.train) and not rows & test  # the blend never saw fold j's test
        knn_rows, knn_study = studies[folds + j][1:]
        assert knn_rows == _pairs(s.train)  # knnbaseline's study ran inside fold j's train
        f = res["blend"]["folds"][j]
        assert subs == f["params"]["models"]
        assert subs["biases"] == res["biases"]["folds"][j]["params"]
        assert subs["knnbaseline"] == knn_study.best_params
        assert f["tuned_here"] == ["knnbaseline"] and f["trials"] == trials
        assert len(f["weights"]) == 2
        m = make_model("blend", models=subs, random_state=1).fit(s.train)
        assert f["rmse"] == pytest.approx(
            rmse(m.predict(s.test.users, s.test.items), s.test.ratings)
        )


def test_blend_listed_first_still_takes_the_choices_and_untunable_subs_keep_params(data) -> None:
    blend = {"models": {"globalmean": {}, "biases": {"n_epochs": 5}}}
    res = T.nested_cv(data, {"blend": blend, "biases": {}}, folds=3, trials=2)
    assert list(res) == ["blend", "biases"]
    for f, b in zip(res["blend"]["folds"], res["biases"]["folds"], strict=True):
        assert f["params"]["models"] == {"globalmean": {}, "biases": {"n_epochs": 5, **b["params"]}}
        assert f["tuned_here"] == [] and f["trials"] == 0
    text = T.format_nested(res)
    assert text.count("weights ") == 3 and "biases: n_epochs=5, reg_u=" in text
