import numpy as np
import pytest
import scipy.sparse as sp

from movierec.kernels.als import als_half_step, als_half_step_cg, als_predict, rmse_csr


def _full(r: np.ndarray) -> tuple:
    m = sp.csr_matrix(r.astype(np.float32))
    c = m.tocsc()
    return (m.indptr.astype(np.int64), m.indices, m.data), (
        c.indptr.astype(np.int64),
        c.indices,
        c.data,
    )


@pytest.mark.parametrize("solver", ["cholesky", "cg"])
def test_recovers_a_fully_observed_rank1_matrix(solver) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 2, 7), rng.uniform(1, 2, 5)
    r = np.outer(a, b)
    (up, ui, ur), (ip, ii, ir) = _full(r)
    k = 1
    p, bu = np.zeros((7, k), np.float32), np.zeros(7, np.float32)
    q, bi = rng.normal(0, 1, (5, k)).astype(np.float32), np.zeros(5, np.float32)
    for _ in range(200):
        if solver == "cg":
            als_half_step_cg(up, ui, ur, p, bu, q, bi, 0.0, 1e-9, 1e-9, False, 2)
            als_half_step_cg(ip, ii, ir, q, bi, p, bu, 0.0, 1e-9, 1e-9, False, 2)
        else:
            als_half_step(up, ui, ur, p, bu, q, bi, 0.0, 1e-9, 1e-9, False)
            als_half_step(ip, ii, ir, q, bi, p, bu, 0.0, 1e-9, 1e-9, False)
    assert rmse_csr(up, ui, ur, p, q, bu, bi, 0.0) < 1e-3
    uu, ii_ = np.divmod(np.arange(35), 5)
    np.testing.assert_allclose(als_predict(uu, ii_, p, q, bu, bi, 0.0), r.ravel(), atol=5e-3)


def test_row_solve_is_the_ridge_solution() -> None:
    # one user's exact solve equals numpy's solution of the augmented ridge system
    rng = np.random.default_rng(1)
    k, n_items = 3, 9
    q = rng.normal(0, 1, (n_items, k)).astype(np.float32)
    bi = rng.normal(0, 0.3, n_items).astype(np.float32)
    items = np.array([0, 2, 3, 5, 8], np.int32)
    r = np.array([4, 3, 5, 2, 1], np.float32)
    mu, reg, reg_b = 3.0, 0.2, 0.05
    x, xb = np.zeros((1, k), np.float32), np.zeros(1, np.float32)
    ptr = np.array([0, items.size], np.int64)
    als_half_step(ptr, items, r, x, xb, q, bi, mu, reg, reg_b, True)
    z = np.hstack([q[items], np.ones((items.size, 1))]).astype(np.float64)
    lam = np.diag([reg] * k + [reg_b]) * items.size
    want = np.linalg.solve(z.T @ z + lam, z.T @ (r - mu - bi[items]))
    np.testing.assert_allclose(np.r_[x[0], xb], want, rtol=1e-4, atol=1e-5)
    # k+1 conjugate-gradient steps solve the same (k+1)-dim system exactly
    y, yb = np.zeros((1, k), np.float32), np.zeros(1, np.float32)
    als_half_step_cg(ptr, items, r, y, yb, q, bi, mu, reg, reg_b, True, k + 1)
    np.testing.assert_allclose(np.r_[y[0], yb], want, rtol=1e-3, atol=1e-4)


def test_empty_rows_get_zeros() -> None:
    x, xb = np.ones((2, 2), np.float32), np.ones(2, np.float32)
    q, bi = np.ones((3, 2), np.float32), np.zeros(3, np.float32)
    ptr = np.array([0, 0, 1], np.int64)
    als_half_step(
        ptr, np.array([1], np.int32), np.array([4.0], np.float32), x, xb, q, bi, 3.0, 0.1, 0.1, True
    )
    assert (x[0] == 0).all() and xb[0] == 0 and (x[1] != 0).any()
