"""Hyperparameter tuning with Optuna on the validation part (never the test part).

:func:`tune` searches one model of an experiment config: a seeded TPE sampler (the same
seed gives the same trials) or an exhaustive grid, optionally k-fold cross-validation on
the training part, and median pruning of bad trials from the validation RMSE after each
epoch (rating metrics). The best params are written back as a ready config.

Search spaces are declared per registry name in :data:`SEARCH_SPACES`; a model class may
override with a ``search_space`` class attribute (a dict, or a classmethod returning one),
and a config with ``models.<label>.search`` (highest priority).
Each entry maps a param name to a spec::

    {"type": "float", "low": 1e-3, "high": 0.1, "log": True, "grid": [0.003, 0.01, 0.03]}
    {"type": "int", "low": 10, "high": 200, "log": True, "grid": [20, 50, 100]}
    {"type": "categorical", "choices": ["none", "bm25"]}

``grid`` lists the values the grid sampler tries (default: low, middle, high, or choices).
Names that the model does not take are ignored (and listed in the study's user attrs).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from movierec.errors import ConfigError
from movierec.evaluation.metrics import mae, rmse
from movierec.experiment.config import RATING_METRICS, ExperimentConfig, dump_config

SEARCH_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "biases": {
        "reg_u": {"type": "float", "low": 0.5, "high": 50.0, "log": True, "grid": [2, 5, 15, 30]},
        "reg_i": {"type": "float", "low": 0.5, "high": 50.0, "log": True, "grid": [2, 5, 10, 25]},
    },
    "svd": {
        "n_factors": {"type": "int", "low": 10, "high": 200, "log": True, "grid": [20, 50, 100]},
        "n_epochs": {"type": "int", "low": 10, "high": 60, "grid": [20, 40]},
        "lr_all": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True, "grid": [0.005, 0.01]},
        "reg_all": {
            "type": "float",
            "low": 5e-3,
            "high": 0.3,
            "log": True,
            "grid": [0.02, 0.05, 0.1],
        },
    },
    "svdpp": {
        "n_factors": {"type": "int", "low": 5, "high": 60, "log": True, "grid": [10, 20, 40]},
        "n_epochs": {"type": "int", "low": 10, "high": 40, "grid": [20, 30]},
        "lr_all": {"type": "float", "low": 1e-3, "high": 2e-2, "log": True, "grid": [0.005, 0.007]},
        "reg_all": {"type": "float", "low": 5e-3, "high": 0.3, "log": True, "grid": [0.02, 0.05]},
    },
    "als": {
        "n_factors": {"type": "int", "low": 5, "high": 200, "log": True, "grid": [10, 50, 100]},
        "n_epochs": {"type": "int", "low": 5, "high": 30, "grid": [10, 20]},
        "reg": {"type": "float", "low": 1e-2, "high": 10.0, "log": True, "grid": [0.1, 1.0, 5.0]},
        "reg_bias": {"type": "float", "low": 1e-2, "high": 30.0, "log": True, "grid": [0.1, 5.0]},
    },
    "nmf": {
        "n_factors": {"type": "int", "low": 5, "high": 60, "log": True, "grid": [10, 15, 30]},
        "n_epochs": {"type": "int", "low": 20, "high": 100, "grid": [50, 80]},
        "reg_pu": {
            "type": "float",
            "low": 1e-3,
            "high": 0.5,
            "log": True,
            "grid": [0.02, 0.06, 0.2],
        },
        "reg_qi": {
            "type": "float",
            "low": 1e-3,
            "high": 0.5,
            "log": True,
            "grid": [0.02, 0.06, 0.2],
        },
    },
    "knnbaseline": {
        "k": {"type": "int", "low": 10, "high": 200, "log": True, "grid": [20, 40, 80]},
        "min_k": {"type": "int", "low": 1, "high": 10, "grid": [1, 3, 5]},
        "shrinkage": {"type": "float", "low": 0.0, "high": 300.0, "grid": [0, 50, 100, 200]},
    },
    "itemknn": {
        "k": {"type": "int", "low": 10, "high": 1000, "log": True, "grid": [20, 50, 100, 200, 500]},
        "shrink": {"type": "float", "low": 0.0, "high": 200.0, "grid": [0, 10, 50]},
        "weighting": {"type": "categorical", "choices": ["none", "tfidf", "bm25"]},
        "binary": {"type": "categorical", "choices": [True, False]},
    },
    "ials": {
        "factors": {"type": "int", "low": 16, "high": 256, "log": True, "grid": [32, 64, 128]},
        "regularization": {
            "type": "float",
            "low": 1e-3,
            "high": 100.0,
            "log": True,
            "grid": [0.01, 1.0, 10.0],
        },
        "alpha": {
            "type": "float",
            "low": 0.5,
            "high": 100.0,
            "log": True,
            "grid": [1.0, 10.0, 40.0],
        },
        "iterations": {"type": "int", "low": 5, "high": 30, "grid": [10, 20]},
    },
    "bpr": {
        "factors": {"type": "int", "low": 16, "high": 256, "log": True, "grid": [32, 64, 128]},
        "learning_rate": {
            "type": "float",
            "low": 1e-3,
            "high": 0.2,
            "log": True,
            "grid": [0.01, 0.05],
        },
        "regularization": {
            "type": "float",
            "low": 1e-5,
            "high": 0.1,
            "log": True,
            "grid": [1e-4, 1e-2],
        },
        "iterations": {"type": "int", "low": 10, "high": 200, "log": True, "grid": [50, 100]},
    },
    "ease": {
        "l2": {
            "type": "float",
            "low": 1.0,
            "high": 1e4,
            "log": True,
            "grid": [50, 200, 500, 1000, 3000],
        },
    },
    "content": {
        "title_weight": {"type": "float", "low": 0.0, "high": 2.0, "grid": [0.0, 0.5, 1.0]},
        "genre_weight": {"type": "float", "low": 0.0, "high": 2.0, "grid": [0.5, 1.0, 2.0]},
        "tag_weight": {"type": "float", "low": 0.0, "high": 2.0, "grid": [0.0, 1.0, 2.0]},
    },
    "popularity": {
        "half_life_days": {
            "type": "float",
            "low": 7.0,
            "high": 3650.0,
            "log": True,
            "grid": [30, 365, 3650],
        },
    },
    "ncf": {
        "factors": {"type": "int", "low": 8, "high": 64, "log": True, "grid": [16, 32]},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "grid": [1e-3, 3e-3]},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "grid": [0.0, 0.2]},
        "epochs": {"type": "int", "low": 5, "high": 30, "grid": [10, 20]},
    },
}
SAMPLERS = ("tpe", "grid")


# -- search spaces ----------------------------------------------------------------------------
def _check_spec(name: str, spec: dict[str, Any]) -> None:
    t = spec.get("type")
    if t in ("int", "float"):
        if not ("low" in spec and "high" in spec and spec["low"] <= spec["high"]):
            raise ConfigError(f"search space {name!r}: give low <= high")
        if spec.get("log") and spec["low"] <= 0:
            raise ConfigError(f"search space {name!r}: a log range needs low > 0")
    elif t == "categorical":
        if not spec.get("choices"):
            raise ConfigError(f"search space {name!r}: give a non-empty list of choices")
    else:
        raise ConfigError(f"search space {name!r}: type must be int, float or categorical")


def grid_values(spec: dict[str, Any]) -> list[Any]:
    """The values the grid sampler tries for one param spec."""
    if "grid" in spec:
        return list(spec["grid"])
    if spec["type"] == "categorical":
        return list(spec["choices"])
    lo, hi = spec["low"], spec["high"]
    mid = math.sqrt(lo * hi) if spec.get("log") else (lo + hi) / 2
    vals = [lo, mid, hi]
    if spec["type"] == "int":
        vals = [int(round(v)) for v in vals]
    return sorted(set(vals))


def search_space(cfg: ExperimentConfig, label: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(space limited to the model's params, names ignored) for the model under ``label``."""
    from movierec.models import model_class

    spec = cfg.spec(label)
    cls = model_class(spec.model)
    own = getattr(cls, "search_space", None)
    if callable(own):  # a classmethod returning the space
        own = own()
    space = spec.search or own or SEARCH_SPACES.get(spec.model.lower())
    if not space:
        raise ConfigError(
            f"no search space for model {spec.model!r}: add `search:` under models.{label} "
            "in the config"
        )
    valid = set(cls._param_names())
    kept = {k: dict(v) for k, v in space.items() if k in valid}
    ignored = sorted(set(space) - valid)
    if not kept:
        raise ConfigError(
            f"the search space of {spec.model!r} names none of its params {sorted(valid)}"
        )
    for k, v in kept.items():
        _check_spec(k, v)
    return kept, ignored


