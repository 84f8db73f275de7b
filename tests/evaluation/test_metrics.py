"""Ranking metrics: hand-computed values and Hypothesis invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.evaluation import metrics as M


def csr(rows: list[list[int]], gains: list[list[float]] | None = None):
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
    idx = np.array([i for r in rows for i in sorted(r)], dtype=np.int32)
    if gains is None:
        return indptr, idx, None
    g = np.array(
        [
            dict(zip(r, gr, strict=True))[i]
            for r, gr in zip(rows, gains, strict=True)
            for i in sorted(r)
        ]
    )
    return indptr, idx, g


def test_rmse_mae_by_hand() -> None:
    assert M.rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert M.mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    assert math.isnan(M.rmse([], []))


def test_hand_computed_list() -> None:
    rec = np.array([[3, 1, 7, 2]])
    ip, ix, _ = csr([[1, 2, 9]])
    g = M.hit_matrix(rec, ip, ix)
    assert g.tolist() == [[0.0, 1.0, 0.0, 1.0]]
    n_rel = np.array([3])
    assert M.precision_at_k(g, 4)[0] == pytest.approx(0.5)
    assert M.precision_at_k(g, 1)[0] == 0.0
    assert M.recall_at_k(g, n_rel, 4)[0] == pytest.approx(2 / 3)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # min(|R|=3, K=4) ideal hits
    assert M.ndcg_at_k(g, n_rel, 4)[0] == pytest.approx(dcg / idcg)
    assert M.ndcg_at_k(g, n_rel, 2)[0] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert M.average_precision_at_k(g, n_rel, 4)[0] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert M.average_precision_at_k(g, n_rel, 2)[0] == pytest.approx((1 / 2) / 2)
    assert M.reciprocal_rank_at_k(g, 4)[0] == pytest.approx(0.5)
    assert M.reciprocal_rank_at_k(g, 1)[0] == 0.0
    assert M.hit_rate_at_k(g, 2)[0] == 1.0 and M.hit_rate_at_k(g, 1)[0] == 0.0


def test_padding_is_never_a_hit_and_rows_are_independent() -> None:
    rec = np.array([[-1, 5], [5, -1]])
    ip, ix, _ = csr([[5], []])
    g = M.hit_matrix(rec, ip, ix)
    assert g.tolist() == [[0.0, 1.0], [0.0, 0.0]]
    n_rel = np.array([1, 0])
    r = M.recall_at_k(g, n_rel, 2)
    assert r[0] == 1.0 and math.isnan(r[1])  # empty relevant set: undefined, not 0


def test_graded_ndcg_by_hand() -> None:
    rec = np.array([[4, 2, 8]])
    ip, ix, gains = csr([[2, 4, 6]], [[3.0, 1.0, 2.0]])
    g = M.hit_matrix(rec, ip, ix, gains)
    assert g.tolist() == [[1.0, 3.0, 0.0]]
    ideal = M.ideal_gains(ip, gains, 3)
    assert ideal.tolist() == [[3.0, 2.0, 1.0]]
    d = 1 / np.log2([2, 3, 4])
    want = (1 * d[0] + 3 * d[1]) / (3 * d[0] + 2 * d[1] + 1 * d[2])
    assert M.ndcg_at_k(g, np.array([3]), 3, ideal)[0] == pytest.approx(want)


def test_ideal_gains_pads_and_truncates() -> None:
    ip = np.array([0, 1, 4], np.int64)
    g = np.array([2.0, 1.0, 5.0, 3.0])
    assert M.ideal_gains(ip, g, 2).tolist() == [[2.0, 0.0], [5.0, 3.0]]


def test_beyond_accuracy_by_hand() -> None:
    rec = np.array([[0, 1], [0, 2], [0, -1]])
    assert M.catalog_coverage(rec, 6) == pytest.approx(3 / 6)
    pop = np.array([10, 4, 0, 1, 1, 1])
    assert M.average_popularity(rec, pop) == pytest.approx((10 * 3 + 4 + 0) / 5)
    # novelty: -log2(pop / n_users), unseen items counted as popularity 1
    want = np.mean(-np.log2(np.array([10, 4, 10, 1, 10]) / 20))
    assert M.novelty(rec, pop, 20) == pytest.approx(want)
    # exposure over 4 items: counts 3, 1, 1, 0 -> sorted 0,1,1,3
    c = np.array([0, 1, 1, 3])
    want_gini = ((2 * np.arange(1, 5) - 4 - 1) * c).sum() / (4 * c.sum())
    assert M.gini_index(rec, 4) == pytest.approx(want_gini)
    assert M.gini_index(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0)
    assert M.gini_index(np.array([[0], [0]]), 5) == pytest.approx(4 / 5)


def test_intra_list_diversity_by_hand() -> None:
    genres = [["Drama"], ["Drama", "Comedy"], ["Horror"], []]
    masks = M.genre_masks(genres)
    rec = np.array([[0, 1, 2], [0, 0, -1], [3, 3, 3], [2, -1, -1]])
    div = M.intra_list_diversity(rec, masks)
    # pairs (0,1): 1 - 1/2; (0,2): 1; (1,2): 1
    assert div[0] == pytest.approx((0.5 + 1 + 1) / 3)
    assert div[1] == pytest.approx(0.0)
    assert div[2] == pytest.approx(0.0)  # two empty sets: distance 0
    assert math.isnan(div[3])  # a single item has no pair


def test_genre_masks_beyond_64_genres() -> None:
    genres = [[f"g{j}" for j in range(70)], ["g69"], ["g0"]]
    masks = M.genre_masks(genres)
    assert masks.shape == (3, 2)
    d = M.intra_list_diversity(np.array([[0, 1], [1, 2]]), masks)
    assert d[0] == pytest.approx(1 - 1 / 70) and d[1] == pytest.approx(1.0)


def test_k_out_of_range_raises() -> None:
    with pytest.raises(ValueError):
        M.precision_at_k(np.zeros((1, 3)), 4)


# -- properties ---------------------------------------------------------------------------
@st.composite
def lists_and_relevance(draw):
    n_items = draw(st.integers(2, 30))
    k = draw(st.integers(1, n_items))
    n_users = draw(st.integers(1, 5))
    rec, rel = [], []
    for _ in range(n_users):
        perm = draw(st.permutations(range(n_items)))
        rec.append(list(perm[:k]))
        rel.append(draw(st.sets(st.integers(0, n_items - 1), min_size=1, max_size=n_items)))
    return np.array(rec), [sorted(r) for r in rel], k


@settings(max_examples=40, deadline=None)
@given(lists_and_relevance())
def test_metric_invariants(case) -> None:
    rec, rel, k = case
    ip, ix, _ = csr(rel)
    g = M.hit_matrix(rec, ip, ix)
    # the kernel agrees with a brute-force membership test
    brute = np.array([[float(i in set(r)) for i in row] for row, r in zip(rec, rel, strict=True)])
    assert np.array_equal(g, brute)
    n_rel = np.diff(ip)
    nd = M.ndcg_at_k(g, n_rel, k)
    assert np.all((nd >= -1e-12) & (nd <= 1 + 1e-12))
    assert np.all(M.precision_at_k(g, k) <= 1)
    ap = M.average_precision_at_k(g, n_rel, k)
    assert np.all((ap >= 0) & (ap <= 1 + 1e-12))
    recalls = np.stack([M.recall_at_k(g, n_rel, j) for j in range(1, k + 1)], axis=1)
    assert np.all(np.diff(recalls, axis=1) >= 0)
    # a list without relevant items scores 0 everywhere
    none = np.zeros_like(g)
    assert np.all(M.ndcg_at_k(none, n_rel, k) == 0) and np.all(M.reciprocal_rank_at_k(none, k) == 0)


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 50), min_size=1, max_size=20), st.integers(1, 25))
def test_perfect_list_scores_one(rel, k) -> None:
    rel = sorted(rel)
    extra = [i for i in range(100, 100 + k)]
    rec = np.array([(rel + extra)[:k]])  # relevant items first, then misses
    ip, ix, _ = csr([rel])
    g = M.hit_matrix(rec, ip, ix)
    n_rel = np.array([len(rel)])
    assert M.ndcg_at_k(g, n_rel, k)[0] == pytest.approx(1.0)
    assert M.average_precision_at_k(g, n_rel, k)[0] == pytest.approx(1.0)
    assert M.recall_at_k(g, n_rel, k)[0] == pytest.approx(min(len(rel), k) / len(rel))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.5, 5.0), min_size=1, max_size=12), st.integers(1, 12))
def test_graded_perfect_list_scores_one(gvals, k) -> None:
    items = list(range(len(gvals)))
    ip, ix, g = csr([items], [gvals])
    order = np.argsort(-np.asarray(gvals), kind="stable")
    rec = np.full((1, k), -1)
    take = order[:k]
    rec[0, : take.size] = take
    gains = M.hit_matrix(rec, ip, ix, g)
    ideal = M.ideal_gains(ip, g, k)
    assert M.ndcg_at_k(gains, np.array([len(gvals)]), k, ideal)[0] == pytest.approx(1.0)


def test_lower_is_better_is_one_rule() -> None:
    for m in ("rmse", "mae", "gini@10", "avg_popularity@5"):
        assert M.lower_is_better(m), m
    for m in ("ndcg@10", "recall@5", "coverage@10", "novelty@10", "diversity@10", "hit@1"):
        assert not M.lower_is_better(m), m
    # the Gini index of exposure: lists spread over the catalogue score lower (better)
    spread = M.gini_index(np.array([[0, 1], [2, 3]]), 4)
    concentrated = M.gini_index(np.array([[0, 1], [0, 1]]), 4)
    assert spread < concentrated
    from movierec.experiment.config import RATING_METRICS

    assert RATING_METRICS is M.RATING_METRICS
