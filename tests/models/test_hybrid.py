import numpy as np
import pytest
from contract import N_USERS, ModelContract, checkerboard

from movierec.errors import ConfigError
from movierec.models import make_model
from movierec.models.ease import EASE
from movierec.models.hybrid import RRFHybrid, SwitchingHybrid, WeightedHybrid, _ranks

EASE_P = {"l2": 10.0, "threshold": 4.0}
TWO = {"ease": EASE_P, "content": {}}


@pytest.fixture(scope="module")
def data_cb():
    return checkerboard()[1]


def test_ranks() -> None:
    r = _ranks(np.array([[0.5, 2.0, -np.inf, 2.0]], np.float32))
    np.testing.assert_array_equal(r, [[3, 1, 4, 2]])


class TestWeightedHybrid(ModelContract):
    model_class = WeightedHybrid
    params = {"models": TWO, "weights": [0.7, 0.3]}

    def test_sub_models_built_from_plain_params(self, fitted) -> None:
        assert [type(m).__name__ for m in fitted.models_] == ["EASE", "ContentTFIDF"]
        assert fitted.models_[0].l2 == 10.0
        want = {"models": TWO, "weights": [0.7, 0.3], "random_state": 0}
        assert fitted.clone().get_params() == want

    def test_blend_is_weighted_min_max(self, fitted) -> None:
        u = 2
        seen = fitted.score([u])[0] == -1.0
        parts = []
        for m in fitted.models_:
            s = m.score([u])[0][~seen]
            parts.append((s - s.min()) / (s.max() - s.min()))
        want = 0.7 * parts[0] + 0.3 * parts[1]
        np.testing.assert_allclose(fitted.score([u])[0][~seen], want, atol=1e-5)

    def test_fold_in_matches_trained_user(self, data, fitted) -> None:
        csr = data[1].csr()
        u = 3
        it = csr.indices[csr.indptr[u] : csr.indptr[u + 1]]
        r = csr.data[csr.indptr[u] : csr.indptr[u + 1]]
        np.testing.assert_allclose(fitted.fold_in(it, r), fitted.score([u])[0], atol=1e-5)


class TestRRFHybrid(ModelContract):
    model_class = RRFHybrid
    params = {"models": TWO}

    def test_default_weights_cf_content(self, fitted) -> None:
        np.testing.assert_allclose(fitted.weights_, [0.6, 0.4])

    def test_two_identical_models_rank_like_the_model(self, data) -> None:
        users = np.arange(N_USERS - 1)
        hyb = RRFHybrid(models=[("ease", EASE_P), ("ease", EASE_P)], weights=[0.5, 0.5])
        got, _ = hyb.fit(data[1]).recommend(users, k=10)
        want, _ = EASE(**EASE_P).fit(data[1]).recommend(users, k=10)
        np.testing.assert_array_equal(got, want)

    def test_rrf_formula(self, fitted) -> None:
        u = 1
        s = fitted.score([u])[0]
        seen = s == -1.0
        want = np.zeros(int((~seen).sum()))
        for w, m in zip(fitted.weights_, fitted.models_, strict=True):
            sub = m.score([u])[0][~seen]
            rank = np.empty(sub.size)
            rank[np.argsort(-sub, kind="stable")] = np.arange(1, sub.size + 1)
            want += w / (60 + rank)
        np.testing.assert_allclose(s[~seen], want, rtol=1e-5)

    def test_bad_config(self, data) -> None:
        with pytest.raises(ConfigError, match="one weight per model"):
            RRFHybrid(models=TWO, weights=[1.0]).fit(data[1])
        with pytest.raises(ConfigError, match="unknown model"):
            RRFHybrid(models={"nope": {}}).fit(data[1])
        with pytest.raises(ConfigError, match="bad parameters"):
            RRFHybrid(models={"ease": {"lambda": 3}}).fit(data[1])


