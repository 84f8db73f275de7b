import numpy as np
import pytest
from contract import ModelContract, global_mean_rmse

from movierec.errors import ConfigError
from movierec.evaluation.metrics import rmse
from movierec.kernels.als import als_half_step
from movierec.models.als import ALS
from movierec.split import random_holdout


class TestALS(ModelContract):
    model_class = ALS
    params = {"n_factors": 4, "n_epochs": 5}

    def test_solvers_agree(self, data) -> None:
        train = data[1]
        a = ALS(n_factors=4, n_epochs=8, solver="cholesky").fit(train)
        b = ALS(n_factors=4, n_epochs=8, solver="cg", cg_steps=5).fit(train)
        pa = a.predict(train.users, train.items)
        pb = b.predict(train.users, train.items)
        assert np.abs(pa - pb).max() < 0.05

    def test_bad_params(self, data) -> None:
        for p in ({"solver": "lu"}, {"n_factors": 0}, {"reg": -1.0}, {"cg_steps": 0}):
            with pytest.raises(ConfigError):
                ALS(**p).fit(data[1])

    def test_fold_in_is_one_user_solve(self, data) -> None:
        # folding in a known user's ratings equals re-solving all users given the items
        train = data[1]
        m = ALS(n_factors=4, n_epochs=6, solver="cholesky").fit(train)
        csr = train.csr()
        m.pu_, m.bu_ = m.pu_.copy(), m.bu_.copy()
        als_half_step(
            csr.indptr.astype(np.int64), csr.indices, csr.data, m.pu_, m.bu_, m.qi_, m.bi_,
            m.mu_, m.reg, m.reg_bias, True,
        )  # fmt: skip
        u = 3
        items = csr.indices[csr.indptr[u] : csr.indptr[u + 1]]
        ratings = csr.data[csr.indptr[u] : csr.indptr[u + 1]]
        np.testing.assert_allclose(m.fold_in(items, ratings), m.score([u])[0], atol=1e-4)
        assert (
            m.recommend_new(items, ratings, k=3)[0].tolist() == m.recommend([u], k=3)[0][0].tolist()
        )


def test_ml100k_holdout_rmse(ml100k) -> None:
    s = random_holdout(ml100k, 0.2, seed=0)
    m = ALS().fit(s.train)
    e = rmse(m.predict(s.test.users, s.test.items), s.test.ratings)
    assert 0.895 < e < 0.92, e
    assert e < global_mean_rmse(s.train, s.test) - 0.15  # the mean predictor: 1.13
