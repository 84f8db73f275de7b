import numpy as np
import scipy.sparse as sp

from movierec.kernels.nmf import nmf_accumulate, nmf_apply


def test_multiplicative_updates_fit_a_rank1_matrix_and_stay_non_negative() -> None:
    rng = np.random.default_rng(0)
    r = np.outer(rng.uniform(1, 2, 6), rng.uniform(1, 2, 4))
    m = sp.csr_matrix(r)
    c = m.tocsc()
    up, ui, ur = m.indptr.astype(np.int64), m.indices, m.data
    ip, ii, ir = c.indptr.astype(np.int64), c.indices, c.data
    p, q = rng.uniform(0, 1, (6, 1)), rng.uniform(0, 1, (4, 1))
    off = np.zeros(ur.size)
    nu, du, ni, di = (np.empty((6, 1)), np.empty((6, 1)), np.empty((4, 1)), np.empty((4, 1)))
    # alternating (Lee-Seung) order: with an exact rank-1 target the simultaneous order
    # only rescales p q^T by c, 1/c, c, ...; alternating converges
    for _ in range(300):
        nmf_accumulate(up, ui, ur, p, q, off, nu, du)
        nmf_apply(up, p, nu, du, 0.0)
        nmf_accumulate(ip, ii, ir, q, p, off, ni, di)
        nmf_apply(ip, q, ni, di, 0.0)
        assert (p >= 0).all() and (q >= 0).all()
    np.testing.assert_allclose(p @ q.T, r, rtol=1e-4)


def test_accumulate_matches_dense_sums() -> None:
    rng = np.random.default_rng(2)
    dense = rng.integers(0, 6, (5, 4)).astype(np.float64)
    m = sp.csr_matrix(dense)
    p, q = rng.uniform(0, 1, (5, 2)), rng.uniform(0, 1, (4, 2))
    off = rng.normal(0, 1, m.nnz)
    num, den = np.empty((5, 2)), np.empty((5, 2))
    nmf_accumulate(m.indptr.astype(np.int64), m.indices, m.data, p, q, off, num, den)
    mask = dense > 0
    est = np.zeros_like(dense)
    est[mask] = off + (p @ q.T)[mask]  # CSR order is row-major, like boolean indexing
    np.testing.assert_allclose(num, dense @ q)
    np.testing.assert_allclose(den, est @ q)
