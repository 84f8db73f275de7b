"""MLlib ALS / implicit ALS against the numba models, and Spark metrics against
movierec.evaluation on the same recommendations and on the exported models."""

from __future__ import annotations

import math

import numpy as np
import pytest

from movierec.errors import ConfigError
from movierec.evaluation.evaluator import ACCURACY, evaluate_model, relevant_sets, top_k_lists
from movierec.models.als import ALS
from movierec.models.ials import ImplicitALS
from movierec.models.popularity import Popularity

K = (5, 10, 20)
#: Spark MLlib vs numba with matched params on the same split (observed: 0.017, 0.007)
RMSE_TOL = 0.04
NDCG_TOL = 0.04


def als_params():
    return ALS(n_factors=8, n_epochs=10, reg=0.1, reg_bias=0.1, random_state=0)


def ials_params():
    return ImplicitALS(factors=16, iterations=10, regularization=0.1, reg_scaling=1.0)


@pytest.fixture(scope="module")
def fits(sdata, per_user):
    from movierec.spark.train import fit, train_stats

    stats = train_stats(sdata, per_user.train)
    return {
        "als": fit(sdata, per_user.train, als_params(), stats),
        "ials": fit(sdata, per_user.train, ials_params(), stats),
    }


@pytest.fixture(scope="module")
def exported(fits, sdata, per_user, local_per_user, tmp_path_factory):
    from movierec.spark.export import export

    out = {}
    ds = None
    for name, f in fits.items():
        path = tmp_path_factory.mktemp("art") / name
        m, ds, p = export(f, sdata, per_user.train, path, extra={"label": name}, train_ds=ds)
        out[name] = (m, p)
    assert ds.fingerprint() == local_per_user.train.fingerprint()
    return out


def _local_eval(model, split):
    _, s = evaluate_model(model, split.test, history=split.train, exclude=split.train, k=K)
    return s


def test_param_mapping():
    from movierec.spark.train import mllib_params

    p, _ = mllib_params(ALS(n_factors=12, n_epochs=7, reg=0.3, random_state=5))
    assert p["rank"] == 12 and p["maxIter"] == 7 and p["regParam"] == 0.3 and p["seed"] == 5
    p, _ = mllib_params(ImplicitALS(factors=9, iterations=4, alpha=3.0, regularization=2.0))
    assert (p["rank"], p["maxIter"], p["alpha"], p["implicitPrefs"]) == (9, 4, 3.0, True)
    with pytest.raises(ConfigError, match="runs with --engine local"):
        mllib_params(Popularity())


def test_unweighted_regularization_is_rescaled(spark, per_user):
    from movierec.spark.train import mllib_params

    p, notes = mllib_params(ALS(reg=10.0, weighted=False), per_user.train)
    assert 0 < p["regParam"] < 10.0 and any("geometric mean" in n for n in notes)


def test_explicit_als_rmse_close_to_numba(fits, per_user, local_per_user):
    from movierec.spark.evaluate import rating_errors

    spark_rmse = rating_errors(fits["als"], per_user.test)["rmse"]
    local = als_params().fit(local_per_user.train)
    local_rmse = _local_eval(local, local_per_user)["rmse"]
    assert abs(spark_rmse - local_rmse) <= RMSE_TOL, (spark_rmse, local_rmse)
    mean_rmse = float(
        np.sqrt(np.mean((local_per_user.test.ratings - local_per_user.train.ratings.mean()) ** 2))
    )
    assert spark_rmse < mean_rmse  # it learned something beyond the global mean


def test_implicit_als_ndcg_close_to_numba(fits, per_user, local_per_user):
    from movierec.spark.evaluate import evaluate

    s = evaluate(fits["ials"], per_user.test, per_user.train, K)
    local = _local_eval(ials_params().fit(local_per_user.train), local_per_user)
    pop = _local_eval(Popularity().fit(local_per_user.train), local_per_user)
    assert abs(s["ndcg@10"] - local["ndcg@10"]) <= NDCG_TOL, (s["ndcg@10"], local["ndcg@10"])
    assert s["ndcg@10"] > pop["ndcg@10"]
    assert s["users_evaluated"] == local["users_evaluated"]


