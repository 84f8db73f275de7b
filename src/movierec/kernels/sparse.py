"""Kernels that build and query compressed sparse rows from coordinate arrays."""

import numba as nb
import numpy as np


@nb.njit(cache=True)
def dense_ids_by_table(raw: np.ndarray, max_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Map non-negative raw ids to dense 0..n-1 by a presence table (O(n + max_id)).

    Returns (sorted unique raw ids, dense index of every element of ``raw``).
    """
    table = np.zeros(max_id + 2, dtype=np.int64)
    for x in raw:
        table[x] = 1
    n = 0
    for v in range(max_id + 1):
        if table[v]:
            table[v] = n
            n += 1
        else:
            table[v] = -1
    uniq = np.empty(n, dtype=np.int64)
    for v in range(max_id + 1):
        if table[v] >= 0:
            uniq[table[v]] = v
    out = np.empty(raw.shape[0], dtype=np.int32)
    for k in range(raw.shape[0]):
        out[k] = table[raw[k]]
    return uniq, out


@nb.njit(cache=True)
def coo_to_csr_order(rows: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable counting sort of entries by row: (indptr, order) with order[j] the source entry."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    for r in rows:
        indptr[r + 1] += 1
    for i in range(n_rows):
        indptr[i + 1] += indptr[i]
    pos = indptr[:-1].copy()
    order = np.empty(rows.shape[0], dtype=np.int64)
    for k in range(rows.shape[0]):
        r = rows[k]
        order[pos[r]] = k
        pos[r] += 1
    return indptr, order


@nb.njit(cache=True)
def duplicate_mask(
    indptr: np.ndarray, cols: np.ndarray, order: np.ndarray, ts: np.ndarray, n_cols: int
) -> np.ndarray:
    """Mark, for each repeated (row, col), every entry but the latest (ties: last in file order).

    ``cols`` and ``ts`` are in source order; ``order`` maps CSR position to source entry.
    Returns a boolean mask over source entries, True for the entries to drop.
    """
    drop = np.zeros(cols.shape[0], dtype=np.bool_)
    last = np.full(n_cols, -1, dtype=np.int64)
    for r in range(indptr.shape[0] - 1):
        for p in range(indptr[r], indptr[r + 1]):
            k = order[p]
            c = cols[k]
            prev = last[c]
            if prev >= indptr[r]:
                kp = order[prev]
                # entries come in file order, so on equal timestamps the later one wins
                if ts[k] >= ts[kp]:
                    drop[kp] = True
                    last[c] = p
                else:
                    drop[k] = True
            else:
                last[c] = p
    return drop


@nb.njit(parallel=True, cache=True)
def sort_segments(indptr: np.ndarray, order: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Reorder ``order`` so that within each row segment entries are sorted by ``cols``."""
    out = order.copy()
    for r in nb.prange(indptr.shape[0] - 1):
        a, b = indptr[r], indptr[r + 1]
        if b - a > 1:
            seg = order[a:b]
            keys = cols[seg]
            out[a:b] = seg[np.argsort(keys, kind="mergesort")]
    return out
