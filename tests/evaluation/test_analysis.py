"""Analysis helpers: mean and standard error, buckets, paired tests, learning curves."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from contract import checkerboard
from scipy import stats

from movierec.errors import ConfigError
from movierec.evaluation.analysis import (
    bucket_labels,
    bucket_table,
    mean_se,
    paired_test,
)
from movierec.evaluation.curves import learning_curve
from movierec.models.popularity import Popularity
from movierec.split import random_holdout


def test_mean_se_by_hand() -> None:
    m, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(math.sqrt(5 / 3) / 2)
    m, se = mean_se([np.nan, 2.0])  # NaN (undefined per-user values) are left out
    assert m == 2.0 and math.isnan(se)
    assert all(math.isnan(x) for x in mean_se([]))


def test_bucket_labels_edges() -> None:
    got = bucket_labels(np.array([0, 19, 20, 99, 100, 5000]), (20, 100)).tolist()
    assert got == ["cold", "cold", "medium", "medium", "warm", "warm"]
    assert bucket_labels(np.array([4, 5, 9, 10]), (5, 10)).tolist() == [
        "cold",
        "medium",
        "medium",
        "warm",
    ]
    with pytest.raises(ConfigError):
        bucket_labels(np.array([1]), (100, 20))


def test_bucket_table_by_hand() -> None:
    pu = pl.DataFrame(
        {
            "model": ["a"] * 5 + ["b"] * 2,
            "bucket": ["warm", "cold", "cold", "medium", "cold", "cold", "warm"],
            "ndcg@10": [1.0, 0.0, 0.5, 0.2, 1.0, 0.3, 0.4],
        }
    )
    t = bucket_table(pu, "ndcg@10")
    assert t["model"].to_list() == ["a", "a", "a", "b", "b"]
    assert t["bucket"].to_list() == ["cold", "medium", "warm", "cold", "warm"]
    cold = t.row(0, named=True)
    assert cold["n"] == 3 and cold["mean"] == pytest.approx(0.5)
    assert cold["se"] == pytest.approx(np.std([0, 0.5, 1], ddof=1) / math.sqrt(3))
    with pytest.raises(ConfigError):
        bucket_table(pu, "recall@10")


def test_paired_test_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.random(50)
    b = a - 0.1 + 0.05 * rng.standard_normal(50)
    r = paired_test(a, b)
    assert r["n"] == 50 and r["mean_diff"] == pytest.approx(np.mean(a - b))
    assert r["t_pvalue"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert r["wilcoxon_pvalue"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    assert r["t_pvalue"] < 1e-6
    same = paired_test(a, a)
    assert same["t_pvalue"] == 1.0 and same["wilcoxon_pvalue"] == 1.0 and same["mean_diff"] == 0
    with pytest.raises(ConfigError):
        paired_test(a, a[:3])


def test_learning_curve_checkerboard() -> None:
    full, _ = checkerboard()
    split = random_holdout(full, test_fraction=0.2, val_fraction=0.2, seed=1)
    lc = learning_curve(Popularity(), split, sizes=(0.2, 1.0), metric="ndcg@5", seed=3)
    assert lc.columns == [
        "size",
        "n_ratings",
        "train_ndcg@5",
        "train_ndcg@5_se",
        "validation_ndcg@5",
        "validation_ndcg@5_se",
        "fit_s",
    ]
    assert lc["size"].to_list() == [0.2, 1.0]
    assert lc["n_ratings"].to_list() == [round(0.2 * split.train.n_ratings), split.train.n_ratings]
    v = lc.select(pl.exclude("fit_s")).to_numpy()
    assert np.all((v[:, 2:] >= 0) & (v[:, 2:] <= 1))
    # training items are not excluded for the training metric: it sees what it fit on
    full_row = lc.row(1, named=True)
    assert full_row["train_ndcg@5"] > full_row["validation_ndcg@5"]
    again = learning_curve(Popularity(), split, sizes=(0.2, 1.0), metric="ndcg@5", seed=3)
    assert again.select(pl.exclude("fit_s")).equals(lc.select(pl.exclude("fit_s")))
    with pytest.raises(ConfigError):
        learning_curve(Popularity(), split, sizes=(0.0,))
    with pytest.raises(ConfigError):
        learning_curve(Popularity(), split, metric="ndcg")
    with pytest.raises(ConfigError):
        learning_curve(Popularity(), split, metric="auc@5")


def test_no_import_cycle_between_evaluator_and_analysis() -> None:
    # analysis is importable on its own and never imports the evaluator (nor curves)
    import subprocess
    import sys

    code = (
        "import sys, movierec.evaluation.analysis; "
        "assert 'movierec.evaluation.evaluator' not in sys.modules, 'evaluator'; "
        "assert 'movierec.evaluation.curves' not in sys.modules, 'curves'"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    from movierec.evaluation import analysis, metrics

    assert not hasattr(analysis, "learning_curve")
    assert metrics.ACCURACY == ("precision", "recall", "ndcg", "map", "mrr", "hit")
