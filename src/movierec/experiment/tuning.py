"""Hyperparameter tuning with Optuna, inside the training part (never validation or test).

Every study fits a model on one data set and scores it on another that it did not see:

- :func:`tuning_split` cuts the training part of an experiment into a fit part and a
  tuning target, each user's last ``n_tune`` training ratings (the ratings just before
  her validation ones). :func:`tune` (``movierec tune``) and :func:`tune_for_compare`
  (``compare`` with ``tuning: {enabled: true}``) choose on it, so the validation part
  stays a clean check of the choice and the test part an estimate of it.
- :func:`nested_cv` (``movierec cv --tune``) tunes inside each outer fold's training part
  (an inner random holdout), refits the best on that training part and scores the outer
  test fold.

Search spaces are declared beside each model as its ``search_space`` class attribute; a
config's ``models.<label>.search`` replaces it. Each entry maps a param name to a spec::

    {"type": "float", "low": 1e-3, "high": 0.1, "log": True, "grid": [0.003, 0.01, 0.03]}
    {"type": "int", "low": 10, "high": 200, "log": True, "grid": [20, 50, 100]}
    {"type": "categorical", "choices": ["none", "bm25"]}

``grid`` lists the values the grid sampler tries (default: low, middle, high, or choices).
Names that the model does not take are ignored (and listed in the study's user attrs).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from movierec.errors import ConfigError
from movierec.evaluation.metrics import lower_is_better, mae, rmse
from movierec.experiment.config import RATING_METRICS, ExperimentConfig, dump_config

SAMPLERS = ("tpe", "grid")
Parts = list[tuple[Any, Any]]  # (fit data, scored data) pairs of one objective


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


def model_space(
    name: str, override: dict[str, dict[str, Any]] | None = None
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(space limited to the params of model ``name``, names ignored).

    ``override`` (a config's ``search:``) replaces the class's ``search_space``.
    """
    from movierec.models import model_class

    cls = model_class(name)
    space = override or cls.search_space
    if not space:
        raise ConfigError(f"no search space for model {name!r}: add `search:` to its config entry")
    valid = set(cls._param_names())
    kept = {k: dict(v) for k, v in space.items() if k in valid}
    if not kept:
        raise ConfigError(f"the search space of {name!r} names none of its params {sorted(valid)}")
    for k, v in kept.items():
        _check_spec(k, v)
    return kept, sorted(set(space) - valid)


def search_space(cfg: ExperimentConfig, label: str) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """(space limited to the model's params, names ignored) for the model under ``label``."""
    spec = cfg.spec(label)
    return model_space(spec.model, spec.search)


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


# -- what a study fits on and scores on ------------------------------------------------------
def tuning_split(train: Any, n_tune: int = 5, min_train: int = 5) -> Any:
    """Cut a training part into (fit part, tuning target): each user's last ``n_tune`` ratings.

    Only users with at least ``min_train + n_tune`` training ratings give ratings to the
    target. The result is a :class:`~movierec.split.Split` whose ``test`` is the target
    and whose validation is empty; it is built from ``train`` alone.
    """
    from movierec.split import temporal_per_user

    s = temporal_per_user(train, n_val=0, n_test=n_tune, min_train=min_train)
    s.kind = "tuning"
    if s.test.n_ratings == 0:
        raise ConfigError(
            f"the tuning split is empty: no user has {min_train + n_tune} training ratings; "
            "lower tuning.n_tune or tuning.min_train"
        )
    return s


def _as_split(train: Any, target: Any) -> Any:
    from movierec.split import Split

    empty = train.subset(np.zeros(train.n_ratings, dtype=bool))
    return Split(train, empty, target, "tuning")


