"""Optuna tuning of SVD on ML-100K: the config's params vs the best trial.

Tunes ``svd`` of ``configs/ml-100k.yaml`` (temporal per-user split) for ``--trials`` TPE
trials on RMSE of the tuning split (each user's last 5 training ratings, inside the
training part) with median pruning, writes the tuned config, reloads it and refits to
check it reproduces the best trial, then reports validation RMSE (a check, not used to
choose) and test RMSE of both param sets (the test part plays no role in the choice).
Prints one JSON line.

    python benchmarks/tune_svd_optuna.py [--trials 30] [--seed 42] [--out /tmp/svd-tuned.yaml]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import optuna

from movierec.evaluation.metrics import rmse
from movierec.experiment.config import load_config
from movierec.experiment.tuning import score_on, tune, tuning_split, validation_score

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "ml-100k.yaml"))
    ap.add_argument("--model", default="svd")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default="/tmp/svd-tuned.yaml")
    a = ap.parse_args()
    cfg = load_config(a.config)
    ds = cfg.load_dataset()
    t0 = time.perf_counter()
    best, study = tune(
        cfg, a.model, trials=a.trials, metric="rmse", seed=a.seed, dataset=ds, out=a.out
    )
    took = time.perf_counter() - t0
    states = [t.state for t in study.trials]
    tuned = load_config(a.out)
    split = tuned.make_split(ds)
    m_best = tuned.build_model(a.model).fit(split.train)
    m_default = cfg.build_model(a.model).fit(split.train)
    ts = tuning_split(split.train, tuned.tuning.n_tune, tuned.tuning.min_train)
    m_small = tuned.build_model(a.model).fit(ts.train)
    reproduced = score_on(m_small, ts.train, ts.test, "rmse")
    te = split.test
    print(
        json.dumps(
            {
                "bench": "tune_svd_optuna",
                "dataset": ds.label,
                "split": split.kind,
                "model": a.model,
                "trials": len(states),
                "complete": states.count(optuna.trial.TrialState.COMPLETE),
                "pruned": states.count(optuna.trial.TrialState.PRUNED),
                "tune_s": round(took, 1),
                "tuning_rmse_default": study.user_attrs.get("default_value"),
                "tuning_rmse_best": study.best_value,
                "tuning_rmse_reproduced": reproduced,
                "validation_rmse_default": validation_score(m_default, split, "rmse", cfg),
                "validation_rmse_tuned": validation_score(m_best, split, "rmse", tuned),
                "test_rmse_default": rmse(m_default.predict(te.users, te.items), te.ratings),
                "test_rmse_tuned": rmse(m_best.predict(te.users, te.items), te.ratings),
                "best_params": best,
            }
        )
    )


if __name__ == "__main__":
    main()
