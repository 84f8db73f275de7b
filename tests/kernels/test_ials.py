import numpy as np
import scipy.sparse as sp
from contract import N_ITEMS, N_USERS, checkerboard

from movierec.kernels.ials import ials_cg, ials_cholesky


def _problem(seed: int = 0, n_rows: int = 30, n_cols: int = 20, f: int = 6):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_rows, n_cols)) < 0.3) * (1.0 + 10.0 * rng.random((n_rows, n_cols)))
    dense[0] = 0.0  # a row without entries
    m = sp.csr_matrix(dense.astype(np.float32))
    Y = rng.normal(0, 0.5, (n_cols, f)).astype(np.float32)
    reg = np.full(n_rows, 0.1, np.float32)
    return m, Y, reg, dense


def test_cholesky_solves_the_normal_equations() -> None:
    # by construction: (YtY + Y^T (C - I) Y + reg I) x = Y^T C p, with C = 1 + conf on stored
    m, Y, reg, dense = _problem()
    X = np.zeros((m.shape[0], Y.shape[1]), np.float32)
    ials_cholesky(m.indptr.astype(np.int64), m.indices, m.data, X, Y, Y.T @ Y, reg, 4)
    Yd = Y.astype(np.float64)
    for u in range(m.shape[0]):
        c = np.where(dense[u] > 0, dense[u], 1.0)
        p = (dense[u] > 0).astype(float)
        A = Yd.T @ (c[:, None] * Yd) + reg[u] * np.eye(Y.shape[1])
        np.testing.assert_allclose(X[u], np.linalg.solve(A, Yd.T @ (c * p)), atol=1e-4)
    assert not X[0].any()


def test_cg_converges_to_cholesky() -> None:
    m, Y, reg, _ = _problem(1)
    args = (m.indptr.astype(np.int64), m.indices, m.data)
    exact = np.zeros((m.shape[0], Y.shape[1]), np.float32)
    ials_cholesky(*args, exact, Y, Y.T @ Y, reg, 3)
    X = np.zeros_like(exact)
    errs = []
    for _ in range(25):
        # warm-started sweeps of 2 CG steps each move closer to the exact solution
        ials_cg(*args, X, Y, Y.T @ Y, reg, 2, 3)
        errs.append(np.abs(X - exact).max())
    assert errs[-1] < 1e-4 and errs[0] > 100 * errs[-1]
    # f steps from zero are exact (CG in exact arithmetic)
    X2 = np.zeros_like(exact)
    ials_cg(*args, X2, Y, Y.T @ Y, reg, Y.shape[1] + 2, 3)
    np.testing.assert_allclose(X2, exact, atol=1e-4)


def test_checkerboard_top_items_on_the_right_side() -> None:
    _, train = checkerboard()
    keep = train.ratings >= 4
    cui = sp.csr_matrix(
        (np.full(keep.sum(), 11.0, np.float32), (train.users[keep], train.items[keep])),
        shape=(train.n_users, train.n_items),
    )
    ciu = cui.T.tocsr()
    rng = np.random.default_rng(0)
    X = rng.normal(0, 0.01, (N_USERS, 4)).astype(np.float32)
    Y = rng.normal(0, 0.01, (N_ITEMS, 4)).astype(np.float32)
    ru, ri = np.full(N_USERS, 0.1, np.float32), np.full(N_ITEMS, 0.1, np.float32)
    for _ in range(10):
        ials_cg(cui.indptr.astype(np.int64), cui.indices, cui.data, X, Y, Y.T @ Y, ru, 3, 4)
        ials_cg(ciu.indptr.astype(np.int64), ciu.indices, ciu.data, Y, X, X.T @ X, ri, 3, 4)
    scores = X[: N_USERS - 1] @ Y.T
    top = np.argsort(-scores, axis=1)[:, :5]
    group = (np.arange(N_USERS - 1) >= N_USERS // 2)[:, None]
    assert ((top >= N_ITEMS // 2) == group).all()
