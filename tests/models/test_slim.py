import numpy as np
import pytest
from contract import N_ITEMS, ModelContract, popularity_ndcg

from movierec.errors import ConfigError
from movierec.models.slim import SLIM


class TestSLIM(ModelContract):
    model_class = SLIM
    params = {"alpha": 0.01, "l1_ratio": 0.2, "k": 20, "threshold": 4.0}

    def test_matches_sklearn_elasticnet(self, data) -> None:
        from sklearn.linear_model import ElasticNet

        m = self.make(k=N_ITEMS, n_candidates=None, max_iter=2000, tol=1e-10).fit(data[1])
        x = (data[1].csr().toarray() >= 4).astype(np.float64)
        w = m.similarity_.toarray()
        assert np.all(np.diag(w) == 0) and np.all(w >= 0)
        for j in (0, 5, 25):
            xx = x.copy()
            xx[:, j] = 0  # w_j = 0
            e = ElasticNet(
                alpha=0.01,
                l1_ratio=0.2,
                positive=True,
                fit_intercept=False,
                tol=1e-12,
                max_iter=100_000,
            ).fit(xx, x[:, j])
            np.testing.assert_allclose(w[:, j], e.coef_, atol=1e-6)
            assert (e.coef_ > 0).sum() == (w[:, j] > 0).sum() > 0
        np.testing.assert_allclose(m.score([3])[0], x[3] @ w, rtol=1e-5)

    def test_top_k_per_column(self, data, fitted) -> None:
        w = fitted.similarity_.toarray()
        assert (w > 0).sum(axis=0).max() <= 20
        full = self.make(k=N_ITEMS).fit(data[1]).similarity_.toarray()
        for j in range(N_ITEMS):
            kept = np.flatnonzero(w[:, j])
            assert full[kept, j].min() >= np.sort(full[:, j])[::-1][kept.size - 1] - 1e-7

    def test_max_items_and_memory_guard(self, data) -> None:
        with pytest.raises(ConfigError, match=r"40 items.*max_items="):
            self.make(max_memory_gb=1e-6).fit(data[1])
        m = self.make(max_items=25).fit(data[1])
        assert m.items_excluded_ == 15 and m.kept_items_.size == 25
        w = m.similarity_.toarray()
        out = np.setdiff1d(np.arange(N_ITEMS), m.kept_items_)
        assert not w[out].any() and not w[:, out].any() and w.any()
        items, _ = m.recommend([0], k=5)
        assert set(items[0].tolist()) <= set(m.kept_items_.tolist())

    def test_fold_in_matches_trained_user(self, data, fitted) -> None:
        csr = data[1].csr()
        u = 7
        it = csr.indices[csr.indptr[u] : csr.indptr[u + 1]]
        r = csr.data[csr.indptr[u] : csr.indptr[u + 1]]
        np.testing.assert_allclose(fitted.fold_in(it, r), fitted.score([u])[0], rtol=1e-6)

    def test_bad_params(self, data) -> None:
        for bad in (
            {"alpha": 0},
            {"l1_ratio": 2},
            {"k": 0},
            {"n_candidates": 0},
            {"max_items": 0},
            {"max_iter": 0},
        ):
            with pytest.raises(ConfigError):
                SLIM(**bad).fit(data[1])


def test_ml100k_slim_beats_popularity(ml100k) -> None:
    # params chosen on the validation item (benchmarks/topn_graph.py --grid slim)
    from movierec.evaluation.evaluator import evaluate_model
    from movierec.split import temporal_per_user

    split = temporal_per_user(ml100k, n_val=1, n_test=5, min_train=5)
    m = SLIM(**SLIM_BEST).fit(split.train)
    _, s = evaluate_model(m, split.test, history=split.train, exclude=split.train, k=(10,))
    assert 0.115 <= s["ndcg@10"] <= 0.145  # measured 0.130
    assert s["ndcg@10"] >= popularity_ndcg(split) + 0.06  # popularity: 0.057


SLIM_BEST = {"alpha": 1.0, "l1_ratio": 0.003, "recency": 5.0, "recency_floor": 0.1}