class TestSwitchingHybrid(ModelContract):
    model_class = SwitchingHybrid
    params = {"models": TWO, "min_ratings": 5}

    def test_switches_on_history_length(self, data) -> None:
        train = data[1]
        few = int(np.median(train.user_counts()))
        m = SwitchingHybrid(models=TWO, min_ratings=few).fit(train)
        counts = train.user_counts()[: N_USERS - 1]
        cf, cold = m.models_
        for u in range(N_USERS - 1):
            want = (cf if counts[u] >= few else cold).score([u])[0]
            np.testing.assert_array_equal(m.score([u])[0], want)
        assert (counts < few).any() and (counts >= few).any()
        assert np.array_equal(m.fold_in([0, 1], [5.0, 4.0]), cold.fold_in([0, 1], [5.0, 4.0]))

    def test_registry_names(self) -> None:
        assert isinstance(make_model("switching"), SwitchingHybrid)
        assert isinstance(make_model("weighted"), WeightedHybrid)


def _rrf_pair(train, candidates):
    subs = [("ease", EASE_P), ("popularity", {})]
    return RRFHybrid(models=subs, candidates=candidates).fit(train)


def test_rrf_candidates_give_the_full_fusion_when_they_cover_the_catalogue(data_cb) -> None:
    users = np.arange(N_USERS - 1)
    full = _rrf_pair(data_cb, None)
    short = _rrf_pair(data_cb, 1000)
    np.testing.assert_array_equal(short.recommend(users, k=10)[0], full.recommend(users, k=10)[0])
    np.testing.assert_allclose(short.score(users), full.score(users), rtol=1e-6)


def test_rrf_candidates_top_k_equals_full_fusion_where_they_suffice(data_cb) -> None:
    # few candidates: where the fused top-k items are in every sub-model's list and the
    # k-th score beats what any other item could reach, the lists equal the full fusion's
    c, k = 8, 3
    users = np.arange(N_USERS - 1)
    full = _rrf_pair(data_cb, None)
    short = _rrf_pair(data_cb, c)
    got, got_s = short.recommend(users, k=k)
    want, _ = full.recommend(users, k=k)
    lists = [m.recommend(users, k=c)[0] for m in short.models_]
    bound = short.weights_ / (short.k + c + 1)  # most a rank beyond the list can give
    certified = 0
    for r in range(users.size):
        in_all = [np.isin(got[r], lst[r]).all() for lst in lists]
        if not all(in_all):
            continue
        s = short.score([users[r]])[0]
        others = np.setdiff1d(np.flatnonzero(s > -1), got[r])
        reach = s[others] + sum(
            b * ~np.isin(others, lst[r]) for b, lst in zip(bound, lists, strict=True)
        )
        if reach.size and got_s[r, -1] <= reach.max():
            continue
        certified += 1
        np.testing.assert_array_equal(got[r], want[r])
    assert certified >= users.size // 2  # the check is not vacuous
    # and the truncation is real: some scores differ from the full fusion
    assert not np.allclose(short.score(users), full.score(users))


def test_rrf_candidates_must_be_positive(data_cb) -> None:
    with pytest.raises(ConfigError, match="candidates"):
        _rrf_pair(data_cb, 0)


def test_hybrid_reuses_the_sub_models_batch_scores(data_cb) -> None:
    from movierec.models.hybrid import cached_score, ensemble_parts, shared_scores

    hyb = RRFHybrid(models=TWO).fit(data_cb)
    ease = hyb.models_[0]
    calls = []
    orig = type(ease)._score
    ease._score = lambda u: calls.append(1) or orig(ease, u)  # type: ignore[method-assign]
    users = np.arange(10)
    with shared_scores(ensemble_parts([hyb])):
        first = cached_score(ease, users)  # e.g. the evaluator scoring "ease" itself
        hyb.score(users)
        hyb.score(users[2:5])  # a subset of the block is looked up too
    assert calls == [1]
    hyb.score(users)  # outside the block: computed again
    assert calls == [1, 1]
    np.testing.assert_array_equal(first, ease.score(users))
