"""The same seed gives the same numbers: threaded BPR, SVD, hybrids, and configs' seeds."""

from __future__ import annotations

import numba as nb
import numpy as np
import pytest
from contract import checkerboard

from movierec.experiment.config import parse_config
from movierec.models import bpr as bpr_module
from movierec.models.base import blas_limit
from movierec.models.bpr import BPR
from movierec.models.hybrid import RRFHybrid
from movierec.models.mf import SVD, SVDpp

THREADS = min(2, nb.config.NUMBA_NUM_THREADS)


@pytest.fixture
def two_threads():
    old = nb.get_num_threads()
    nb.set_num_threads(THREADS)
    yield THREADS
    nb.set_num_threads(old)


@pytest.fixture(scope="module")
def train():
    return checkerboard()[1]


def _factors(m) -> list[np.ndarray]:
    return [v for k, v in sorted(vars(m).items()) if k.endswith("_") and isinstance(v, np.ndarray)]


def _same(a, b) -> None:
    fa, fb = _factors(a), _factors(b)
    assert len(fa) == len(fb) > 0
    for x, y in zip(fa, fb, strict=True):
        np.testing.assert_array_equal(x, y)


def test_threaded_bpr_same_seed_same_factors_any_thread_count(train, two_threads) -> None:
    # small strata so the 60 x 40 checkerboard really runs several blocks at once
    mp = pytest.MonkeyPatch()
    mp.setattr(bpr_module, "STRATA", 4)
    mp.setattr(bpr_module, "PARALLEL_MIN_POSITIVES", 0)
    try:
        p = {"factors": 8, "iterations": 30, "parallel": True}
        a = BPR(**p, random_state=3).fit(train)
        b = BPR(**p, random_state=3).fit(train)
        _same(a, b)
        nb.set_num_threads(1)
        _same(a, BPR(**p, random_state=3).fit(train))  # the thread count does not matter
        nb.set_num_threads(two_threads)
        other = BPR(**p, random_state=4).fit(train)
        assert not np.array_equal(a.item_factors_, other.item_factors_)
        pop = BPR(**p, negatives="popularity", random_state=3).fit(train)
        _same(pop, BPR(**p, negatives="popularity", random_state=3).fit(train))
    finally:
        mp.undo()


@pytest.mark.parametrize("cls", [SVD, SVDpp])
def test_svd_same_seed_same_factors_with_threads(train, two_threads, cls) -> None:
    p = {"n_factors": 8, "n_epochs": 10}
    _same(cls(**p, random_state=1).fit(train), cls(**p, random_state=1).fit(train))
    a, b = cls(**p, random_state=1).fit(train), cls(**p, random_state=2).fit(train)
    assert not np.array_equal(a.qi_, b.qi_)


def test_hybrid_sub_models_take_the_experiment_seed(train, two_threads) -> None:
    subs = {"bpr": {"factors": 8, "iterations": 20}, "svd": {"n_factors": 4, "n_epochs": 5}}
    cfg = {"models": {"h": {"model": "rrf", "params": {"models": subs}}}}
    m7 = parse_config({**cfg, "seed": 7}).build_model("h").fit(train)
    assert [s.random_state for s in m7.models_] == [7, 7]
    again = parse_config({**cfg, "seed": 7}).build_model("h").fit(train)
    users = np.arange(train.n_users - 1)
    np.testing.assert_array_equal(m7.score(users), again.score(users))
    for x, y in zip(m7.models_, again.models_, strict=True):
        _same(x, y)
    m8 = parse_config({**cfg, "seed": 8}).build_model("h").fit(train)
    assert not np.array_equal(m7.models_[0].item_factors_, m8.models_[0].item_factors_)
    # a seed given in the sub-model's own params wins
    own = RRFHybrid(models={"bpr": {**subs["bpr"], "random_state": 1}}, random_state=9)
    assert own.fit(train).models_[0].random_state == 1


def test_blas_limited_inside_fit_and_score_and_restored(train) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]

    seen = []

    class Probe(BPR):
        def _fit(self, train):
            seen.append(blas_threads())
            super()._fit(train)

        def _score(self, users):
            seen.append(blas_threads())
            return super()._score(users)

    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        assert before and set(before) == {2}
        m = Probe(factors=4, iterations=2).fit(train)
        m.score([0, 1])
        assert len(seen) >= 2 and all(set(t) == {1} for t in seen)
        assert blas_threads() == before
        with blas_limit(None):
            assert blas_threads() == before


def test_blas_limit_zero_gives_every_core_even_below_a_lower_limit() -> None:
    """EASE's ``blas_threads = 0``: its LAPACK inverse runs on every core even where
    OPENBLAS_NUM_THREADS=1 (the Makefile's and the benchmarks' setting) set one thread."""
    import os

    from threadpoolctl import threadpool_info, threadpool_limits

    from movierec.models.ease import EASE

    assert EASE.blas_threads == 0
    cores = len(os.sched_getaffinity(0))
    with threadpool_limits(1, user_api="blas"):
        with blas_limit(0):
            inside = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
        after = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    assert inside and set(inside) == {cores} and set(after) == {1}
