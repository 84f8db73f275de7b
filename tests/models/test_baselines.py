import numpy as np
from contract import ModelContract

from movierec.models.baselines import Biases, GlobalMean
from movierec.models.popularity import Popularity


class TestBiases(ModelContract):
    model_class = Biases
    personalized = False

    def test_biases_match_closed_form_on_one_item(self) -> None:
        # one user, one item: bi = (r - mu) / (reg_i + 1) after the first half-epoch
        from movierec.kernels.baseline import baseline_als

        ip = np.array([0, 1], np.int64)
        bu, bi = baseline_als(
            ip,
            np.array([0], np.int32),
            np.array([5.0], np.float32),
            ip,
            np.array([0], np.int32),
            np.array([5.0], np.float32),
            3.0,
            0.0,
            1.0,
            1,
        )
        assert np.isclose(bi[0], 1.0) and np.isclose(bu[0], 1.0)


class TestGlobalMean(ModelContract):
    model_class = GlobalMean
    personalized = False


class TestPopularity(ModelContract):
    model_class = Popularity
    personalized = False

    def test_time_decay_favours_recent(self, data) -> None:
        train = data[1]
        plain = Popularity().fit(train).popularity_
        decayed = Popularity(half_life_days=0.01).fit(train).popularity_
        assert not np.allclose(plain / plain.max(), decayed / decayed.max())
