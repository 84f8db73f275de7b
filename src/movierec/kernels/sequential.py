"""Item-to-item transitions in users' time-ordered histories (the sequential baseline)."""

import numba as nb
import numpy as np

from movierec.kernels.graph import _pop_sorted, _push_best


@nb.njit(cache=True)
def transitions(
    indptr: np.ndarray, seq: np.ndarray, window: int, decay: float, backward: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(from, to, weight) of every transition within ``window`` steps of each user's history.

    ``seq[indptr[u]:indptr[u + 1]]`` is user u's items in time order. The item at position
    p leads to the one at p + d (1 <= d <= window) with weight ``decay ** (d - 1)``; with
    ``backward > 0`` also back to it with ``backward`` times that weight. Duplicates are
    left for the caller to sum.
    """
    n_users = indptr.shape[0] - 1
    total = 0
    for u in range(n_users):
        n = indptr[u + 1] - indptr[u]
        for d in range(1, window + 1):
            if n > d:
                total += n - d
    mult = 2 if backward > 0.0 else 1
    rows = np.empty(total * mult, dtype=np.int32)
    cols = np.empty(total * mult, dtype=np.int32)
    vals = np.empty(total * mult, dtype=np.float32)
    t = 0
    for u in range(n_users):
        a, b = indptr[u], indptr[u + 1]
        for p in range(a, b):
            w = 1.0
            for q in range(p + 1, min(b, p + window + 1)):
                rows[t], cols[t], vals[t] = seq[p], seq[q], w
                t += 1
                if mult == 2:
                    rows[t], cols[t], vals[t] = seq[q], seq[p], w * backward
                    t += 1
                w *= decay
    return rows, cols, vals


@nb.njit(parallel=True, cache=True)
def csr_row_topk(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest positive entries of each CSR row off the diagonal, best first (ties
    to the lower column): (columns int32 (n, k), values float32 (n, k)), padded -1 and 0."""
    n = indptr.shape[0] - 1
    out_j = np.full((n, k), -1, dtype=np.int32)
    out_s = np.zeros((n, k), dtype=np.float32)
    for i in nb.prange(n):
        hv = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        size = 0
        for p in range(indptr[i], indptr[i + 1]):
            j = indices[p]
            if j != i and data[p] > 0.0:
                size = _push_best(hv, hi, size, k, data[p], j)
        _pop_sorted(hv, hi, size, out_j, out_s, i)
    return out_j, out_s
