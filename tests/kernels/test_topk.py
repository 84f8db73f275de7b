"""The shared top-K kernel against a brute-force sort."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.kernels.topk import topk_rows


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
