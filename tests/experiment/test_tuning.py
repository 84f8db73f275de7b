"""Optuna tuning: reproducible, validation-only, written config reproduces the best trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from contract import checkerboard

from movierec.errors import ConfigError
from movierec.experiment.config import ExperimentConfig, load_config, parse_config
from movierec.experiment.tuning import SEARCH_SPACES, grid_values, tune, validation_score
from movierec.models import REGISTRY, model_class

SMALL_SVD = {
    "n_factors": {"type": "int", "low": 2, "high": 8},
    "n_epochs": {"type": "int", "low": 3, "high": 8},
    "lr_all": {"type": "float", "low": 0.002, "high": 0.05, "log": True},
    "reg_all": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
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
        "models": models,
        **kw,
    }
    return parse_config(raw)


def _svd_cfg() -> ExperimentConfig:
    pytest.importorskip("movierec.models.mf")
    return _cfg({"svd": {"params": {"n_factors": 4, "n_epochs": 5}, "search": SMALL_SVD}})


def test_search_spaces_name_real_params() -> None:
    for name, space in SEARCH_SPACES.items():
        assert name in REGISTRY, name
        try:
            cls = model_class(name)
        except ConfigError:
            continue  # module not written yet / optional dependency
        missing = set(space) - set(cls._param_names())
        assert not missing, f"{name}: {missing} are not params of {cls.__name__}"
        for spec in space.values():
            assert len(grid_values(spec)) >= 1


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
    # the written YAML, loaded fresh, gives the best trial's validation RMSE exactly
    written = load_config(tmp_path / "t.yaml")
    assert written.models["svd"].params == best
    assert "best validation rmse" in (tmp_path / "t.yaml").read_text().splitlines()[0]
    split = written.make_split(data)
    m = written.build_model("svd").fit(split.train)
    assert validation_score(m, split, "rmse", written) == pytest.approx(study.best_value, abs=1e-9)
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
    monkeypatch.setattr(ExperimentConfig, "make_split", poisoned)
    _, study = tune(cfg, "svd", trials=3, metric="rmse", dataset=data)
    assert study.best_value == clean.best_value
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
    # the objective is the mean of the per-fold values (reported as a running mean)
    from movierec.models.baselines import Biases
    from movierec.split import kfold

    split = cfg.make_split(data)
    per_fold = []
    for fs in kfold(split.train, k=3, seed=5):
        m = Biases(reg_u=5.0).fit(fs.train)
        per_fold.append(np.mean(np.abs(m.predict(fs.test.users, fs.test.items) - fs.test.ratings)))
    assert t.value == pytest.approx(np.mean(per_fold), rel=1e-6)


def test_ranking_metric_uses_the_evaluator_on_validation(data) -> None:
    pytest.importorskip("movierec.evaluation.evaluator")
    space = {
        "l2": {"type": "float", "low": 1, "high": 1000, "log": True, "grid": [1.0, 30.0, 1000.0]}
    }
    cfg = _cfg({"ease": {"search": space}}, metrics={"k": [5, 10], "primary": "ndcg@10"})
    best, study = tune(cfg, "ease", trials=None, sampler="grid", dataset=data)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    assert study.user_attrs["metric"] == "ndcg@10"
    assert 0 < study.best_value <= 1
    from movierec.evaluation.evaluator import evaluate

    split = cfg.make_split(data)
    res = evaluate({"e": cfg.build_model("ease", **best)}, split, part="validation", k=(10,))
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
    no_val = _cfg(
        {"biases": {}}, split={"kind": "random_holdout", "test_fraction": 0.2, "val_fraction": 0.0}
    )
    with pytest.raises(ConfigError, match="no validation ratings"):
        tune(no_val, "biases", trials=1, metric="rmse", dataset=data)
    with pytest.raises(ConfigError, match="folds must be >= 2"):
        tune(cfg, "biases", trials=1, folds=1, dataset=data)
