"""The neighbour models' scoring kernel: sparse rows x sparse item-item -> dense block."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.kernels.sparse_dense import rows_times_csr, rows_times_dense
from movierec.models import make_model
from movierec.models.itemknn import neighbour_scores
from tests.contract import checkerboard


def _random_csr(rng: np.random.Generator, n: int, m: int, density: float) -> sp.csr_matrix:
    x = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float32)
    x.data = rng.uniform(0.1, 2.0, x.nnz).astype(np.float32)
    return x


def test_by_hand() -> None:
    # user 0 rated item 0 (w 2) and item 2 (w 1); item rows: 0 -> {1: 0.5, 2: 1}, 2 -> {1: 3}
    x = sp.csr_matrix(np.array([[2, 0, 1], [0, 0, 0]], np.float32))
    s = sp.csr_matrix(np.array([[0, 0.5, 1], [0, 0, 0], [0, 3, 0]], np.float32))
    out = np.zeros((3, 3), np.float32)
    rows = np.array([1, 0, 0])
    rows_times_csr(x.indptr, x.indices, x.data, rows, s.indptr, s.indices, s.data, out)
    np.testing.assert_array_equal(out, [[0, 0, 0], [0, 4, 2], [0, 4, 2]])


def test_equals_scipy_product() -> None:
    rng = np.random.default_rng(0)
    x = _random_csr(rng, 50, 80, 0.1)
    x.data[x.indptr[7] : x.indptr[8]] = 0  # an empty user row
    x.eliminate_zeros()
    s = _random_csr(rng, 80, 80, 0.05)
    rows = np.array([3, 7, 0, 49, 3, 12])
    want = (x[rows] @ s).toarray()
    np.testing.assert_allclose(neighbour_scores(x, s, rows), want, rtol=1e-6, atol=1e-7)
    # float64 data and int64 index arrays give the same block
    x64, s64 = x.astype(np.float64), s.astype(np.float64)
    x64.indptr, s64.indices = x64.indptr.astype(np.int64), s64.indices.astype(np.int64)
    np.testing.assert_allclose(neighbour_scores(x64, s64, rows), want, rtol=1e-6, atol=1e-7)
    got = neighbour_scores(x, s, np.empty(0, np.int64))
    assert got.shape == (0, 80) and got.dtype == np.float32


def test_dense_equals_scipy_product() -> None:
    rng = np.random.default_rng(1)
    x = _random_csr(rng, 30, 40, 0.15)
    b = rng.normal(size=(40, 25)).astype(np.float32)
    rows = np.array([5, 0, 29, 5], np.int64)
    out = np.zeros((rows.size, 25), np.float32)
    rows_times_dense(x.indptr, x.indices, x.data, rows, b, out)
    np.testing.assert_allclose(out, x[rows] @ b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("itemknn", {"k": 5}),
        ("itemknn", {"k": 5, "recency": 3.0}),
        ("p3alpha", {"k": 5}),
        ("rp3beta", {"k": 5}),
        ("slim", {"k": 5}),
        ("sequential", {"k": 5, "pop_weight": 0.0}),
        ("ease", {"max_items": 30}),
    ],
)
def test_models_score_as_the_sparse_product(name: str, params: dict) -> None:
    _, train = checkerboard()
    m = make_model(name, **params).fit(train)
    users = np.arange(train.n_users - 1)  # the last user has no training rating
    if name == "ease":  # a dense item x item matrix over the kept items
        want = np.full((users.size, m.n_items_), -np.inf, np.float32)
        want[:, m.kept_items_] = m.user_items_[users] @ m.weights_
    else:
        want = (m.user_items_[users] @ m.similarity_).toarray()
    assert np.abs(want).max() > 0
    np.testing.assert_allclose(m.score(users), want, rtol=1e-5, atol=1e-6)


def test_sequential_adds_popularity() -> None:
    _, train = checkerboard()
    m = make_model("sequential", k=5, pop_weight=0.5).fit(train)
    users = np.arange(10)
    want = (m.user_items_[users] @ m.similarity_).toarray() + 0.5 * m.popularity_
    np.testing.assert_allclose(m.score(users), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("m", [1, 7, 130])  # fewer and more items than the 64 row chunks
def test_item_gram_equals_scipy(m: int) -> None:
    from movierec.models.ease import item_gram

    rng = np.random.default_rng(m)
    x = _random_csr(rng, 90, m, 0.2)
    want = (x.astype(np.float64).T @ x.astype(np.float64)).toarray()
    full = item_gram(x, np.float64)
    np.testing.assert_allclose(full, want, rtol=1e-12)
    assert np.array_equal(full, full.T)
    low = item_gram(x, np.float32, full=False)
    tril = np.tril_indices(m)
    np.testing.assert_array_equal(low[tril], want.astype(np.float32)[tril])
    # unsorted column indices (the kernel stops a row at the first column past the diagonal)
    shuffled = x.copy()
    for u in range(shuffled.shape[0]):
        a, b = shuffled.indptr[u], shuffled.indptr[u + 1]
        p = rng.permutation(b - a)
        shuffled.indices[a:b] = shuffled.indices[a:b][p]
        shuffled.data[a:b] = shuffled.data[a:b][p]
    shuffled.has_sorted_indices = False
    np.testing.assert_allclose(item_gram(shuffled, np.float64), want, rtol=1e-12)
