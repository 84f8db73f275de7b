"""Kernels of the content model: sparse item vectors times dense user profiles."""

import numba as nb
import numpy as np

_CHUNK = 64  # items per parallel task; their scores for the whole block stay in cache


@nb.njit(parallel=True, cache=True, fastmath=True)
def csr_times_dense_t(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, pt: np.ndarray
) -> np.ndarray:
    """``(V @ pt).T`` as float32 (n_users x n_items) for a CSR ``V`` (n_items x n_terms) and
    dense ``pt`` (n_terms x n_users): every user's score of every item, item chunks in
    parallel.

    Each nonzero of an item row adds its weight times a contiguous row of ``pt`` (all the
    block's users, vectorized) into the chunk's accumulator, which is then written out
    transposed: nnz(V) x n_users multiply-adds, no sparse output.
    """
    n_items = indptr.shape[0] - 1
    n_users = pt.shape[1]
    out = np.empty((n_users, n_items), dtype=np.float32)
    n_chunks = (n_items + _CHUNK - 1) // _CHUNK
    for c in nb.prange(n_chunks):
        j0 = c * _CHUNK
        j1 = min(j0 + _CHUNK, n_items)
        acc = np.zeros((j1 - j0, n_users), dtype=np.float32)
        for j in range(j0, j1):
            a = acc[j - j0]
            for p in range(indptr[j], indptr[j + 1]):
                v = data[p]
                x = pt[indices[p]]
                for b in range(n_users):
                    a[b] += v * x[b]
        for b in range(n_users):
            for j in range(j0, j1):
                out[b, j] = acc[j - j0, b]
    return out


@nb.njit(parallel=True, cache=True)
def profiles_t(
    w_indptr: np.ndarray,
    w_indices: np.ndarray,
    w_data: np.ndarray,
    v_indptr: np.ndarray,
    v_indices: np.ndarray,
    v_data: np.ndarray,
    n_terms: int,
) -> np.ndarray:
    """L2-normalized user profiles ``normalize(W @ V)``, transposed and dense (n_terms x
    n_users), for CSR weights ``W`` (users x items) and item vectors ``V`` (items x terms);
    users in parallel. A user without weights gets a zero column."""
    n_users = w_indptr.shape[0] - 1
    pt = np.zeros((n_terms, n_users), dtype=np.float32)
    for b in nb.prange(n_users):
        acc = np.zeros(n_terms, dtype=np.float64)
        for q in range(w_indptr[b], w_indptr[b + 1]):
            w = w_data[q]
            i = w_indices[q]
            for p in range(v_indptr[i], v_indptr[i + 1]):
                acc[v_indices[p]] += w * v_data[p]
        norm = np.sqrt(np.sum(acc * acc))
        if norm > 0:
            for t in range(n_terms):
                pt[t, b] = acc[t] / norm
    return pt