def score_on(model: Any, train: Any, target: Any, metric: str, threshold: float = 4.0) -> float:
    """``metric`` of a model fitted on ``train``, on the ratings of ``target``."""
    if metric in RATING_METRICS:
        pred = model.predict(target.users, target.items)
        return (rmse if metric == "rmse" else mae)(pred, target.ratings)
    from movierec.evaluation.evaluator import evaluate

    k = int(metric.split("@")[1])
    res = evaluate(
        {"m": model}, _as_split(train, target), part="test", k=(k,), threshold=threshold, fit=False
    )
    s = res.summary["m"]
    if metric not in s:
        names = sorted(x for x in s if x.endswith(f"@{k}") and not x.endswith("_se"))
        raise ConfigError(f"unknown metric {metric!r}; choose one of {', '.join(names)}, rmse, mae")
    return float(s[metric])


def validation_score(
    model: Any, split: Any, metric: str, cfg: ExperimentConfig, part: str = "validation"
) -> float:
    """``metric`` of a model fitted on ``split.train``, on ``split.validation`` (or ``part``)."""
    target = split.validation if part == "validation" else split.test
    if target.n_ratings == 0:
        raise ConfigError(
            f"the split has no {part} ratings to score: set split.n_val (temporal_per_user), "
            "split.val_fraction (random_holdout) or a validation fraction (temporal_global)"
        )
    return score_on(model, split.train, target, metric, cfg.metrics.threshold)


def _check_metric(metric: str, rating_model: bool, label: str) -> None:
    if metric in RATING_METRICS:
        if not rating_model:
            raise ConfigError(f"{label} ranks items and has no {metric}; tune it on e.g. ndcg@10")
        return
    name, at, k = metric.partition("@")
    if not at or not k.isdigit() or int(k) < 1:
        raise ConfigError(f"metric {metric!r} must be rmse, mae or a ranking metric like ndcg@10")


def _fit_score(
    build: Callable[[dict[str, Any]], Any],
    params: dict[str, Any],
    train: Any,
    target: Any,
    metric: str,
    threshold: float,
    callback: Any = None,
) -> float:
    # the one place a trial touches data: tests watch it to prove what tuning saw
    m = build(params)
    m.fit(train, callback=callback)
    return score_on(m, train, target, metric, threshold)


# -- one study --------------------------------------------------------------------------------
def run_study(
    build: Callable[[dict[str, Any]], Any],
    space: dict[str, dict[str, Any]],
    parts: Parts,
    metric: str,
    *,
    first: dict[str, Any] | None = None,
    trials: int | None = 30,
    timeout: float | None = None,
    seed: int = 0,
    sampler: str = "tpe",
    prune: bool = True,
    threshold: float = 4.0,
    storage: str | None = None,
    study_name: str | None = None,
    progress: bool = False,
    callbacks: list[Any] | None = None,
) -> Any:
    """Search ``space``: each trial fits ``build(params)`` on every ``parts[j][0]`` and scores
    it on ``parts[j][1]``; the objective is the mean.

    ``first`` (params inside the space) is enqueued as trial 0, so the best is never worse
    than it (its value lands in ``study.user_attrs["default_value"]``). Rating metrics are
    pruned (median rule) on the per-epoch error of a single part, or after each part.
    """
    import optuna

    grid = sampler == "grid"
    minimize = lower_is_better(metric)

    def objective(trial: Any) -> float:
        params = _suggest(trial, space, grid)
        if len(parts) > 1:
            values = []
            for j, (fit, target) in enumerate(parts):
                values.append(_fit_score(build, params, fit, target, metric, threshold))
                trial.report(float(np.mean(values)), j)
                if prune and trial.should_prune():
                    raise optuna.TrialPruned()
            return float(np.mean(values))
        fit, target = parts[0]

        def callback(epoch: int, m: Any) -> bool:
            try:
                v = rmse(m.predict(target.users, target.items), target.ratings)
            except Exception:  # a model whose state is not ready mid-fit is not pruned
                return False
            trial.report(v, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
            return False

        cb = callback if prune and minimize else None
        return _fit_score(build, params, fit, target, metric, threshold, cb)

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
        study_name=study_name if storage else None,
        load_if_exists=storage is not None,
    )
    study.set_user_attr("metric", metric)
    enqueued = (
        first is not None
        and not grid
        and set(first) == set(space)
        and all(v is not None and _in_space(v, space[k], grid) for k, v in first.items())
    )
    if enqueued:
        study.enqueue_trial(first)
    study.optimize(
        objective,
        n_trials=n_trials,
        timeout=timeout,
        show_progress_bar=progress,
        callbacks=callbacks,
    )
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise ConfigError("no tuning trial completed; widen the search space or add trials")
    t0 = study.trials[0]
    if enqueued and t0.state == optuna.trial.TrialState.COMPLETE and t0.params == first:
        study.set_user_attr("default_value", t0.value)
    return study