def _suggest(trial: Any, space: dict[str, dict[str, Any]], grid: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, s in space.items():
        if grid:
            out[name] = trial.suggest_categorical(name, grid_values(s))
        elif s["type"] == "int":
            out[name] = trial.suggest_int(
                name, int(s["low"]), int(s["high"]), log=bool(s.get("log"))
            )
        elif s["type"] == "float":
            out[name] = trial.suggest_float(
                name, float(s["low"]), float(s["high"]), log=bool(s.get("log"))
            )
        else:
            out[name] = trial.suggest_categorical(name, list(s["choices"]))
    return out


def _in_space(value: Any, s: dict[str, Any], grid: bool) -> bool:
    if grid:
        return value in grid_values(s)
    if s["type"] == "categorical":
        return value in s["choices"]
    return isinstance(value, int | float) and s["low"] <= value <= s["high"]


# -- objective --------------------------------------------------------------------------------
def validation_score(
    model: Any, split: Any, metric: str, cfg: ExperimentConfig, part: str = "validation"
) -> float:
    """``metric`` of a fitted model on ``split.validation`` (or ``part``)."""
    target = split.validation if part == "validation" else split.test
    if target.n_ratings == 0:
        raise ConfigError(
            f"the split has no {part} ratings to tune on: set split.n_val (temporal_per_user), "
            "split.val_fraction (random_holdout) or a validation fraction (temporal_global)"
        )
    if metric in RATING_METRICS:
        pred = model.predict(target.users, target.items)
        return (rmse if metric == "rmse" else mae)(pred, target.ratings)
    from movierec.evaluation.evaluator import evaluate

    k = int(metric.split("@")[1])
    res = evaluate(
        {"m": model},
        split,
        part=part,
        k=(k,),
        threshold=cfg.metrics.threshold,
        fit=False,
        bucket_edges=tuple(cfg.buckets),
    )
    s = res.summary["m"]
    if metric not in s:
        names = sorted(x for x in s if x.endswith(f"@{k}") and not x.endswith("_se"))
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(names)}, rmse, mae")
    return float(s[metric])


