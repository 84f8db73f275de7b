"""Rating-prediction evaluation: k-fold cross-validation and holdout RMSE/MAE tables."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.evaluation.metrics import mae, rmse
from movierec.models.base import Recommender
from movierec.split import Split, kfold
from movierec.tables import text_table


def _check_models(models: Mapping[str, Recommender]) -> None:
    if not models:
        raise ConfigError("give at least one model to evaluate")
    for label, m in models.items():
        if not getattr(m, "rating_model", False):
            raise ConfigError(
                f"model {label!r} ranks items and does not predict ratings; "
                "rating evaluation needs a rating model (e.g. biases, svd, als)"
            )


def _score_part(model: Recommender, part: Dataset) -> dict[str, Any]:
    t = time.perf_counter()
    pred, fb = model.predict(part.users, part.items, unknown="fallback", return_fallback=True)
    return {
        "rmse": rmse(pred, part.ratings),
        "mae": mae(pred, part.ratings),
        "n": part.n_ratings,
        "n_fallback": int(fb.sum()),
        "test_s": time.perf_counter() - t,
    }


def cross_validate(
    ds: Dataset, models: Mapping[str, Recommender], folds: int = 5, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """k-fold cross-validation of rating models on the same folds.

    Parameters
    ----------
    ds : Dataset
        The full data set; :func:`movierec.split.kfold` cuts it into ``folds`` parts.
    models : mapping label -> unfitted model
        Each is cloned per fold, so the given objects are left unfitted.
    folds, seed : int
        Number of folds and the seed of the fold assignment.

    Returns
    -------
    dict
        label -> ``{rmse_mean, rmse_std, mae_mean, mae_std, fit_s, test_s, n_fallback,
        folds: [{rmse, mae, n, n_fallback, fit_s, test_s}, ...]}``; times are the totals
        over the folds, ``n_fallback`` the total of test pairs whose user or movie had no
        training rating (served by the biases fallback). Std is over folds (ddof=0).
    """
    _check_models(models)
    splits = kfold(ds, folds, seed=seed)
    out: dict[str, dict[str, Any]] = {}
    for label, proto in models.items():
        per: list[dict[str, Any]] = []
        for s in splits:
            t = time.perf_counter()
            m = proto.clone().fit(s.train)
            fit_s = time.perf_counter() - t
            r = _score_part(m, s.test)
            r["fit_s"] = fit_s
            per.append(r)
        out[label] = fold_summary(per)
    return out


def fold_summary(per: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sd of RMSE/MAE over folds, summed times and fallbacks, and the folds."""
    rm = np.array([f["rmse"] for f in per])
    ma = np.array([f["mae"] for f in per])
    return {
        "rmse_mean": float(rm.mean()),
        "rmse_std": float(rm.std()),
        "mae_mean": float(ma.mean()),
        "mae_std": float(ma.std()),
        "fit_s": float(sum(f["fit_s"] for f in per)),
        "test_s": float(sum(f["test_s"] for f in per)),
        "n_fallback": int(sum(f["n_fallback"] for f in per)),
        "folds": per,
    }


def holdout(split: Split, models: Mapping[str, Recommender]) -> dict[str, dict[str, Any]]:
    """Fit each model on ``split.train``; RMSE/MAE on the validation and test parts.

    Returns
    -------
    dict
        label -> ``{validation: {rmse, mae, n, n_fallback, test_s}, test: {...}, fit_s}``.
        An empty part gives NaN errors.
    """
    _check_models(models)
    out: dict[str, dict[str, Any]] = {}
    for label, proto in models.items():
        t = time.perf_counter()
        m = proto.clone().fit(split.train)
        fit_s = time.perf_counter() - t
        out[label] = {
            "validation": _score_part(m, split.validation),
            "test": _score_part(m, split.test),
            "fit_s": fit_s,
        }
    return out


def format_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Plain aligned text table of :func:`cross_validate` or :func:`holdout` results."""
    if not results:
        return "(no results)"
    first = next(iter(results.values()))
    if "rmse_mean" in first:
        head = ["model", "RMSE", "+/-", "MAE", "+/-", "fallback", "fit s", "test s"]
        rows = [
            [
                label,
                f"{r['rmse_mean']:.4f}",
                f"{r['rmse_std']:.4f}",
                f"{r['mae_mean']:.4f}",
                f"{r['mae_std']:.4f}",
                str(r["n_fallback"]),
                f"{r['fit_s']:.2f}",
                f"{r['test_s']:.2f}",
            ]
            for label, r in results.items()
        ]
    else:
        head = ["model", "val RMSE", "val MAE", "test RMSE", "test MAE", "fallback", "fit s"]
        rows = [
            [
                label,
                f"{r['validation']['rmse']:.4f}",
                f"{r['validation']['mae']:.4f}",
                f"{r['test']['rmse']:.4f}",
                f"{r['test']['mae']:.4f}",
                f"{r['validation']['n_fallback']}/{r['test']['n_fallback']}",
                f"{r['fit_s']:.2f}",
            ]
            for label, r in results.items()
        ]
    return text_table(rows, head, right=range(1, len(head)))
