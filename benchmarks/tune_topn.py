"""Top-N tuning as `compare` does it: chosen on the tuning split, checked on validation and test.

For a config (default configs/ml-100k.yaml): every top-N model is fitted at its config
params on the tuning split's fit part (scored on the tuning target: each user's last
``tuning.n_tune`` training ratings) and on the whole training part (scored on validation
and test). Prints how well each selection part ranks the models compared with test
(Spearman), then runs :func:`tune_for_compare` for ``--models`` and prints default vs
tuned scores on validation and test. The test part plays no role in any choice.
One JSON line per model, then a summary line.

    python benchmarks/tune_topn.py [--config configs/ml-100k.yaml] [--data DIR]
        [--models ials,ease,itemknn] [--trials 20] [--budget 120]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from movierec.experiment.config import load_config  # noqa: E402
from movierec.experiment.tuning import (  # noqa: E402
    score_on,
    tune_for_compare,
    tuning_split,
    validation_test_rank_correlation,
)

ROOT = Path(__file__).resolve().parents[1]
RANKERS = ("popularity", "itemknn", "ials", "bpr", "ease", "content", "svd", "als", "biases")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "configs" / "ml-100k.yaml"))
    ap.add_argument("--data", default=None, help="a MovieLens folder instead of the config's")
    ap.add_argument("--models", default="ials,ease,itemknn")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--budget", type=float, default=None, help="global seconds")
    ap.add_argument("--metric", default="ndcg@10")
    a = ap.parse_args()
    tune = [m for m in a.models.split(",") if m]
    over = {
        "tuning.enabled": True,
        "tuning.models": tune,
        "tuning.trials": a.trials,
        "tuning.time_budget_s": a.budget,
    }
    if a.data:
        over["data"] = a.data
    cfg = load_config(a.config, overrides=over)
    ds = cfg.load_dataset()
    split = cfg.make_split(ds)
    ts = tuning_split(split.train, cfg.tuning.n_tune, cfg.tuning.min_train)
    th, m = cfg.metrics.threshold, a.metric
    parts = {"tuning": {}, "validation": {}, "test": {}}
    labels = [x for x in cfg.available_models() if cfg.spec(x).model in RANKERS]
    for label in labels:
        small = cfg.build_model(label).fit(ts.train)
        parts["tuning"][label] = {m: score_on(small, ts.train, ts.test, m, th)}
        full = cfg.build_model(label).fit(split.train)
        parts["validation"][label] = {m: score_on(full, split.train, split.validation, m, th)}
        parts["test"][label] = {m: score_on(full, split.train, split.test, m, th)}
    rho = {
        p: validation_test_rank_correlation(parts[p], parts["test"], m)
        for p in ("tuning", "validation")
    }
    t0 = time.perf_counter()
    report: dict = {}
    best = tune_for_compare(cfg, split, report=report)
    tune_s = time.perf_counter() - t0
    for label, params in best.items():
        mod = cfg.build_model(label, **params).fit(split.train)
        row = {
            "bench": "tune_topn",
            "data": ds.label,
            "model": label,
            "metric": m,
            "tuning_default": report[label]["default"],
            "tuning_best": report[label]["best"],
            "validation_default": parts["validation"][label][m],
            "validation_tuned": score_on(mod, split.train, split.validation, m, th),
            "test_default": parts["test"][label][m],
            "test_tuned": score_on(mod, split.train, split.test, m, th),
            "trials": report[label]["trials"],
            "tune_s": round(report[label]["seconds"], 1),
            "params": params,
        }
        print(json.dumps(row), flush=True)
    summary = {
        "bench": "tune_topn_summary",
        "data": ds.label,
        "models_ranked": len(labels),
        "spearman_tuning_vs_test": rho["tuning"],
        "spearman_validation_vs_test": rho["validation"],
        "tune_s": round(tune_s, 1),
        "scores": {p: {k: v[m] for k, v in d.items()} for p, d in parts.items()},
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
