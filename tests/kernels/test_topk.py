"""The shared top-K kernel against a brute-force sort."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.kernels.topk import norm_order, topk_dot, topk_dot_sorted, topk_rows


def brute(scores: np.ndarray, k: int, excl: list[set[int]]) -> list[list[int]]:
    out = []
    for r, row in enumerate(scores):
        cand = [j for j in range(row.size) if j not in excl[r] and row[j] > -np.inf]
        cand.sort(key=lambda j: (-row[j], j))  # ties: lower index first
        out.append(cand[:k])
    return out


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 4),
    m=st.integers(1, 300),
    k=st.integers(1, 20),
    seed=st.integers(0, 10_000),
    levels=st.sampled_from([3, 1000]),
)
def test_matches_brute_force(n: int, m: int, k: int, seed: int, levels: int) -> None:
    rng = np.random.default_rng(seed)
    # few levels -> many ties; some -inf and NaN entries are never selected
    scores = rng.integers(0, levels, size=(n, m)).astype(np.float32)
    scores[rng.random((n, m)) < 0.05] = -np.inf
    scores[rng.random((n, m)) < 0.05] = np.nan
    excl = [
        set(rng.choice(m, size=rng.integers(0, m + 1), replace=False).tolist()) for _ in range(n)
    ]
    indptr = np.zeros(n + 1, np.int64)
    indptr[1:] = np.cumsum([len(e) for e in excl])
    indices = np.array([j for e in excl for j in sorted(e)], dtype=np.int32)
    items, vals = topk_rows(scores, k, indptr, indices)
    want = brute(scores, k, excl)
    for r in range(n):
        got = [j for j in items[r].tolist() if j >= 0]
        assert got == want[r]
        assert np.all(vals[r][: len(got)] == scores[r, got])
        assert np.all(items[r][len(got) :] == -1)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 300),
    m=st.integers(1, 4500),
    k=st.integers(1, 30),
    seed=st.integers(0, 10_000),
    sort_excl=st.booleans(),
)
def test_topk_dot_matches_topk_rows_of_the_product(
    n: int, m: int, k: int, seed: int, sort_excl: bool
) -> None:
    # small integer factors: exact scores with many ties, across several tiles of items
    rng = np.random.default_rng(seed)
    A = rng.integers(-2, 3, size=(n, 4)).astype(np.float32)
    V = rng.integers(-2, 3, size=(m, 4)).astype(np.float32)
    lens = rng.integers(0, min(m, 40) + 1, size=n)
    excl = [rng.choice(m, size=c, replace=False) for c in lens]
    if sort_excl:
        excl = [np.sort(e) for e in excl]
    indptr = np.zeros(n + 1, np.int64)
    indptr[1:] = np.cumsum(lens)
    indices = np.concatenate(excl).astype(np.int32)
    want_i, want_v = topk_rows(A @ V.T, k, indptr, indices)
    got_i, got_v = topk_dot(A, V, k, indptr, indices, np.arange(n))
    assert np.array_equal(got_i, want_i)
    assert np.array_equal(got_v, want_v)


@pytest.mark.parametrize("levels", [1, 2, 4])
def test_topk_dot_norm_order_and_early_stop_keep_exact_lists(levels: int) -> None:
    # enough rows for the norm-ordered visit; items of a few norm levels make rows stop
    # after one to all tiles, and integer scores make ties the tie rule must settle
    rng = np.random.default_rng(levels)
    n, m = 700, 7000
    A = rng.integers(-2, 3, size=(n, 6)).astype(np.float32)
    A[:, 0] = rng.integers(1, 4, size=n)
    scale = rng.integers(1, levels + 1, size=m).astype(np.float32) ** 2
    V = rng.integers(-2, 3, size=(m, 6)).astype(np.float32) * scale[:, None]
    V[:, 0] = np.abs(V[:, 0])
    V[5] = 0.0
    lens = rng.integers(0, 30, size=n)
    indptr = np.zeros(n + 1, np.int64)
    indptr[1:] = np.cumsum(lens)
    indices = np.concatenate([rng.choice(m, size=c, replace=False) for c in lens]).astype(np.int32)
    sorted_v = norm_order(V)
    for k in (1, 10, 50):
        want_i, want_v = topk_rows(A @ V.T, k, indptr, indices)
        got_i, got_v = topk_dot(A, V, k, indptr, indices, np.arange(n))
        assert np.array_equal(got_i, want_i)
        assert np.array_equal(got_v, want_v)
        # a few rows against items sorted once (the service's batches): the same lists
        rows = np.array([3, 0, 650, 17, 17])
        got_i, got_v = topk_dot_sorted(A[rows], *sorted_v, k, indptr, indices, rows)
        assert np.array_equal(got_i, want_i[rows])
        assert np.array_equal(got_v, want_v[rows])
