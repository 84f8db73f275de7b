"""Optuna tuning: reproducible, inside the training part, written config reproduces the best."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from contract import checkerboard

import movierec.experiment.tuning as T
from movierec.errors import ConfigError
from movierec.evaluation.evaluator import evaluate
from movierec.experiment.config import ExperimentConfig, load_config, parse_config
from movierec.experiment.tuning import (
    grid_values,
    score_on,
    tune,
    tune_for_compare,
    tuning_split,
    validation_score,
    validation_test_rank_correlation,
)
from movierec.models import REGISTRY, model_class
from movierec.models.baselines import Biases

SMALL_SVD = {
    "n_factors": {"type": "int", "low": 2, "high": 8},
    "n_epochs": {"type": "int", "low": 3, "high": 8},
    "lr_all": {"type": "float", "low": 0.002, "high": 0.05, "log": True},
    "reg_all": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
}
EASE_GRID = {
    "l2": {"type": "float", "low": 1, "high": 1000, "log": True, "grid": [1.0, 30.0, 1000.0]}
}


@pytest.fixture(scope="module")
def data():
    return checkerboard()[0]


def _cfg(models: dict[str, Any], **kw: Any) -> ExperimentConfig:
    raw = {
        "dataset": "checkerboard",
        "seed": 5,
        "split": {"kind": "random_holdout", "test_fraction": 0.2, "val_fraction": 0.2},
        "metrics": {"k": [5, 10], "primary": "rmse"},
        "tuning": {"n_tune": 3, "min_train": 3},
        "models": models,
        **kw,
    }
    return parse_config(raw)


def _svd_cfg() -> ExperimentConfig:
    return _cfg({"svd": {"params": {"n_factors": 4, "n_epochs": 5}, "search": SMALL_SVD}})


def test_search_spaces_are_declared_on_the_models() -> None:
    assert not hasattr(T, "SEARCH_SPACES")  # no central table: each model declares its own
    spaces = {}
    for name in REGISTRY:
        cls = model_class(name)
        missing = set(cls.search_space) - set(cls._param_names())
        assert not missing, f"{name}: {missing} are not params of {cls.__name__}"
        for spec in cls.search_space.values():
            assert len(grid_values(spec)) >= 1
        spaces[name] = cls.search_space
    for name in ("svd", "als", "ials", "ease", "itemknn", "bpr", "biases"):
        assert spaces[name], f"{name} has no search space"
    assert not spaces["globalmean"]


def test_tuning_split_holds_out_each_users_latest_training_ratings(data) -> None:
    ts = tuning_split(data, n_tune=3, min_train=3)
    assert ts.validation.n_ratings == 0
    assert ts.train.n_ratings + ts.test.n_ratings == data.n_ratings
    for u in np.unique(data.users):
        mine = data.timestamps[data.users == u]
        held = ts.test.timestamps[ts.test.users == u]
        assert held.size == (3 if mine.size >= 6 else 0)
        if held.size:  # the held-out ratings are her most recent ones
            assert held.min() > ts.train.timestamps[ts.train.users == u].max()
    with pytest.raises(ConfigError, match="lower tuning.n_tune"):
        tuning_split(data, n_tune=100, min_train=5)


def test_tpe_is_reproducible_and_written_config_reproduces_best(data, tmp_path: Path) -> None:
    cfg = _svd_cfg()
    best, study = tune(cfg, "svd", trials=5, metric="rmse", dataset=data, out=tmp_path / "t.yaml")
    _, again = tune(cfg, "svd", trials=5, metric="rmse", dataset=data)
    assert [t.params for t in study.trials] == [t.params for t in again.trials]
    assert [t.value for t in study.trials] == [t.value for t in again.trials]
    # the first trial is the config's own params, so tuning never ends worse than it
    assert study.trials[0].params == {
        "n_factors": 4,
        "n_epochs": 5,
        "lr_all": 0.005,
        "reg_all": 0.02,
    }
    assert study.best_value <= study.user_attrs["default_value"]
    assert best["random_state"] == 5 and best["n_factors"] == study.best_params["n_factors"]
    written = load_config(tmp_path / "t.yaml")
    assert written.models["svd"].params == best
    header = (tmp_path / "t.yaml").read_text()
    assert "tuning split" in header.splitlines()[0] and "no test rating was read" in header
    # the written YAML, loaded fresh, gives the best trial's value on the tuning split exactly
    split = written.make_split(data)
    ts = tuning_split(split.train, 3, 3)
    m = written.build_model("svd").fit(ts.train)
    assert score_on(m, ts.train, ts.test, "rmse") == pytest.approx(study.best_value, abs=1e-9)
    # ... and the validation check is the tuned params fitted on the whole training part
    full = written.build_model("svd").fit(split.train)
    v = validation_score(full, split, "rmse", written)
    assert study.user_attrs["validation_tuned"] == pytest.approx(v, abs=1e-9)
    # epochs were reported, so the median pruner has something to prune on
    assert all(len(t.intermediate_values) >= 3 for t in study.trials)


def test_tuning_never_reads_the_test_part(data, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _svd_cfg()
    real = ExperimentConfig.make_split

    class Poison:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"tuning read the test part ({name})")

    def poisoned(self: ExperimentConfig, ds: Any) -> Any:
        s = real(self, ds)
        s.test = Poison()
        return s

    _, clean = tune(cfg, "svd", trials=3, metric="rmse", dataset=data)
    _, on_val = tune(cfg, "svd", trials=3, metric="rmse", dataset=data, on="validation")
    monkeypatch.setattr(ExperimentConfig, "make_split", poisoned)
    _, study = tune(cfg, "svd", trials=3, metric="rmse", dataset=data)
    assert study.best_value == clean.best_value
    _, again = tune(cfg, "svd", trials=3, metric="rmse", dataset=data, on="validation")
    assert again.best_value == on_val.best_value
    assert on_val.best_value != clean.best_value  # the two objectives score different ratings
    _, folds = tune(cfg, "svd", trials=2, metric="rmse", dataset=data, folds=3)
    assert folds.best_value > 0


def test_grid_is_exhaustive(data) -> None:
    space = {
        "reg_u": {"type": "float", "low": 1, "high": 20, "grid": [1.0, 20.0]},
        "reg_i": {"type": "float", "low": 1, "high": 20, "grid": [1.0, 5.0, 20.0]},
    }
    cfg = _cfg({"biases": {"search": space}})
    best, study = tune(cfg, "biases", trials=None, metric="rmse", sampler="grid", dataset=data)
    combos = {(t.params["reg_u"], t.params["reg_i"]) for t in study.trials}
    assert len(study.trials) == 6 and len(combos) == 6
    vals = {(t.params["reg_u"], t.params["reg_i"]): t.value for t in study.trials}
    assert study.best_value == min(vals.values())
    assert (best["reg_u"], best["reg_i"]) == min(vals, key=vals.get)


def test_folds_average_cross_validation_on_train(data) -> None:
    cfg = _cfg(
        {"biases": {"search": {"reg_u": {"type": "float", "low": 5, "high": 5, "grid": [5.0]}}}}
    )
    _, study = tune(cfg, "biases", trials=1, metric="mae", sampler="grid", folds=3, dataset=data)
    t = study.trials[0]
    assert sorted(t.intermediate_values) == [0, 1, 2]
    from movierec.split import kfold

    split = cfg.make_split(data)
    per_fold = []
    for fs in kfold(split.train, k=3, seed=5):
        m = Biases(reg_u=5.0).fit(fs.train)
        per_fold.append(np.mean(np.abs(m.predict(fs.test.users, fs.test.items) - fs.test.ratings)))
    assert t.value == pytest.approx(np.mean(per_fold), rel=1e-6)


def test_ranking_metric_uses_the_evaluator_on_the_tuning_split(data) -> None:
    cfg = _cfg({"ease": {"search": EASE_GRID}}, metrics={"k": [5, 10], "primary": "ndcg@10"})
    best, study = tune(cfg, "ease", trials=None, sampler="grid", dataset=data)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.user_attrs["metric"] == "ndcg@10"
    assert 0 < study.best_value <= 1
    ts = tuning_split(cfg.make_split(data).train, 3, 3)
    ts.validation = ts.test  # evaluate's validation part = the tuning target
    res = evaluate({"e": cfg.build_model("ease", **best)}, ts, part="validation", k=(10,))
    assert res.summary["e"]["ndcg@10"] == pytest.approx(study.best_value)


def test_errors(data) -> None:
    cfg = _cfg(
        {"ease": {}, "biases": {}, "pop": {"model": "popularity"}, "gm": {"model": "globalmean"}}
    )
    with pytest.raises(ConfigError, match="ranks items and has no rmse"):
        tune(cfg, "ease", trials=1, metric="rmse", dataset=data)
    with pytest.raises(ConfigError, match="unknown sampler"):
        tune(cfg, "biases", trials=1, sampler="random", dataset=data)
    with pytest.raises(ConfigError, match="no search space for model 'globalmean'"):
        tune(cfg, "gm", trials=1, dataset=data)
    with pytest.raises(ConfigError, match="no model labelled 'svd'"):
        tune(cfg, "svd", trials=1, dataset=data)
    with pytest.raises(ConfigError, match="unknown tuning target"):
        tune(cfg, "biases", trials=1, dataset=data, on="test")
    no_val = _cfg(
        {"biases": {}}, split={"kind": "random_holdout", "test_fraction": 0.2, "val_fraction": 0.0}
    )
    with pytest.raises(ConfigError, match="no validation ratings"):
        tune(no_val, "biases", trials=1, metric="rmse", dataset=data, on="validation")
    with pytest.raises(ConfigError, match="folds must be >= 2"):
        tune(cfg, "biases", trials=1, folds=1, dataset=data)


# -- tuning: in the config and tune_for_compare -----------------------------------------------
def _msg(raw_tuning: dict[str, Any], models: dict[str, Any] | None = None) -> str:
    raw = {"models": models or {"ease": {}, "gm": {"model": "globalmean"}}, "tuning": raw_tuning}
    with pytest.raises(ConfigError) as e:
        parse_config(raw, "exp.yaml")
    assert "\n" not in str(e.value)
    return str(e.value)


def test_tuning_section_is_validated() -> None:
    assert "tuning.trails: unknown key" in _msg({"trails": 3})
    assert "tuning.trials" in _msg({"trials": 0})
    assert "tuning.time_budget_s" in _msg({"time_budget_s": -1})
    assert "tuning.models: 'svd' is not a model label" in _msg({"models": ["svd"]})
    assert "tuning.models: gm (globalmean) has no search space" in _msg({"models": ["gm"]})
    assert "ease ranks items and has no rmse" in _msg({"models": {"ease": {"metric": "rmse"}}})
    assert "must be rmse, mae or look like 'ndcg@10'" in _msg({"metric": "ndcg"})
    assert "tuning.models.ease.trails: unknown key" in _msg({"models": {"ease": {"trails": 2}}})
    cfg = parse_config(
        {
            "models": {"ease": {}, "ials": {}},
            "tuning": {"trials": 4, "model_time_budget_s": 9, "models": {"ease": {"trials": 2}}},
        }
    )
    assert cfg.tuning.per_model("ease").trials == 2
    assert cfg.tuning.per_model("ease").time_budget_s == 9
    assert cfg.tuning.per_model("ials").trials == 4


def _compare_cfg(**tuning: Any) -> ExperimentConfig:
    return _cfg(
        {
            "ease": {"search": EASE_GRID},
            "biases": {"params": {"reg_u": 5.0}},
            "gm": {"model": "globalmean"},
            "pop": {"model": "popularity"},
        },
        split={"kind": "temporal_per_user", "n_val": 2, "n_test": 3, "min_train": 3},
        metrics={"k": [5, 10], "primary": "ndcg@10"},
        tuning={"enabled": True, "n_tune": 3, "min_train": 3, **tuning},
    )


def test_tune_for_compare_reads_only_the_training_part(data) -> None:
    cfg = _compare_cfg(trials=4, models={"ease": None, "biases": {"metric": "rmse"}})
    split = cfg.make_split(data)
    report: dict[str, Any] = {}
    said: list[str] = []
    chosen = tune_for_compare(cfg, split, progress=said.append, report=report)
    assert set(chosen) == {"ease", "biases"}
    assert report["ease"]["trials"] == 4 and report["biases"]["metric"] == "rmse"
    assert report["ease"]["metric"] == "ndcg@10" and any("tuning ease" in s for s in said)
    for label, params in chosen.items():
        cfg.build_model(label, **params)  # ready for compare to fit
    # poisoned validation and test ratings (flipped, or unreadable) change nothing
    flip = cfg.make_split(data)
    for part in (flip.validation, flip.test):
        part.ratings[:] = 6.0 - part.ratings
        part.items[:] = part.items[::-1]

    class Poison:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"tune_for_compare read a held-out part ({name})")

    assert tune_for_compare(cfg, flip) == chosen
    flip.validation, flip.test = Poison(), Poison()
    assert tune_for_compare(cfg, flip) == chosen


def test_tune_for_compare_defaults_and_disabled(data) -> None:
    cfg = _compare_cfg(trials=2)
    split = cfg.make_split(data)
    report: dict[str, Any] = {}
    chosen = tune_for_compare(cfg, split, report=report)
    # models=None: every model with a search space (popularity and biases have one, gm not)
    assert set(chosen) == {"ease", "biases", "pop"}
    assert report["biases"]["metric"] == "ndcg@10"  # the config's primary metric
    assert all(r["trials"] == 2 for r in report.values())
    off = cfg.model_copy(update={"tuning": cfg.tuning.model_copy(update={"enabled": False})})
    assert tune_for_compare(off, split) == {}


def test_validation_test_rank_correlation() -> None:
    def summ(values: list[float]) -> dict[str, dict[str, float]]:
        return {f"m{j}": {"ndcg@10": v} for j, v in enumerate(values)}

    f = validation_test_rank_correlation
    assert f(summ([0.1, 0.2, 0.3, 0.4]), summ([0.2, 0.3, 0.5, 0.9]), "ndcg@10") == pytest.approx(1)
    assert f(summ([0.1, 0.2, 0.3]), summ([0.3, 0.2, 0.1]), "ndcg@10") == pytest.approx(-1)
    # one swap among 4 models: rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert f(summ([0.1, 0.2, 0.3, 0.4]), summ([0.2, 0.1, 0.3, 0.4]), "ndcg@10") == pytest.approx(
        0.8
    )
    val = {**summ([0.1, 0.2, 0.3]), "only_val": {"ndcg@10": 0.9}, "nan": {"ndcg@10": math.nan}}
    test = {**summ([0.1, 0.2, 0.3]), "nan": {"ndcg@10": 0.0}}
    assert f(val, test, "ndcg@10") == pytest.approx(1)  # unmatched and NaN models left out
    assert math.isnan(f(summ([0.1, 0.2]), summ([0.1, 0.2]), "ndcg@10"))
    assert math.isnan(f(summ([0.1, 0.1, 0.1]), summ([0.1, 0.2, 0.3]), "ndcg@10"))
