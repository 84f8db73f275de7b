import numpy as np
import pytest
from contract import ModelContract, popularity_ndcg

from movierec.errors import ConfigError
from movierec.evaluation.evaluator import evaluate_model
from movierec.kernels.topk import topk_rows
from movierec.models.ials import ImplicitALS
from movierec.split import temporal_per_user


class TestImplicitALS(ModelContract):
    model_class = ImplicitALS
    params = {"factors": 8, "iterations": 5, "regularization": 1.0}

    def test_bad_params(self, data) -> None:
        for p in ({"solver": "lu"}, {"factors": 0}, {"alpha": -1.0}, {"cg_steps": 0}):
            with pytest.raises(ConfigError):
                ImplicitALS(**p).fit(data[1])

    def test_solvers_agree(self, data) -> None:
        a = ImplicitALS(factors=4, iterations=10, solver="cholesky", regularization=1.0)
        b = ImplicitALS(factors=4, iterations=10, cg_steps=6, regularization=1.0)
        users = np.arange(10)
        np.testing.assert_allclose(
            a.fit(data[1]).score(users), b.fit(data[1]).score(users), atol=0.02
        )

    def test_binary_and_reg_scaling_change_the_model(self, data) -> None:
        base = ImplicitALS(factors=4, iterations=3).fit(data[1]).user_factors_
        for p in ({"binary": False}, {"reg_scaling": 1.0}):
            other = ImplicitALS(factors=4, iterations=3, **p).fit(data[1]).user_factors_
            assert not np.allclose(base, other)


class TestImplicitALSCholesky(ModelContract):
    model_class = ImplicitALS
    params = {"factors": 8, "iterations": 5, "solver": "cholesky", "reg_scaling": 0.5}


@pytest.fixture(scope="module")
def split100k(ml100k):
    return temporal_per_user(ml100k, n_val=1, n_test=5, min_train=5)


def test_ml100k_ndcg(split100k) -> None:
    # implicit's ALS (64 factors, 15 iterations, binary x10) gets NDCG@10 0.099 here
    s = split100k
    m = ImplicitALS().fit(s.train)
    _, summary = evaluate_model(m, s.test, history=s.train, exclude=s.train, k=10)
    assert summary["ndcg@10"] >= 0.099, summary["ndcg@10"]
    assert summary["ndcg@10"] >= popularity_ndcg(s) + 0.035  # popularity: 0.057
    assert summary["users_evaluated"] > 700


def test_fold_in_reproduces_trained_users(split100k) -> None:
    train = split100k.train
    m = ImplicitALS(factors=32, solver="cholesky").fit(train)
    csr = train.csr()
    users = np.flatnonzero(np.diff(csr.indptr) >= 20)[:40]
    overlap = []
    for u in users:
        items = csr.indices[csr.indptr[u] : csr.indptr[u + 1]]
        ratings = csr.data[csr.indptr[u] : csr.indptr[u + 1]]
        new, _ = m.recommend_new(items, ratings, k=10)
        trained, _ = m.recommend([u], k=10)
        overlap.append(len(set(new.tolist()) & set(trained[0].tolist())))
    assert np.mean(overlap) >= 8, overlap
    # no rating above the threshold: the popularity fallback
    assert np.array_equal(m.fold_in([0, 1], [1.0, 2.0]), m.item_count_.astype(np.float32))
    # the Gram matrix kept between fold-ins is the current fit's, after a refit too
    m.random_state = 7
    m.fit(train)
    fresh = ImplicitALS(factors=32, solver="cholesky", random_state=7).fit(train)
    np.testing.assert_allclose(m.fold_in(items, ratings), fresh.fold_in(items, ratings), rtol=1e-4)


def test_recommend_ranks_like_the_dense_scores(split100k) -> None:
    # recommend ranks known users from the factors (topk_dot); no-signal and cold users
    # (all ratings below the threshold, or none) get the popularity fallback, as score() does
    train = split100k.train
    m = ImplicitALS(factors=16, iterations=3).fit(train)
    users = np.arange(train.n_users)
    assert not m.known_users(users).all()
    got_i, got_v = m.recommend(users, k=10, batch_size=300)
    want_i, want_v = topk_rows(m.score(users), 10, *m._seen_rows(users))
    assert np.array_equal(got_i, want_i)
    np.testing.assert_allclose(got_v, want_v, rtol=1e-5, atol=1e-6)
    free_i, _ = m.recommend(users, k=10, exclude_seen=False)
    none = np.zeros(users.size + 1, np.int64), np.empty(0, np.int32)
    assert np.array_equal(free_i, topk_rows(m.score(users), 10, *none)[0])