def _start(cls: Any, space: dict[str, Any], fixed: dict[str, Any]) -> dict[str, Any]:
    """The config's (or the class's default) values of the searched params."""
    try:
        defaults = cls().get_params()
    except (TypeError, ConfigError):
        defaults = {}
    return {k: fixed.get(k, defaults.get(k)) for k in space}


def _fixed(cfg: ExperimentConfig, label: str, seed: int) -> dict[str, Any]:
    from movierec.models import model_class

    spec = cfg.spec(label)
    fixed = dict(spec.params)
    if "random_state" in model_class(spec.model)._param_names() and "random_state" not in fixed:
        fixed["random_state"] = seed
    return fixed


# -- movierec tune ----------------------------------------------------------------------------
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
    on: str = "tuning",
) -> tuple[dict[str, Any], Any]:
    """Search the params of model ``label`` of ``cfg`` inside its training part.

    Parameters
    ----------
    cfg : ExperimentConfig
    label : str
        The model's label in ``cfg.models``.
    trials : int, optional
        Number of trials (grid: at most the grid size; None runs the whole grid).
    metric : str, optional
        ``"rmse"``/``"mae"`` (minimized) or a ranking metric such as ``"ndcg@10"``
        (maximized); default ``cfg.tuning.metric`` or ``cfg.metrics.primary``.
    sampler : {"tpe", "grid"}
        Seeded TPE, or every combination of each param's ``grid`` values.
    folds : int, optional
        k-fold cross-validation on the training part instead; the objective is the mean.
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
        Median pruning on the per-epoch RMSE (rating metrics).
    progress : bool
        Optuna's progress bar.
    on : {"tuning", "validation"}
        ``"tuning"`` (default): the tuning split of the training part (each user's last
        ``cfg.tuning.n_tune`` training ratings); the validation part then checks the
        choice. ``"validation"``: the validation part itself (fewer ratings, noisier).

    Returns
    -------
    (dict, optuna.Study)
        The full params of the best trial (config params, tuned values, random_state),
        and the study; ``study.user_attrs`` holds ``default_value`` (the config's params
        on the same objective when they lie in the space), ``metric``, ``ignored_params``,
        and with ``on="tuning"`` ``validation_default``/``validation_tuned`` (both param
        sets fitted on the whole training part and scored on validation, when it exists).
    """
    from movierec.models import model_class
    from movierec.split import kfold

    if sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {sampler!r}; choose one of {', '.join(SAMPLERS)}")
    if on not in ("tuning", "validation"):
        raise ConfigError(f"unknown tuning target {on!r}; choose tuning or validation")
    if trials is not None and trials < 1:
        raise ConfigError(f"trials must be >= 1, got {trials}")
    if folds is not None and folds < 2:
        raise ConfigError(f"folds must be >= 2, got {folds}")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be a number of seconds > 0, got {timeout:g}")
    spec = cfg.spec(label)
    cls = model_class(spec.model)
    metric = metric or cfg.tuning.per_model(label).metric or cfg.metrics.primary
    _check_metric(metric, cls.rating_model, label)
    seed = cfg.seed if seed is None else int(seed)
    space, ignored = search_space(cfg, label)
    ds = dataset if dataset is not None else cfg.load_dataset()
    split = cfg.make_split(ds)
    if folds:
        parts = [(fs.train, fs.test) for fs in kfold(split.train, k=folds, seed=seed)]
        where = f"{folds}-fold CV on the training part"
    elif on == "tuning":
        ts = tuning_split(split.train, cfg.tuning.n_tune, cfg.tuning.min_train)
        parts = [(ts.train, ts.test)]
        where = f"the tuning split (each user's last {cfg.tuning.n_tune} training ratings)"
    else:
        if split.validation.n_ratings == 0:
            validation_score(None, split, metric, cfg)  # raises the explanatory error
        parts = [(split.train, split.validation)]
        where = "the validation part"
    fixed = _fixed(cfg, label, seed)
    start = _start(cls, space, fixed)

    def build(p: dict[str, Any]) -> Any:
        return cfg.build_model(label, **{**fixed, **p})

    study = run_study(
        build,
        space,
        parts,
        metric,
        first=start,
        trials=trials,
        timeout=timeout,
        seed=seed,
        sampler=sampler,
        prune=prune,
        threshold=cfg.metrics.threshold,
        storage=storage,
        study_name=f"{label}-{metric}",
        progress=progress,
    )
    study.set_user_attr("model", spec.model)
    study.set_user_attr("ignored_params", ignored)
    study.set_user_attr("objective", where)
    best = {**fixed, **study.best_params}
    if on == "tuning" and not folds and split.validation.n_ratings:
        th = cfg.metrics.threshold
        for key, p in (("validation_default", start), ("validation_tuned", study.best_params)):
            if key == "validation_default" and None in p.values():
                continue
            m = build(p).fit(split.train)
            study.set_user_attr(key, score_on(m, split.train, split.validation, metric, th))
    if out is not None:
        write_tuned_config(cfg, label, best, out, header=_header(label, metric, study))
    return best, study


