"""Grid search of one rating model inside the training part of fold 0 of a 5-fold split.

Selection data: the training part of ``kfold(ds, 5, seed=0)[0]`` split again 80/20 by
``random_holdout(..., test_fraction=0.2, seed=1)``; every grid point is fitted on the inner
80% and scored (RMSE) on the inner 20%. Prints one JSON line per grid point and a last
line with the best point; then, with ``--cv``, the 5-fold CV of the chosen params. Only
fold 0's test part is unseen by the choice: folds 1-4's test ratings were in the tuning
pool, so the ``--cv`` figure is optimistic. For a leak-free 5-fold figure use nested CV,
``movierec cv --tune TRIALS`` (movierec.experiment.tuning.nested_cv).

    python benchmarks/tune_rating.py --model als --grid '{"n_factors": [50, 100], ...}' [--cv]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time

from movierec.data import load
from movierec.evaluation.metrics import rmse
from movierec.evaluation.rating import cross_validate
from movierec.models import make_model
from movierec.split import kfold, random_holdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--model", default="als")
    ap.add_argument("--grid", required=True, help="JSON: param -> list of values")
    ap.add_argument("--cv", action="store_true", help="5-fold CV of the best point")
    a = ap.parse_args()
    ds = load(a.dataset)
    inner = random_holdout(kfold(ds, 5, seed=0)[0].train, test_fraction=0.2, seed=1)
    grid = json.loads(a.grid)
    best = None
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        t = time.perf_counter()
        m = make_model(a.model, **params).fit(inner.train)
        e = rmse(m.predict(inner.test.users, inner.test.items), inner.test.ratings)
        row = {"model": a.model, "params": params, "inner_rmse": round(e, 5)}
        row["fit_s"] = round(time.perf_counter() - t, 2)
        print(json.dumps(row), flush=True)
        if best is None or e < best["inner_rmse"]:
            best = row
    print(json.dumps({"best": best}), flush=True)
    if a.cv and best is not None:
        res = cross_validate(ds, {a.model: make_model(a.model, **best["params"])}, 5, seed=0)
        r = res[a.model]
        keep = ("rmse_mean", "rmse_std", "mae_mean", "mae_std", "fit_s", "n_fallback")
        print(json.dumps({"cv5": {k: r[k] for k in keep}, "params": best["params"]}), flush=True)


if __name__ == "__main__":
    main()
