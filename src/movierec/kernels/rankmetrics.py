"""Kernels for ranking metrics on (n_users, K) matrices of recommended items."""

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True)
def hit_gains(
    rec: np.ndarray, rel_indptr: np.ndarray, rel_indices: np.ndarray, rel_gains: np.ndarray
) -> np.ndarray:
    """Gain of every recommended item: ``rel_gains`` of the match in the row's relevant set, else 0.

    ``rec`` is (n, K) int32 (item -1 = padding, never a hit); row r's relevant items are
    ``rel_indices[rel_indptr[r]:rel_indptr[r+1]]``, sorted ascending (binary search).
    """
    n, k = rec.shape
    out = np.zeros((n, k), dtype=np.float64)
    for r in nb.prange(n):
        lo0, hi0 = rel_indptr[r], rel_indptr[r + 1]
        if lo0 == hi0:
            continue
        for j in range(k):
            it = rec[r, j]
            if it < 0:
                continue
            lo, hi = lo0, hi0
            while lo < hi:
                mid = (lo + hi) >> 1
                if rel_indices[mid] < it:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < hi0 and rel_indices[lo] == it:
                out[r, j] = rel_gains[lo]
    return out


@nb.njit(inline="always")
def _popcount(x: np.uint64) -> int:
    c = 0
    while x:
        x &= x - np.uint64(1)
        c += 1
    return c


@nb.njit(parallel=True, cache=True)
def list_jaccard_distance(rec: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Mean pairwise Jaccard distance of the items' sets within each list.

    ``masks[i]`` is item i's set as a row of uint64 bit-mask words (e.g. genres).
    Padding items (-1) are skipped; two empty sets are at distance 0; a list with fewer
    than 2 items gives NaN.
    """
    n, k = rec.shape
    w = masks.shape[1]
    out = np.full(n, np.nan)
    for r in nb.prange(n):
        total = 0.0
        pairs = 0
        for a in range(k):
            ia = rec[r, a]
            if ia < 0:
                continue
            for b in range(a + 1, k):
                ib = rec[r, b]
                if ib < 0:
                    continue
                inter = 0
                union = 0
                for t in range(w):
                    inter += _popcount(masks[ia, t] & masks[ib, t])
                    union += _popcount(masks[ia, t] | masks[ib, t])
                if union > 0:
                    total += 1.0 - inter / union
                pairs += 1
        if pairs > 0:
            out[r] = total / pairs
    return out
