"""RatingBlend: the model contract, the internal split, stacking weights, ml-100k accuracy."""

import numpy as np
import pytest
from contract import N_USERS, ModelContract, checkerboard

from movierec.errors import ConfigError
from movierec.evaluation.metrics import rmse
from movierec.models import make_model
from movierec.models.blend import RatingBlend, per_user_holdout
from movierec.split import random_holdout

SVD_P = {"n_factors": 8, "n_epochs": 30, "lr_all": 0.01}
TWO = {"svd": SVD_P, "biases": {}}


class TestRatingBlend(ModelContract):
    model_class = RatingBlend
    params = {"models": TWO}

    def test_sub_models_refitted_on_all_of_train(self, data, fitted) -> None:
        assert [type(m).__name__ for m in fitted.models_] == ["SVD", "Biases"]
        alone = make_model("svd", **SVD_P, random_state=0).fit(data[1])
        np.testing.assert_array_equal(fitted.models_[0].pu_, alone.pu_)

    def test_prediction_is_the_weighted_sum(self, data, fitted) -> None:
        full = data[0]
        u, i = full.users[full.users != N_USERS - 1], full.items[full.users != N_USERS - 1]
        want = fitted.intercept_ + sum(
            w * m.predict(u, i) for w, m in zip(fitted.weights_, fitted.models_, strict=True)
        )
        lo, hi = fitted.rating_scale_
        np.testing.assert_allclose(fitted.predict(u, i), np.clip(want, lo, hi), atol=1e-5)


def test_per_user_holdout() -> None:
    train = checkerboard()[1]
    held = per_user_holdout(train, 0.25, seed=3)
    n = np.bincount(train.users, minlength=train.n_users)
    h = np.bincount(train.users[held], minlength=train.n_users)
    np.testing.assert_array_equal(h, np.floor(0.25 * n))
    np.testing.assert_array_equal(held, per_user_holdout(train, 0.25, seed=3))
    assert (held != per_user_holdout(train, 0.25, seed=4)).any()


def test_weights_favour_the_informative_model() -> None:
    train = checkerboard()[1]
    m = RatingBlend(models={"svd": SVD_P, "globalmean": {}}, method="nnls").fit(train)
    # the global mean is a constant: all its weight goes to the intercept
    assert m.weights_[0] > 0.8 and m.weights_[1] == 0.0
    assert m.holdout_rmse_[-1] <= min(m.holdout_rmse_[:-1]) + 1e-9


def test_bad_params_raise() -> None:
    train = checkerboard()[1]
    for bad in ({"holdout": 0.0}, {"holdout": 1.0}, {"method": "lasso"}, {"reg": -1.0},
                {"models": {}}, {"models": {"ease": {}}}):  # fmt: skip
        with pytest.raises(ConfigError):
            RatingBlend(**{"models": TWO, **bad}).fit(train)


def test_blend_beats_its_parts_on_ml100k(ml100k) -> None:
    split = random_holdout(ml100k, 0.2, seed=0)
    te = split.test
    parts = {"bayesmf": {"n_factors": 10, "n_samples": 40, "burn_in": 10, "thin": 1},
             "knnbaseline": {}}  # fmt: skip
    m = RatingBlend(models=parts).fit(split.train)
    got = rmse(m.predict(te.users, te.items), te.ratings)
    subs = [rmse(s.predict(te.users, te.items), te.ratings) for s in m.models_]
    # measured: blend 0.8945, bayesmf 0.8978, knnbaseline 0.9161 (seed 0)
    assert got < min(subs) - 0.002
