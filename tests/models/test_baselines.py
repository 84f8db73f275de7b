import numpy as np
import polars as pl
from contract import ModelContract

from movierec.data.dataset import Dataset
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

    def test_time_decay_favours_recent(self) -> None:
        # movie 10: five likes 100 days before the end; movie 20: two likes on the last day
        day = 86400
        users = np.array([1, 2, 3, 4, 5, 6, 7])
        items = np.array([10, 10, 10, 10, 10, 20, 20])
        ts = np.array([0, 0, 0, 0, 0, 100 * day, 100 * day])
        movies = pl.DataFrame({"item": [10, 20], "title": ["Old", "New"]})
        train = Dataset.from_raw(users, items, np.full(7, 5.0), ts, movies)
        old, new = train.item_map.index([10, 20])
        plain = Popularity().fit(train).popularity_
        decayed = Popularity(half_life_days=10.0).fit(train).popularity_
        assert plain[old] > plain[new]
        assert decayed[new] > decayed[old]
        # weights 0.5 ** (age / half-life): 2 for the new likes, 5 / 1024 for the old ones
        # (plus the tie-break, 1e-3 x count / (n + 1))
        np.testing.assert_allclose(
            decayed[[new, old]], [2 + 2e-3 / 8, 5 / 1024 + 5e-3 / 8], rtol=1e-4
        )
