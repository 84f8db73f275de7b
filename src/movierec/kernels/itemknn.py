"""Top-k item-item cosine neighbours from a sparse user-item matrix (item-kNN)."""

import numba as nb
import numpy as np

from movierec.kernels.topk import _heap_push, _sift_down


@nb.njit(parallel=True, cache=True)
def cosine_topk(
    i_indptr: np.ndarray,
    i_users: np.ndarray,
    i_vals: np.ndarray,
    u_indptr: np.ndarray,
    u_items: np.ndarray,
    u_vals: np.ndarray,
    k: int,
    shrink: float,
    n_chunks: int = 256,
    cosine: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most cosine-similar items of every item, best first.

    The matrix X (users x items) is given twice: by item (CSC: ``i_indptr``, ``i_users``,
    ``i_vals``) and by user (CSR: ``u_indptr``, ``u_items``, ``u_vals``). For item i the
    dot products with every item j come from the users who rated i,
    ``d_ij = sum_u x_ui x_uj``, so no dense item x item matrix is ever built; then
    ``s_ij = d_ij / (||x_i|| ||x_j|| + shrink)`` (``cosine=False``: ``d_ij / (1 + shrink)``). Only j != i with ``s_ij > 0`` is kept;
    ties go to the lower index. Items are processed in ``n_chunks`` parallel chunks (a few
    per thread), each with one dense accumulator.

    Returns
    -------
    (neighbours int32 (n_items, k), similarities float32 (n_items, k)); rows with fewer
    than k positive neighbours are padded with -1 and 0.
    """
    n_items = i_indptr.shape[0] - 1
    norms = np.zeros(n_items, dtype=np.float64)
    for i in range(n_items):
        s = 0.0
        for p in range(i_indptr[i], i_indptr[i + 1]):
            s += i_vals[p] * i_vals[p]
        # with cosine=False a rated item has norm 1 (plain dot product), unrated 0
        norms[i] = np.sqrt(s) if cosine else (1.0 if s > 0.0 else 0.0)
    k = min(k, max(n_items - 1, 1))
    out_j = np.full((n_items, k), -1, dtype=np.int32)
    out_s = np.zeros((n_items, k), dtype=np.float32)
    n_chunks = max(1, min(n_items, n_chunks))
    for c in nb.prange(n_chunks):
        # one dense accumulator per chunk of items, reset through the touched list
        acc = np.zeros(n_items, dtype=np.float64)
        touched = np.empty(n_items, dtype=np.int64)
        hv = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        for i in range(c, n_items, n_chunks):
            if norms[i] == 0.0:
                continue
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
                d = acc[j]
                acc[j] = 0.0
                if j == i or norms[j] == 0.0:
                    continue
                s = d / (norms[i] * norms[j] + shrink)
                if not s > 0.0:
                    continue
                # min-heap on (s, -j): the root is the worst kept neighbour
                if size < k:
                    _heap_push(hv, hi, size, s, j)
                    size += 1
                elif s > hv[0] or (s == hv[0] and j < hi[0]):
                    hv[0] = s
                    hi[0] = j
                    _sift_down(hv, hi, 0, size)
            for t in range(size - 1, -1, -1):
                out_s[i, t] = hv[0]
                out_j[i, t] = hi[0]
                size -= 1
                hv[0] = hv[size]
                hi[0] = hi[size]
                _sift_down(hv, hi, 0, size)
    return out_j, out_s