def test_spark_metrics_equal_local_on_the_same_lists(spark, local_per_user):
    import pyarrow as pa

    from movierec.spark.evaluate import ranking_metrics
    from movierec.spark.io import from_dataset

    split = local_per_user
    model = ImplicitALS(factors=8, iterations=3).fit(split.train)
    per_user, local = evaluate_model(
        model, split.test, history=split.train, exclude=split.train, k=K
    )
    users, *_ = relevant_sets(split.test, 4.0)
    rec, _ = top_k_lists(model, users, K[-1], exclude=split.train)
    rec[::7, 15:] = -1  # some short lists
    rec_df = spark.createDataFrame(
        pa.table({"u": users.astype(np.int32), "items": [list(map(int, r)) for r in rec]})
    )
    sd = from_dataset(spark, split.test)
    summary, per = ranking_metrics(rec_df, sd.ratings, K, 4.0)
    # the same lists locally, with the padding
    from movierec.evaluation import metrics as M

    _, ip, ix, _ = relevant_sets(split.test, 4.0)
    gains = M.hit_matrix(rec, ip, ix)
    hits = (gains > 0).astype(float)
    n_rel = np.diff(ip)
    got = per.toArrow()
    order = np.argsort(got.column("u").to_numpy())
    assert np.array_equal(got.column("u").to_numpy()[order], users)
    for k in K:
        want = {
            "precision": M.precision_at_k(hits, k),
            "recall": M.recall_at_k(hits, n_rel, k),
            "ndcg": M.ndcg_at_k(gains, n_rel, k),
            "map": M.average_precision_at_k(hits, n_rel, k),
            "mrr": M.reciprocal_rank_at_k(hits, k),
            "hit": M.hit_rate_at_k(hits, k),
        }
        for name in ACCURACY:
            col = got.column(f"{name}@{k}").to_numpy()[order]
            np.testing.assert_allclose(col, want[name], rtol=0, atol=1e-9, err_msg=f"{name}@{k}")
            assert math.isclose(summary[f"{name}@{k}"], want[name].mean(), abs_tol=1e-9)
            assert math.isclose(
                summary[f"{name}@{k}_se"], want[name].std(ddof=1) / math.sqrt(users.size),
                abs_tol=1e-9,
            )  # fmt: skip
    assert summary["users_evaluated"] == local["users_evaluated"]
    sd.close()


@pytest.mark.parametrize("name", ["als", "ials"])
def test_spark_evaluation_equals_local_on_the_exported_model(
    name, fits, exported, per_user, local_per_user
):
    from movierec.spark.evaluate import evaluate

    s = evaluate(fits[name], per_user.test, per_user.train, K)
    local = _local_eval(exported[name][0], local_per_user)
    for key in [f"{m}@{k}" for m in ACCURACY for k in K] + ["users_evaluated", "users_fallback"]:
        assert math.isclose(s[key], local[key], abs_tol=1e-9), (key, s[key], local[key])
    for k in K:
        assert math.isclose(s[f"coverage@{k}"], local[f"coverage@{k}"], abs_tol=1e-12)
    if name == "als":
        assert math.isclose(s["rmse"], local["rmse"], abs_tol=1e-6)
        assert math.isclose(s["mae"], local["mae"], abs_tol=1e-6)
        assert s["rating_fallbacks"] == local["rating_fallbacks"]


def test_cold_users_get_the_counted_fallback_and_no_nan(spark, coarse):
    """A global time cut leaves test users without training ratings: fallback, counted."""
    from movierec.spark.evaluate import evaluate
    from movierec.spark.export import to_model
    from movierec.spark.io import from_dataset
    from movierec.spark.split import make_split as spark_split
    from movierec.spark.train import fit
    from movierec.split import make_split

    sd = from_dataset(spark, coarse)
    sp = spark_split(sd, "temporal_global", fractions=(0.5, 0.1, 0.4))
    f = fit(sd, sp.train, als_params())
    s = evaluate(f, sp.test, sp.train, (10,))
    loc_split = make_split(coarse, "temporal_global", fractions=(0.5, 0.1, 0.4))
    model = to_model(f, loc_split.train)
    _, local = evaluate_model(
        model, loc_split.test, history=loc_split.train, exclude=loc_split.train, k=(10,)
    )
    assert s["users_fallback"] == local["users_fallback"] > 0
    assert s["rating_fallbacks"] == local["rating_fallbacks"] > 0
    assert all(math.isfinite(s[k]) for k in ("rmse", "mae", "ndcg@10", "recall@10"))
    assert math.isclose(s["ndcg@10"], local["ndcg@10"], abs_tol=1e-9)
    assert math.isclose(s["rmse"], local["rmse"], abs_tol=1e-6)
    sp.close()
    sd.close()
