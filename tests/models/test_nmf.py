import numpy as np
import pytest
from contract import ModelContract, global_mean_rmse

from movierec.errors import ConfigError
from movierec.evaluation.metrics import rmse
from movierec.models.nmf import NMF
from movierec.split import random_holdout


class TestNMF(ModelContract):
    model_class = NMF
    params = {"n_factors": 4, "n_epochs": 30}

    def test_factors_stay_non_negative(self, fitted) -> None:
        assert (fitted.pu_ >= 0).all() and (fitted.qi_ >= 0).all()
        assert np.isfinite(fitted.pu_).all() and np.isfinite(fitted.qi_).all()

    def test_biased_factors_stay_non_negative(self, data) -> None:
        m = NMF(n_factors=4, n_epochs=20, biased=True).fit(data[1])
        assert (m.pu_ >= 0).all() and (m.qi_ >= 0).all()
        assert np.abs(m.bu_).sum() > 0 and np.abs(m.bi_).sum() > 0

    def test_training_error_decreases(self, data) -> None:
        train = data[1]
        errs = [
            rmse(NMF(n_factors=4, n_epochs=n).fit(train).predict(train.users, train.items),
                 train.ratings)
            for n in (1, 10, 50)
        ]  # fmt: skip
        assert errs[0] > errs[1] > errs[2]

    def test_negative_init_rejected(self, data) -> None:
        with pytest.raises(ConfigError):
            NMF(init_low=-0.5).fit(data[1])


def test_ml100k_holdout_rmse(ml100k) -> None:
    s = random_holdout(ml100k, 0.2, seed=0)
    m = NMF().fit(s.train)
    e = rmse(m.predict(s.test.users, s.test.items), s.test.ratings)
    assert 0.945 < e < 0.97, e
    assert e < global_mean_rmse(s.train, s.test) - 0.15  # the mean predictor: 1.13
