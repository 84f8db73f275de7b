"""The contract every model's tests inherit: subclass ModelContract, set model_class/params."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError, UnknownIdError
from movierec.models.base import Recommender

N_USERS, N_ITEMS = 60, 40
COLD_USER = N_USERS - 1  # in the id map, but all of its ratings are held out of train


def checkerboard(seed: int = 0) -> tuple[Dataset, Dataset]:
    """(full, train): two taste groups; group g loves items of its half, dislikes the other.

    Users 0..29 like items 0..19 (ratings 4-5) and dislike 20..39 (1-2); users 30..59 the
    opposite. Each user rates a random ~60% of items. The last user has no training rating.
    """
    rng = np.random.default_rng(seed)
    u, i, r = [], [], []
    for user in range(N_USERS):
        group = user >= N_USERS // 2
        for item in np.flatnonzero(rng.random(N_ITEMS) < 0.6):
            likes = (item >= N_ITEMS // 2) == group
            u.append(user + 1)
            i.append(item * 10 + 7)
            r.append(float(rng.choice([4.0, 5.0]) if likes else rng.choice([1.0, 2.0])))
    n = len(u)
    ts = 1_000_000 + np.arange(n, dtype=np.int64) * 60
    movies = pl.DataFrame(
        {
            "item": [k * 10 + 7 for k in range(N_ITEMS)],
            "title": [f"Movie {k}" for k in range(N_ITEMS)],
            "year": [1990 + k % 20 for k in range(N_ITEMS)],
            "genres": [["Drama"] if k < N_ITEMS // 2 else ["Comedy"] for k in range(N_ITEMS)],
        },
        schema={
            "item": pl.Int64,
            "title": pl.String,
            "year": pl.Int32,
            "genres": pl.List(pl.String),
        },
    )
    full = Dataset.from_raw(np.array(u), np.array(i), np.array(r), ts, movies, name="checkerboard")
    train = full.subset(full.users != COLD_USER, name="checkerboard:train")
    return full, train


def assert_same_model(a: Recommender, b: Recommender, full: Dataset) -> None:
    """Two models give identical scores, lists, predictions and similar items."""
    assert type(a) is type(b) and repr(a) == repr(b)
    users = np.arange(N_USERS)
    np.testing.assert_array_equal(a.score(users), b.score(users))
    ia, sa = a.recommend(users, k=7)
    ib, sb = b.recommend(users, k=7)
    np.testing.assert_array_equal(ia, ib)
    np.testing.assert_array_equal(sa, sb)
    if a.rating_model:
        np.testing.assert_array_equal(
            a.predict(full.users, full.items), b.predict(full.users, full.items)
        )
    try:
        sim_a = a.similar_items(np.arange(5), k=5)
    except ConfigError:
        return
    np.testing.assert_array_equal(sim_a[0], b.similar_items(np.arange(5), k=5)[0])


class ModelContract:
    """Shared tests. Subclasses set ``model_class`` and optionally ``params``."""

    model_class: ClassVar[type[Recommender]]
    params: ClassVar[dict[str, Any]] = {}
    #: False for models that cannot learn user-item interactions (constants, biases).
    personalized: ClassVar[bool] = True

    @classmethod
    def make(cls, **kw: Any) -> Recommender:
        return cls.model_class(**{**cls.params, **kw})

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> tuple[Dataset, Dataset]:
        return checkerboard()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data: tuple[Dataset, Dataset]) -> Recommender:
        return cls.make().fit(data[1])

    def test_fit_returns_self(self, data: tuple[Dataset, Dataset]) -> None:
        m = self.make()
        assert m.fit(data[1]) is m

    def test_params_round_trip(self) -> None:
        m = self.make()
        p = m.get_params()
        assert set(p) == set(m._param_names())
        c = m.clone()
        assert c is not m and c.get_params() == p
        with pytest.raises(ConfigError):
            m.set_params(no_such_param=1)

    def test_same_seed_same_result(self, data: tuple[Dataset, Dataset]) -> None:
        users = np.arange(N_USERS - 1)
        a = self.make().fit(data[1]).score(users)
        b = self.make().fit(data[1]).score(users)
        np.testing.assert_array_equal(a, b)

    def test_learns_the_checkerboard(self, fitted: Recommender) -> None:
        # a personalized model puts its top items on the user's own side
        if not self.personalized:
            pytest.skip(f"{self.model_class.__name__} is not personalized")
        items, _ = fitted.recommend(np.arange(N_USERS - 1), k=3)
        side = items >= N_ITEMS // 2
        group = (np.arange(N_USERS - 1) >= N_USERS // 2)[:, None]
        assert (side == group).mean() >= 0.8

    def test_seen_items_excluded(self, data: tuple[Dataset, Dataset], fitted: Recommender) -> None:
        train = data[1]
        users = np.arange(N_USERS - 1)
        items, _ = fitted.recommend(users, k=N_ITEMS)
        seen = train.csr()
        for u in users:
            rec = set(items[u][items[u] >= 0].tolist())
            assert not rec & set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
            assert len(rec) == N_ITEMS - (seen.indptr[u + 1] - seen.indptr[u])

    def test_scores_sorted(self, fitted: Recommender) -> None:
        _, scores = fitted.recommend(np.arange(10), k=10)
        assert np.all(np.diff(scores, axis=1) <= 0)

    def test_k_beyond_catalogue(self, fitted: Recommender) -> None:
        items, scores = fitted.recommend([0, 1], k=N_ITEMS + 25, exclude_seen=False)
        assert items.shape == (2, N_ITEMS)
        assert sorted(items[0].tolist()) == list(range(N_ITEMS))

    def test_unknown_user_policy(self, fitted: Recommender) -> None:
        assert not fitted.known_users([COLD_USER])[0]
        with pytest.raises(UnknownIdError):
            fitted.recommend([COLD_USER], k=5, unknown="error")
        items, _ = fitted.recommend([COLD_USER], k=5, unknown="fallback")
        assert (items >= 0).all()
        with pytest.raises(UnknownIdError):
            fitted.recommend([N_USERS + 5], k=5)
        with pytest.raises(ConfigError):
            fitted.recommend([0], k=5, unknown="guess")

    def test_save_load_identical_scores(
        self, data: tuple[Dataset, Dataset], fitted: Recommender, tmp_path: Path
    ) -> None:
        from movierec.artifacts import load, save

        save(fitted, tmp_path / "model", train=data[1])
        assert_same_model(fitted, load(tmp_path / "model"), data[0])

    def test_predict_follows_its_kind(
        self, data: tuple[Dataset, Dataset], fitted: Recommender
    ) -> None:
        full = data[0]
        if not fitted.rating_model:
            with pytest.raises(ConfigError):
                fitted.predict([0], [0])
            return
        p, fb = fitted.predict(full.users, full.items, return_fallback=True)
        lo, hi = fitted.rating_scale_
        assert p.dtype == np.float32 and (p >= lo).all() and (p <= hi).all()
        assert fb.sum() == (full.users == COLD_USER).sum()
        with pytest.raises(UnknownIdError):
            fitted.predict([COLD_USER], [0], unknown="error")


def global_mean_rmse(train: Dataset, test: Dataset) -> float:
    """RMSE on ``test`` of predicting every rating by the training mean (the floor to beat)."""
    d = test.ratings.astype(np.float64) - float(train.ratings.astype(np.float64).mean())
    return float(np.sqrt(np.mean(d * d)))


def popularity_ndcg(split: Any, k: int = 10) -> float:
    """NDCG@k on ``split.test`` of training popularity (the non-personalized floor)."""
    from movierec.evaluation.evaluator import evaluate_model
    from movierec.models.popularity import Popularity

    m = Popularity().fit(split.train)
    _, s = evaluate_model(m, split.test, history=split.train, exclude=split.train, k=(k,))
    return float(s[f"ndcg@{k}"])