def _header(label: str, metric: str, study: Any) -> str:
    n = len(study.trials)
    where = study.user_attrs.get("objective", "the validation part")
    lines = [
        f"tuned by `movierec tune`: model {label!r}, {n} trials on {where}: "
        f"best {metric} = {study.best_value:.6f} (trial {study.best_trial.number})"
    ]
    if "default_value" in study.user_attrs:
        lines.append(f"the config's previous params scored {study.user_attrs['default_value']:.6f}")
    if "validation_tuned" in study.user_attrs:
        d = study.user_attrs.get("validation_default")
        was = f" (previous params {d:.6f})" if d is not None else ""
        lines.append(
            f"check on the validation part, not used to choose: {metric} "
            f"{study.user_attrs['validation_tuned']:.6f}{was}"
        )
    lines.append("no test rating was read")
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


# -- compare ----------------------------------------------------------------------------------
def tuning_labels(cfg: ExperimentConfig) -> list[str]:
    """The labels ``tuning:`` tunes: those it names, or every available model with a space."""
    from movierec.models import model_class

    avail = cfg.available_models()
    if cfg.tuning.models is not None:
        return [label for label in cfg.tuning.models if label in avail]
    return [
        label
        for label, spec in avail.items()
        if spec.search or model_class(spec.model).search_space
    ]


