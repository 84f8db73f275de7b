"""Users whose training ratings give a thresholding model nothing to go on (issue 10, item 5).

User 0 of the checkerboard keeps only her ratings below 4 in training: implicit ALS and
EASE / item-kNN thresholded at 4 learn nothing about her. She must be served by the ranking
fallback (training popularity) and counted as a fallback user, like a user without ratings.
"""

from __future__ import annotations

import numpy as np
import pytest
from contract import COLD_USER, checkerboard

from movierec.artifacts import load, save
from movierec.errors import UnknownIdError
from movierec.evaluation.evaluator import evaluate_model
from movierec.models import make_model

MODELS = [
    ("ials", {"factors": 4, "iterations": 3}),
    ("ease", {"threshold": 4.0, "l2": 10.0}),
    ("itemknn", {"threshold": 4.0, "k": 10}),
]


@pytest.fixture(scope="module")
def data():
    full, _ = checkerboard()
    keep = (full.users != COLD_USER) & ((full.users != 0) | (full.ratings < 4))
    train = full.subset(keep, name="train")
    test = full.subset((full.users == 0) & (full.ratings >= 4), name="test")
    assert train.user_counts()[0] > 0 and test.n_ratings > 0
    return full, train, test


@pytest.mark.parametrize(("name", "params"), MODELS)
def test_no_signal_user_gets_the_fallback(data, name, params, tmp_path) -> None:
    full, train, test = data
    m = make_model(name, **params).fit(train)
    known = m.known_users([0, 1, COLD_USER])
    assert known.tolist() == [False, True, False]
    pop = m.score([COLD_USER])[0]
    np.testing.assert_array_equal(m.score([0])[0], pop)
    with pytest.raises(UnknownIdError):
        m.score([0], unknown="error")
    items, _ = m.recommend([0], k=5)
    seen = set(train.items[train.users == 0].tolist())
    want = [int(i) for i in np.argsort(-pop, kind="stable") if int(i) not in seen][:5]
    assert sorted(items[0].tolist()) == sorted(want)
    _, s = evaluate_model(m, test, history=train, exclude=train, k=(5,), threshold=4.0)
    assert s["users_evaluated"] == 1 and s["users_fallback"] == 1
    save(m, tmp_path / "a", train=train)
    assert not load(tmp_path / "a").known_users([0])[0]


def test_model_that_uses_every_rating_keeps_the_user(data) -> None:
    _, train, _ = data
    m = make_model("ials", factors=4, iterations=3, binary=False).fit(train)
    assert m.known_users([0])[0]
    assert m.user_signal_ is None
