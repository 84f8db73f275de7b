import numpy as np
import pytest
from contract import ModelContract, global_mean_rmse

from movierec.errors import ConfigError
from movierec.evaluation.metrics import rmse
from movierec.models import knn
from movierec.models.knn import KNNBaseline
from movierec.split import random_holdout


class TestKNNBaseline(ModelContract):
    model_class = KNNBaseline
    params = {"k": 10}

    def test_similar_items_share_a_side(self, fitted) -> None:
        items, sims = fitted.similar_items(np.arange(40), k=3)
        assert ((items >= 20) == (np.arange(40) >= 20)[:, None]).mean() >= 0.9
        assert (sims <= 1.0).all()

    def test_user_based_learns(self, data) -> None:
        full, train = data
        m = KNNBaseline(user_based=True, k=10).fit(train)
        assert m.sim_.shape == (train.n_users, train.n_users)
        p = m.predict(train.users, train.items)
        b = m.mu_ + m.bu_[train.users] + m.bi_[train.items]
        assert rmse(p, train.ratings) < rmse(np.clip(b, 1, 5), train.ratings)

    def test_dense_limit(self, data, monkeypatch) -> None:
        monkeypatch.setattr(knn, "MAX_DENSE", 10)
        with pytest.raises(ConfigError, match="limit 10"):
            KNNBaseline().fit(data[1])

    def test_min_k_falls_back_to_baseline(self, data) -> None:
        train = data[1]
        m = KNNBaseline(k=5, min_k=1000).fit(train)
        p = m.predict(train.users, train.items)
        b = np.clip(m.mu_ + m.bu_[train.users] + m.bi_[train.items], 1, 5)
        np.testing.assert_allclose(p, b, atol=1e-5)


def test_ml100k_holdout_rmse(ml100k) -> None:
    s = random_holdout(ml100k, 0.2, seed=0)
    m = KNNBaseline().fit(s.train)
    e = rmse(m.predict(s.test.users, s.test.items), s.test.ratings)
    assert 0.90 < e < 0.925, e
    assert e < global_mean_rmse(s.train, s.test) - 0.15  # the mean predictor: 1.13
