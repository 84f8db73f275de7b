"""The one top-K kernel shared by every model (recommend, similar items, evaluation)."""

import numba as nb
import numpy as np


@nb.njit(inline="always")
def _sift_down(hv: np.ndarray, hi: np.ndarray, pos: int, n: int) -> None:
    # min-heap on (value, -index): the root is the worst kept entry
    while True:
        c = 2 * pos + 1
        if c >= n:
            return
        if c + 1 < n and (hv[c + 1] < hv[c] or (hv[c + 1] == hv[c] and hi[c + 1] > hi[c])):
            c += 1
        if hv[c] < hv[pos] or (hv[c] == hv[pos] and hi[c] > hi[pos]):
            hv[c], hv[pos] = hv[pos], hv[c]
            hi[c], hi[pos] = hi[pos], hi[c]
            pos = c
        else:
            return


@nb.njit(inline="always")
def _heap_push(hv: np.ndarray, hi: np.ndarray, size: int, v: float, j: int) -> None:
    """Insert (v, j) into the min-heap of ``size`` entries (ties: larger index is worse)."""
    pos = size
    hv[pos] = v
    hi[pos] = j
    while pos > 0:
        par = (pos - 1) // 2
        if hv[pos] < hv[par] or (hv[pos] == hv[par] and hi[pos] > hi[par]):
            hv[pos], hv[par] = hv[par], hv[pos]
            hi[pos], hi[par] = hi[par], hi[pos]
            pos = par
        else:
            return


@nb.njit(parallel=True, cache=True)
def topk_rows(
    scores: np.ndarray,
    k: int,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` columns of every row of ``scores``, best first, skipping excluded columns.

    Row r skips columns ``excl_indices[excl_indptr[r]:excl_indptr[r+1]]`` and any -inf or NaN
    score. Ties go to the lower column index. Rows with fewer than k candidates are padded
    with index -1 and score -inf.
    """
    n, m = scores.shape
    k = min(k, m)
    out_i = np.full((n, k), -1, dtype=np.int32)
    out_v = np.full((n, k), -np.inf, dtype=np.float32)
    for r in nb.prange(n):
        skip = np.zeros(m, dtype=np.bool_)
        for p in range(excl_indptr[r], excl_indptr[r + 1]):
            skip[excl_indices[p]] = True
        hv = np.empty(k, dtype=np.float32)
        hi = np.empty(k, dtype=np.int32)
        size = 0
        row = scores[r]
        j = 0
        while j < m:
            if size == k and j % 64 == 0:
                # skip a block whose best score cannot enter the heap (NaN never wins)
                mx = -np.inf
                end = min(j + 64, m)
                for t in range(j, end):
                    if row[t] > mx:
                        mx = row[t]
                if not mx > hv[0]:
                    j = end
                    continue
            v = row[j]
            if skip[j] or not (v > -np.inf):
                pass
            elif size < k:
                _heap_push(hv, hi, size, v, j)
                size += 1
            elif v > hv[0]:
                hv[0] = v
                hi[0] = j
                _sift_down(hv, hi, 0, size)
            j += 1
        # pop the heap from worst to best
        for t in range(size - 1, -1, -1):
            out_v[r, t] = hv[0]
            out_i[r, t] = hi[0]
            size -= 1
            hv[0] = hv[size]
            hi[0] = hi[size]
            _sift_down(hv, hi, 0, size)
    return out_i, out_v
