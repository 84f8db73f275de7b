"""Kernel of the neighbour models' scoring: sparse user rows times a sparse item x item matrix,
added straight into a dense block."""

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True)
def rows_times_csr(
    x_indptr: np.ndarray,
    x_indices: np.ndarray,
    x_data: np.ndarray,
    rows: np.ndarray,
    s_indptr: np.ndarray,
    s_indices: np.ndarray,
    s_data: np.ndarray,
    out: np.ndarray,
) -> None:
    """Add ``X[rows] @ S`` into the float32 block ``out`` (len(rows) x n_cols) for CSR ``X``
    and ``S``; rows in parallel.

    Output row b gets, for each nonzero (i, w) of ``X[rows[b]]``, ``w`` times row i of
    ``S``, accumulated in float32 in the order of X's and S's stored entries (the order
    scipy's sparse product sums them in). No sparse intermediate is built. Pass ``out``
    from ``np.zeros``: its pages come zeroed from the OS and are first touched here, in
    parallel (a zeroing pass would cost as much as the product itself on a large block).
    """
    for b in nb.prange(rows.shape[0]):
        o = out[b]
        r = rows[b]
        for q in range(x_indptr[r], x_indptr[r + 1]):
            w = np.float32(x_data[q])
            i = x_indices[q]
            for p in range(s_indptr[i], s_indptr[i + 1]):
                o[s_indices[p]] += w * np.float32(s_data[p])


@nb.njit(parallel=True, cache=True)
def rows_times_dense(
    x_indptr: np.ndarray,
    x_indices: np.ndarray,
    x_data: np.ndarray,
    rows: np.ndarray,
    b: np.ndarray,
    out: np.ndarray,
) -> None:
    """Add ``X[rows] @ B`` into the float32 block ``out`` for CSR ``X`` and a dense ``B``
    (float32, C order); rows in parallel, each nonzero of a user row adding a whole
    (vectorized) row of ``B`` in stored order, as scipy's sparse x dense product does."""
    n_cols = b.shape[1]
    for r in nb.prange(rows.shape[0]):
        o = out[r]
        u = rows[r]
        for q in range(x_indptr[u], x_indptr[u + 1]):
            w = np.float32(x_data[q])
            row = b[x_indices[q]]
            for j in range(n_cols):
                o[j] += w * row[j]


@nb.njit(parallel=True, cache=True)
def gram_lower(
    t_indptr: np.ndarray,
    t_indices: np.ndarray,
    t_data: np.ndarray,
    x_indptr: np.ndarray,
    x_indices: np.ndarray,
    x_data: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write the lower triangle (``b <= a``, diagonal included) of ``X^T X`` into the dense
    m x m ``out``, for CSR ``X`` (users x m, sorted indices) and its transpose ``T`` (CSR);
    the upper triangle of ``out`` is left as it was.

    Row a sums ``X[u, a] * X[u, :a+1]`` over the users u of item a in a float64 row, then
    stores it in ``out``'s dtype: the same numbers as scipy's float64 ``X^T @ X`` without
    its sparse result, in half its multiply-adds. Rows are dealt to the threads in a
    stride (row a to chunk a mod n_chunks) so each thread gets popular and rare items.
    """
    m = out.shape[0]
    n_chunks = min(m, 64)
    for c in nb.prange(n_chunks):
        acc = np.zeros(m, dtype=np.float64)
        for a in range(c, m, n_chunks):
            for p in range(t_indptr[a], t_indptr[a + 1]):
                u = t_indices[p]
                w = np.float64(t_data[p])
                for q in range(x_indptr[u], x_indptr[u + 1]):
                    b = x_indices[q]
                    if b > a:
                        break
                    acc[b] += w * np.float64(x_data[q])
            for b in range(a + 1):
                out[a, b] = acc[b]
                acc[b] = 0.0