def tune_for_compare(
    cfg: ExperimentConfig,
    split: Any,
    progress: Any = None,
    *,
    report: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """Tune the models of ``cfg.tuning`` on the tuning split of ``split.train``.

    Only ``split.train`` is read: the tuning split holds out each user's last
    ``cfg.tuning.n_tune`` training ratings, so validation and test ratings never take part.
    The global ``time_budget_s`` is shared among the models still to tune (what one leaves
    unused goes to the next); each also stops at its own trials and ``time_budget_s``.

    Parameters
    ----------
    cfg : ExperimentConfig
    split : Split
        The experiment's split; only its ``train`` is used.
    progress : callable(str) or object with ``say(str)``, optional
        Told which model is being tuned and each finished trial.
    report : dict, optional
        Filled with label -> {metric, trials, complete, pruned, seconds, best, default}.

    Returns
    -------
    dict
        label -> full params for ``cfg.build_model(label, **params)`` (the config's
        params with the tuned ones in place). Empty when tuning is disabled.
    """
    import optuna

    from movierec.models import model_class

    if not cfg.tuning.enabled:
        return {}
    say = getattr(progress, "say", progress)
    labels = tuning_labels(cfg)
    if not labels:
        return {}
    ts = tuning_split(split.train, cfg.tuning.n_tune, cfg.tuning.min_train)
    deadline = (
        None if cfg.tuning.time_budget_s is None else time.monotonic() + cfg.tuning.time_budget_s
    )
    out: dict[str, dict[str, Any]] = {}
    for j, label in enumerate(labels):
        spec = cfg.spec(label)
        cls = model_class(spec.model)
        own = cfg.tuning.per_model(label)
        metric = own.metric or cfg.metrics.primary
        _check_metric(metric, cls.rating_model, label)
        budget = own.time_budget_s
        if deadline is not None:
            share = (deadline - time.monotonic()) / (len(labels) - j)
            budget = share if budget is None else min(budget, share)
            if budget <= 0:
                break
        space, _ = search_space(cfg, label)
        fixed = _fixed(cfg, label, cfg.seed)

        def build(p: dict[str, Any], label: str = label, fixed: dict = fixed) -> Any:
            return cfg.build_model(label, **{**fixed, **p})

        def tell(study: Any, trial: Any, label: str = label, n: int = own.trials or 1) -> None:
            if say is not None:
                say(f"tuning {label}: trial {trial.number + 1}/{n}")

        if say is not None:
            say(f"tuning {label}")
        t0 = time.perf_counter()
        study = run_study(
            build,
            space,
            [(ts.train, ts.test)],
            metric,
            first=_start(cls, space, fixed),
            trials=own.trials,
            timeout=budget,
            seed=cfg.seed,
            threshold=cfg.metrics.threshold,
            callbacks=[tell],
        )
        out[label] = _plain({**fixed, **study.best_params})
        if report is not None:
            states = [t.state for t in study.trials]
            report[label] = {
                "metric": metric,
                "trials": len(states),
                "complete": states.count(optuna.trial.TrialState.COMPLETE),
                "pruned": states.count(optuna.trial.TrialState.PRUNED),
                "seconds": time.perf_counter() - t0,
                "best": study.best_value,
                "default": study.user_attrs.get("default_value"),
                "params": out[label],
            }
    return out


# -- nested cross-validation ------------------------------------------------------------------
def nested_cv(
    ds: Any,
    models: Mapping[str, dict[str, Any]],
    folds: int = 5,
    trials: int = 30,
    seed: int = 0,
    *,
    inner_fraction: float = 0.2,
    metric: str = "rmse",
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Nested k-fold CV of rating models: tuned inside each outer fold's training part.

    For outer fold j of :func:`movierec.split.kfold`, the training part is split again at
    random (``inner_fraction`` held out, seed ``seed + 1 + j``); ``trials`` TPE trials
    (median-pruned per epoch where a model can predict mid-fit; BayesMF cannot, its
    posterior mean exists only after the last sweep) fit on the inner rest and are scored
    on the inner holdout; the best params are refitted on the whole outer training part
    and scored on the outer test fold, which no trial saw.

    A rating blend (``blend``) is not searched itself: its weights are least squares on an
    internal per-user holdout of the data it is fitted on. On fold j its sub-models take
    the params the nested search picked on fold j, on the same inner split: those of the
    model of that name in ``models`` when there is one (its searched params, over the
    sub-model's own), otherwise a study run for the sub-model there and then (sub-models
    without a search space keep their params). The blend is then fitted on the outer
    training part and scored on the outer test fold, so no outer test rating reaches a
    choice. Its ``inner`` is the blend's RMSE on its own internal holdout.

    Parameters
    ----------
    ds : Dataset
    models : mapping model name -> fixed params
        Each model's ``search_space`` is searched; fixed params outside it are kept, and
        those inside it are the first trial.
    folds, trials, seed : int
    inner_fraction : float
    metric : {"rmse", "mae"}
        The inner objective.
    timeout : float, optional
        Seconds per inner study.

    Returns
    -------
    dict
        name -> ``{rmse_mean, rmse_std, mae_mean, mae_std, fit_s, test_s, n_fallback,
        tune_s, folds: [{rmse, mae, n, n_fallback, inner, params, trials, pruned}, ...]}``
        (the keys of :func:`movierec.evaluation.rating.cross_validate` plus tuning ones);
        a blend's fold ``params`` are ``{"models": {sub-model: its params}}``, with its
        ``weights`` and the sub-models ``tuned_here``.
    """
    import optuna

    from movierec.evaluation.rating import _check_models, _score_part, fold_summary
    from movierec.models import make_model, model_class
    from movierec.models.blend import DEFAULT_MODELS, RatingBlend
    from movierec.models.hybrid import _specs
    from movierec.split import kfold, random_holdout

    if metric not in RATING_METRICS:
        raise ConfigError(f"nested CV tunes rating models on rmse or mae, got {metric!r}")
    if trials < 1:
        raise ConfigError(f"--tune needs at least 1 trial, got {trials}")
    protos = {n: make_model(n, **p) for n, p in models.items()}
    _check_models(protos)
    blends = [n for n in models if isinstance(protos[n], RatingBlend)]
    for n in models:
        if n not in blends:
            model_space(n)  # a model without a search space fails before any fit
    outer = kfold(ds, folds, seed=seed)
    inners = [
        random_holdout(s.train, test_fraction=inner_fraction, seed=seed + 1 + j)
        for j, s in enumerate(outer)
    ]
    studies: dict[tuple[str, int], Any] = {}  # (model name, outer fold) -> its inner study

    def study_for(name: str, fixed: dict[str, Any], j: int) -> tuple[Any, float]:
        cls = model_class(name)
        space, _ = model_space(name)
        inner = inners[j]
        t0 = time.perf_counter()
        study = run_study(
            lambda p: make_model(name, **{**fixed, **p}),
            space,
            [(inner.train, inner.test)],
            metric,
            first=_start(cls, space, fixed),
            trials=trials,
            timeout=timeout,
            seed=seed + j,
        )
        studies[(name, j)] = study
        return study, time.perf_counter() - t0

    def seeded(name: str, params: dict[str, Any], rs: Any) -> dict[str, Any]:
        fixed = dict(params)
        if rs is not None and "random_state" in model_class(name)._param_names():
            fixed.setdefault("random_state", rs)
        return fixed

    out: dict[str, dict[str, Any]] = {}
    for name in [n for n in models if n not in blends]:
        fixed = seeded(name, models[name], seed)
        per: list[dict[str, Any]] = []
        t_tune = 0.0
        for j, s in enumerate(outer):
            study, dt = study_for(name, fixed, j)
            t_tune += dt
            t = time.perf_counter()
            m = make_model(name, **_plain({**fixed, **study.best_params})).fit(s.train)
            r = _score_part(m, s.test)
            states = [tr.state for tr in study.trials]
            r.update(
                fit_s=time.perf_counter() - t,
                inner=float(study.best_value),
                params=_plain(study.best_params),
                trials=len(states),
                pruned=states.count(optuna.trial.TrialState.PRUNED),
            )
            per.append(r)
            if progress is not None:
                progress(f"{name} fold {j + 1}/{folds}: outer {metric} {r[metric]:.4f}")
        out[name] = {**fold_summary(per), "tune_s": t_tune}
    for name in blends:
        fixed = seeded(name, models[name], seed)
        rs = fixed.get("random_state")
        subs = _specs(DEFAULT_MODELS if fixed.get("models") is None else fixed["models"])
        per, t_tune = [], 0.0
        for j, s in enumerate(outer):
            chosen: dict[str, dict[str, Any]] = {}
            here, n_trials, n_pruned = [], 0, 0
            for sub, sub_params in subs:
                sp = seeded(sub, sub_params, rs)
                if (sub, j) not in studies and model_class(sub).search_space:
                    study, dt = study_for(sub, sp, j)
                    t_tune += dt
                    here.append(sub)
                    states = [tr.state for tr in study.trials]
                    n_trials += len(states)
                    n_pruned += states.count(optuna.trial.TrialState.PRUNED)
                best = studies[(sub, j)].best_params if (sub, j) in studies else {}
                chosen[sub] = _plain({**sp, **best})
            t = time.perf_counter()
            m = make_model(name, **{**fixed, "models": chosen}).fit(s.train)
            r = _score_part(m, s.test)
            r.update(
                fit_s=time.perf_counter() - t,
                inner=float(m.holdout_rmse_[-1]),
                params={"models": chosen},
                weights=[float(w) for w in m.weights_],
                tuned_here=here,
                trials=n_trials,
                pruned=n_pruned,
            )
            per.append(r)
            if progress is not None:
                progress(f"{name} fold {j + 1}/{folds}: outer {metric} {r[metric]:.4f}")
        out[name] = {**fold_summary(per), "tune_s": t_tune}
    return {n: out[n] for n in models}


def format_nested(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The outer-fold table plus each fold's chosen params."""
    from movierec.evaluation.rating import format_table

    lines = [
        format_table(results),
        "",
        "outer RMSE of params tuned inside each fold's training part",
    ]
    for name, r in results.items():
        lines.append(f"{name}: tuning {r['tune_s']:.0f} s")
        for j, f in enumerate(r["folds"]):
            if "weights" in f:  # a blend: its sub-models' params and its weights
                w = ", ".join(f"{x:.3f}" for x in f["weights"])
                subs = "; ".join(
                    f"{n}: "
                    + ", ".join(f"{k}={_fmt(v)}" for k, v in p.items() if k != "random_state")
                    for n, p in f["params"]["models"].items()
                )
                lines.append(
                    f"  fold {j}: outer rmse {f['rmse']:.4f}  own holdout {f['inner']:.4f}  "
                    f"weights {w}  {subs}"
                )
                continue
            p = ", ".join(f"{k}={_fmt(v)}" for k, v in f["params"].items())
            lines.append(
                f"  fold {j}: outer rmse {f['rmse']:.4f}  inner {f['inner']:.4f}  "
                f"({f['trials']} trials, {f['pruned']} pruned)  {p}"
            )
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# -- how well one part ranks models -----------------------------------------------------------
def validation_test_rank_correlation(
    val_summary: Mapping[str, Mapping[str, float]],
    test_summary: Mapping[str, Mapping[str, float]],
    metric: str,
) -> float:
    """Spearman rank correlation across models of ``metric`` on validation and on test.

    ``*_summary`` map model label -> {metric: value} (e.g. ``EvalResult.summary``). Models
    missing from either side or with a non-finite value are left out; NaN when fewer than
    three remain or when one side is constant. 1 means validation orders the models
    exactly as test does.
    """
    from scipy.stats import spearmanr

    labels = [
        m
        for m in val_summary
        if m in test_summary
        and _finite(val_summary[m].get(metric))
        and _finite(test_summary[m].get(metric))
    ]
    if len(labels) < 3:
        return math.nan
    v = np.array([val_summary[m][metric] for m in labels], dtype=float)
    t = np.array([test_summary[m][metric] for m in labels], dtype=float)
    if np.ptp(v) == 0 or np.ptp(t) == 0:
        return math.nan
    return float(spearmanr(v, t).statistic)


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, int | float) and math.isfinite(x)