def _check_metric(metric: str, rating_model: bool, label: str) -> None:
    if metric in RATING_METRICS:
        if not rating_model:
            raise ConfigError(f"{label} ranks items and has no {metric}; tune it on e.g. ndcg@10")
        return
    name, at, k = metric.partition("@")
    if not at or not k.isdigit() or int(k) < 1:
        raise ConfigError(f"metric {metric!r} must be rmse, mae or a ranking metric like ndcg@10")


def tune(
    cfg: ExperimentConfig,
    label: str,
    trials: int | None = 30,
    metric: str | None = None,
    sampler: str = "tpe",
    folds: int | None = None,
    seed: int | None = None,
    *,
    dataset: Any = None,
    out: str | os.PathLike | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    prune: bool = True,
    progress: bool = False,
) -> tuple[dict[str, Any], Any]:
    """Search the params of model ``label`` of ``cfg`` on the validation part.

    Parameters
    ----------
    cfg : ExperimentConfig
    label : str
        The model's label in ``cfg.models``.
    trials : int, optional
        Number of trials (grid: at most the grid size; None runs the whole grid).
    metric : str, optional
        ``"rmse"``/``"mae"`` (minimized) or a ranking metric such as ``"ndcg@10"``
        (maximized); default ``cfg.metrics.primary``.
    sampler : {"tpe", "grid"}
        Seeded TPE, or every combination of each param's ``grid`` values.
    folds : int, optional
        k-fold cross-validation on the training part instead of the validation part;
        the objective is the mean over folds.
    seed : int, optional
        Sampler seed and the model's ``random_state`` (when it has one and the config
        does not set it); default ``cfg.seed``.
    dataset : Dataset, optional
        Use this data instead of loading ``cfg.dataset``.
    out : path, optional
        Write ``cfg`` with the best params filled in for ``label`` to this YAML file.
    timeout : float, optional
        Stop starting trials after this many seconds.
    storage : str, optional
        Optuna storage URI (e.g. ``sqlite:///study.db``) to keep or resume the study.
    prune : bool
        Median pruning on the per-epoch validation RMSE (rating metrics, no folds).
    progress : bool
        Optuna's progress bar.

    Returns
    -------
    (dict, optuna.Study)
        The full params of the best trial (config params, tuned values, random_state),
        and the study; ``study.user_attrs`` holds ``default_value`` (the config's params
        on the same objective when they lie in the space), ``metric`` and ``ignored_params``.
    """
    import optuna

    from movierec.models import model_class
    from movierec.split import kfold

    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if trials is not None and trials < 1:
        raise ConfigError(f"trials must be >= 1, got {trials}")
    if folds is not None and folds < 2:
        raise ConfigError(f"folds must be >= 2, got {folds}")
    spec = cfg.spec(label)
    cls = model_class(spec.model)
    metric = metric or cfg.metrics.primary
    _check_metric(metric, cls.rating_model, label)
    seed = cfg.seed if seed is None else int(seed)
    space, ignored = search_space(cfg, label)
    grid = sampler == "grid"

    ds = dataset if dataset is not None else cfg.load_dataset()
    split = cfg.make_split(ds)
    fold_splits = kfold(split.train, k=folds, seed=seed) if folds else None
    if fold_splits is None and split.validation.n_ratings == 0:
        validation_score(None, split, metric, cfg)  # raises the explanatory error
    minimize = metric in RATING_METRICS
    rating_prune = prune and minimize and fold_splits is None

    fixed = dict(spec.params)
    if "random_state" in cls._param_names() and "random_state" not in fixed:
        fixed["random_state"] = seed

    def objective(trial: Any) -> float:
        params = {**fixed, **_suggest(trial, space, grid)}
        if fold_splits is not None:
            values = []
            for j, fs in enumerate(fold_splits):
                m = cfg.build_model(label, **params).fit(fs.train)
                values.append(validation_score(m, fs, metric, cfg, part="test"))
                trial.report(float(np.mean(values)), j)
                if prune and trial.should_prune():
                    raise optuna.TrialPruned()
            return float(np.mean(values))
        val = split.validation

        def callback(epoch: int, m: Any) -> bool:
            try:
                v = rmse(m.predict(val.users, val.items), val.ratings)
            except Exception:  # a model whose state is not ready mid-fit is not pruned
                return False
            trial.report(v, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
            return False

        m = cfg.build_model(label, **params)
        m.fit(split.train, callback=callback if rating_prune else None)
        return validation_score(m, split, metric, cfg)

    if grid:
        samp: Any = optuna.samplers.GridSampler(
            {k: grid_values(v) for k, v in space.items()}, seed=seed
        )
        n_grid = int(np.prod([len(grid_values(v)) for v in space.values()]))
        n_trials = n_grid if trials is None else min(trials, n_grid)
    else:
        samp = optuna.samplers.TPESampler(seed=seed)
        n_trials = 30 if trials is None else trials
    pruner: Any = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
        if prune
        else optuna.pruners.NopPruner()
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="minimize" if minimize else "maximize",
        sampler=samp,
        pruner=pruner,
        storage=storage,
        study_name=f"{label}-{metric}" if storage else None,
        load_if_exists=storage is not None,
    )
    study.set_user_attr("metric", metric)
    study.set_user_attr("model", spec.model)
    study.set_user_attr("ignored_params", ignored)
    # the config's own params go first (TPE) so the best is never worse than the start
    current = {k: fixed[k] for k in space if k in fixed}
    if not grid:
        try:
            defaults = cls().get_params()
        except (TypeError, ConfigError):
            defaults = {}
        current = {**{k: defaults.get(k) for k in space}, **current}
        if all(v is not None and _in_space(v, space[k], grid) for k, v in current.items()):
            study.enqueue_trial(current)
    study.optimize(objective, n_trials=n_trials, timeout=timeout, show_progress_bar=progress)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ConfigError(f"no trial of {label} completed; widen the search space or add trials")
    if not grid and done[0].params == current and study.trials[0].number == done[0].number:
        study.set_user_attr("default_value", done[0].value)
    best = {**fixed, **study.best_params}
    if out is not None:
        write_tuned_config(cfg, label, best, out, header=_header(label, metric, study))
    return best, study


def _header(label: str, metric: str, study: Any) -> str:
    n = len(study.trials)
    lines = [
        f"tuned by `movierec tune`: model {label!r}, {n} trials, "
        f"best validation {metric} = {study.best_value:.6f} (trial {study.best_trial.number})"
    ]
    if "default_value" in study.user_attrs:
        lines.append(f"the config's previous params scored {study.user_attrs['default_value']:.6f}")
    return "\n".join(lines)


def write_tuned_config(
    cfg: ExperimentConfig,
    label: str,
    params: dict[str, Any],
    path: str | os.PathLike,
    header: str | None = None,
) -> Path:
    """Write ``cfg`` with ``models[label].params = params`` to ``path`` (YAML, atomic)."""
    spec = cfg.spec(label).model_copy(update={"params": _plain(params)})
    new = cfg.model_copy(update={"models": {**cfg.models, label: spec}})
    return dump_config(new, path, header=header)


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    # numpy scalars from samplers become plain Python values for YAML
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
