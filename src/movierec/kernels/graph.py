"""Random-walk item-item similarity (P3alpha / RP3beta), sparse top-k neighbours."""

import numba as nb
import numpy as np

from movierec.kernels.topk import _heap_push, _sift_down


@nb.njit(inline="always")
def _push_best(hv, hi, size, k, s, j) -> int:
    """Keep the k best (s, lower j first) in the min-heap (hv, hi); returns the new size."""
    if size < k:
        _heap_push(hv, hi, size, s, j)
        return size + 1
    if s > hv[0] or (s == hv[0] and j < hi[0]):
        hv[0] = s
        hi[0] = j
        _sift_down(hv, hi, 0, size)
    return size


@nb.njit(inline="always")
def _pop_sorted(hv, hi, size, out_j, out_s, row) -> None:
    """Empty the heap into ``out_j[row], out_s[row]``, best first."""
    for t in range(size - 1, -1, -1):
        out_s[row, t] = hv[0]
        out_j[row, t] = hi[0]
        size -= 1
        hv[0] = hv[size]
        hi[0] = hi[size]
        _sift_down(hv, hi, 0, size)


@nb.njit(parallel=True, cache=True)
def walk_topk(
    i_indptr: np.ndarray,
    i_users: np.ndarray,
    i_vals: np.ndarray,
    u_indptr: np.ndarray,
    u_items: np.ndarray,
    u_vals: np.ndarray,
    col_weight: np.ndarray,
    k: int,
    n_chunks: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest entries of every row of ``(P_iu @ P_ui) diag(col_weight)``.

    ``P_iu`` (items x users) is given by rows (``i_indptr``, ``i_users``, ``i_vals``) and
    ``P_ui`` (users x items) by rows (``u_indptr``, ``u_items``, ``u_vals``): the two-step
    walk item i -> user u -> item j, ``w_ij = col_weight_j sum_u P_iu P_uj``. The diagonal
    is dropped, only ``w_ij > 0`` kept, ties go to the lower index. Items run in
    ``n_chunks`` parallel chunks, each with one dense accumulator.

    Returns (neighbours int32 (n_items, k), weights float32 (n_items, k)), padded with -1, 0.
    """
    n_items = i_indptr.shape[0] - 1
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
            for p in range(i_indptr[i], i_indptr[i + 1]):
                u = i_users[p]
                w = i_vals[p]
                for q in range(u_indptr[u], u_indptr[u + 1]):
                    j = u_items[q]
                    if acc[j] == 0.0:
                        touched[nt] = j
                        nt += 1
                    acc[j] += w * u_vals[q]
            size = 0
            for t in range(nt):
                j = touched[t]
                s = acc[j] * col_weight[j]
                acc[j] = 0.0
                if j == i or not s > 0.0:
                    continue
                size = _push_best(hv, hi, size, k, s, j)
            _pop_sorted(hv, hi, size, out_j, out_s, i)
    return out_j, out_s
