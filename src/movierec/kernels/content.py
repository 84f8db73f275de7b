"""Kernels of the content model: sparse item vectors times dense user profiles."""

import numba as nb
import numpy as np

_CHUNK = 64  # items per parallel task
_TILE = 64  # users per pass over an item row (one accumulator vector)


@nb.njit(parallel=True, cache=True, fastmath=True)
def csr_times_dense_t(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, pt: np.ndarray
) -> np.ndarray:
    """``(V @ pt).T`` as float32 (n_users x n_items) for a CSR ``V`` (n_items x n_terms) and
    dense ``pt`` (n_terms x n_users): every user's score of every item, items in parallel.

    Each item row's term weights are applied to a tile of the contiguous user axis of
    ``pt`` (vectorized), so the cost is nnz(V) x n_users multiply-adds, no sparse output.
    """
    n_items = indptr.shape[0] - 1
    n_users = pt.shape[1]
    out = np.empty((n_users, n_items), dtype=np.float32)
    n_chunks = (n_items + _CHUNK - 1) // _CHUNK
    for c in nb.prange(n_chunks):
        acc = np.empty(_TILE, dtype=np.float32)
        for b0 in range(0, n_users, _TILE):
            n = min(_TILE, n_users - b0)
            for j in range(c * _CHUNK, min((c + 1) * _CHUNK, n_items)):
                for t in range(n):
                    acc[t] = 0.0
                for p in range(indptr[j], indptr[j + 1]):
                    v = data[p]
                    row = pt[indices[p], b0 : b0 + n]
                    for t in range(n):
                        acc[t] += v * row[t]
                for t in range(n):
                    out[b0 + t, j] = acc[t]
    return out
