import numpy as np
import polars as pl
import pytest
from contract import ModelContract, popularity_ndcg

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.kernels.sequential import transition_topk
from movierec.models.sequential import SequentialTransitions


class TestSequential(ModelContract):
    model_class = SequentialTransitions
    # the checkerboard's timestamps run through each user's items in index order, so her
    # latest ratings sit on the disliked side: learn from the liked ones only
    params = {"threshold": 4.0}

    def test_fold_in_matches_trained_user(self, data, fitted) -> None:
        train = data[1]
        u = 7
        rows = np.flatnonzero(train.users == u)
        rows = rows[np.lexsort((train.items[rows], train.timestamps[rows]))]
        got = fitted.fold_in(train.items[rows], train.ratings[rows])
        np.testing.assert_allclose(got, fitted.score([u])[0], rtol=1e-6)

    def test_bad_params(self, data) -> None:
        bads = (
            {"window": 0},
            {"n_last": 0},
            {"decay": 0},
            {"recency_decay": 1.5},
            {"backward": -1},
            {"pop_weight": -1},
            {"threshold": 9},
        )
        for bad in bads:
            with pytest.raises(ConfigError):
                SequentialTransitions(**bad).fit(data[1])


def test_transition_weights_by_hand() -> None:
    # user A watches 0, 1, 2, 3 and user B 3, 0: window 2, decay 0.5, backward 0.25
    seq = np.array([0, 1, 2, 3, 3, 0], np.int32)
    start = np.array([0, 0, 0, 0, 4, 4], np.int64)
    end = np.array([4, 4, 4, 4, 6, 6], np.int64)
    occ = np.argsort(seq, kind="stable").astype(np.int64)
    occ_indptr = np.array([0, 2, 3, 4, 6], np.int64)
    nbr, w = transition_topk(seq, start, end, occ_indptr, occ, 2, 0.5, 0.25, 3)
    got = {
        (i, int(j)): float(v) for i in range(4) for j, v in zip(nbr[i], w[i], strict=True) if j >= 0
    }
    assert got == {
        (0, 1): 1.0,
        (0, 2): 0.5,
        (0, 3): 0.25,  # 0 -> 3 only backward, in B
        (1, 2): 1.0,
        (1, 3): 0.5,
        (1, 0): 0.25,
        (2, 3): 1.0,
        (2, 1): 0.25,
        (2, 0): 0.125,
        (3, 0): 1.0,
        (3, 2): 0.25,
        (3, 1): 0.125,
    }
    assert nbr[0].tolist() == [1, 2, 3]  # best first


def test_time_order_and_recency_drive_the_scores() -> None:
    # users 1-3 watch 10 -> 20 -> 30 in time order (stored out of order); user 4 has seen
    # 10 then 40; her next item is 20 (after 10), and 30 only two steps on
    u = np.array([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4])
    i = np.array([30, 10, 20, 20, 10, 30, 10, 30, 20, 40, 10])
    ts = np.array([3, 1, 2, 2, 1, 3, 1, 3, 2, 1, 2], dtype=np.int64)
    movies = pl.DataFrame(
        {
            "item": [10, 20, 30, 40],
            "title": list("abcd"),
            "year": [2000] * 4,
            "genres": [["Drama"]] * 4,
        },
        schema={
            "item": pl.Int64,
            "title": pl.String,
            "year": pl.Int32,
            "genres": pl.List(pl.String),
        },
    )
    ds = Dataset.from_raw(u, i, np.full(u.size, 4.0, np.float32), ts, movies, name="seq")
    m = SequentialTransitions(
        window=2,
        decay=0.5,
        backward=0.0,
        n_last=2,
        recency_decay=0.5,
        normalize=False,
        pop_weight=0.0,
    ).fit(ds)
    ix = {raw: k for k, raw in enumerate([10, 20, 30, 40])}
    t = m.similarity_.toarray()
    assert t[ix[10], ix[20]] == 3.0 and t[ix[10], ix[30]] == 1.5 and t[ix[40], ix[10]] == 1.0
    assert t[ix[20], ix[10]] == 0.0  # forward only
    s = m.score([3])[0]  # user 4: latest 10 (weight 1), then 40 (weight 0.5)
    assert s[ix[20]] == 3.0 and s[ix[30]] == 1.5 and s[ix[10]] == 0.5
    items, _ = m.recommend([3], k=1)
    assert items[0, 0] == ix[20]


def test_ml100k_sequential_beats_popularity(ml100k) -> None:
    # params chosen on the validation item (benchmarks/topn_graph.py --grid sequential)
    from movierec.evaluation.evaluator import evaluate_model
    from movierec.split import temporal_per_user

    split = temporal_per_user(ml100k, n_val=1, n_test=5, min_train=5)
    m = SequentialTransitions(**SEQ_BEST).fit(split.train)
    _, s = evaluate_model(m, split.test, history=split.train, exclude=split.train, k=(10,))
    assert 0.10 <= s["ndcg@10"] <= 0.13
    assert s["ndcg@10"] >= popularity_ndcg(split) + 0.04  # popularity: 0.057
    no_order = SequentialTransitions(**{**SEQ_BEST, "n_last": 1000, "recency_decay": 1.0})
    _, s0 = evaluate_model(
        no_order.fit(split.train), split.test, history=split.train, exclude=split.train, k=(10,)
    )
    assert s0["ndcg@10"] < s["ndcg@10"]  # the latest items matter


SEQ_BEST = {"window": 50, "decay": 0.8, "n_last": 5, "recency_decay": 0.5, "backward": 0.5}
