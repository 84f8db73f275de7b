"""Item-to-item transitions in users' time-ordered histories (the sequential baseline)."""

import numba as nb
import numpy as np

from movierec.kernels.graph import _pop_sorted, _push_best


@nb.njit(parallel=True, cache=True)
def transition_topk(
    seq: np.ndarray,
    seg_start: np.ndarray,
    seg_end: np.ndarray,
    occ_indptr: np.ndarray,
    occ_pos: np.ndarray,
    window: int,
    decay: float,
    backward: float,
    k: int,
    n_chunks: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest transition weights out of every item, best first.

    ``seq`` holds every user's items in time order, user after user; position p belongs
    to the user segment ``[seg_start[p], seg_end[p])``. ``occ_pos[occ_indptr[i]:
    occ_indptr[i + 1]]`` lists the positions of item i. The item at p leads to the one at
    p + d (1 <= d <= window, same user) with weight ``decay ** (d - 1)``, and with
    ``backward`` times that to the one at p - d. Items run in ``n_chunks`` parallel chunks,
    each with one dense accumulator; the diagonal is dropped, ties go to the lower index.

    Returns (items int32 (n_items, k), weights float32 (n_items, k)), padded with -1, 0.
    """
    n_items = occ_indptr.shape[0] - 1
    k = min(k, max(n_items - 1, 1))
    out_j = np.full((n_items, k), -1, dtype=np.int32)
    out_s = np.zeros((n_items, k), dtype=np.float32)
    n_chunks = max(1, min(n_items, n_chunks))
    for c in nb.prange(n_chunks):
        acc = np.zeros(n_items, dtype=np.float64)
        touched = np.empty(n_items, dtype=np.int64)
        hv = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        for i in range(c, n_items, n_chunks):
            nt = 0
            for o in range(occ_indptr[i], occ_indptr[i + 1]):
                p = occ_pos[o]
                w = 1.0
                for d in range(1, window + 1):
                    if p + d < seg_end[p]:
                        j = seq[p + d]
                        if acc[j] == 0.0:
                            touched[nt] = j
                            nt += 1
                        acc[j] += w
                    if backward > 0.0 and p - d >= seg_start[p]:
                        j = seq[p - d]
                        if acc[j] == 0.0:
                            touched[nt] = j
                            nt += 1
                        acc[j] += backward * w
                    w *= decay
            size = 0
            for t in range(nt):
                j = touched[t]
                s = acc[j]
                acc[j] = 0.0
                if j != i and s > 0.0:
                    size = _push_best(hv, hi, size, k, s, j)
            _pop_sorted(hv, hi, size, out_j, out_s, i)
    return out_j, out_s
