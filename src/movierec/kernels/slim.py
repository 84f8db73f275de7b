"""SLIM: non-negative ElasticNet item-item weights by coordinate descent on the Gram matrix."""

import numba as nb
import numpy as np

from movierec.kernels.graph import _pop_sorted, _push_best


@nb.njit(parallel=True, cache=True)
def slim_columns(
    gram: np.ndarray,
    l1: float,
    l2: float,
    n_candidates: int,
    k: int,
    max_iter: int,
    tol: float,
    n_chunks: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """For every item j, the ``k`` largest weights of its non-negative ElasticNet regression.

    Column j solves ``min_w 0.5 ||x_j - X w||^2 + l1 |w|_1 + 0.5 l2 ||w||^2``, ``w >= 0``,
    ``w_j = 0``, by cyclic coordinate descent on the Gram matrix ``G = X^T X`` (dense, m x m):
    ``w_i <- max(0, g_i + G_ii w_i - l1) / (G_ii + l2)`` with the gradient
    ``g = G_:j - G w`` kept up to date. As X >= 0, G >= 0 and so ``g_i <= G_ij``: an item
    with ``G_ij <= l1`` is zero at the optimum and is never a candidate. When more than
    ``n_candidates`` remain (0: no limit), only that many with the largest ``G_ij`` are
    solved for (the rest are fixed at zero). Stops after ``max_iter`` sweeps or when no
    weight moved by more than ``tol`` times the largest weight.

    Returns (sources int32 (m, k), weights float32 (m, k)) per target row j, best first,
    padded with -1 and 0.
    """
    m = gram.shape[0]
    k = min(k, max(m - 1, 1))
    out_j = np.full((m, k), -1, dtype=np.int32)
    out_s = np.zeros((m, k), dtype=np.float32)
    n_chunks = max(1, min(m, n_chunks))
    for c in nb.prange(n_chunks):
        cand = np.empty(m, dtype=np.int64)
        val = np.empty(m, dtype=np.float64)
        w = np.zeros(m, dtype=np.float64)
        g = np.zeros(m, dtype=np.float64)
        hv = np.empty(k, dtype=np.float64)
        hi = np.empty(k, dtype=np.int64)
        for j in range(c, m, n_chunks):
            s = 0
            for i in range(m):
                if i != j and gram[j, i] > l1:
                    cand[s] = i
                    val[s] = gram[j, i]
                    s += 1
            if n_candidates > 0 and s > n_candidates:
                # the largest co-occurrences, ties to the lower index (stable sort)
                order = np.argsort(-val[:s], kind="mergesort")[:n_candidates]
                picked = np.sort(cand[:s][order])
                s = n_candidates
                cand[:s] = picked
            for t in range(s):
                w[t] = 0.0
                g[t] = gram[j, cand[t]]
            for _ in range(max_iter):
                max_d = 0.0
                max_w = 0.0
                for t in range(s):
                    q = cand[t]
                    d = gram[q, q]
                    old = w[t]
                    new = (g[t] + d * old - l1) / (d + l2)
                    if new < 0.0:
                        new = 0.0
                    if new != old:
                        delta = new - old
                        w[t] = new
                        for r in range(s):
                            g[r] -= delta * gram[q, cand[r]]
                        if abs(delta) > max_d:
                            max_d = abs(delta)
                    if new > max_w:
                        max_w = new
                if max_d <= tol * max_w:
                    break
            size = 0
            for t in range(s):
                if w[t] > 0.0:
                    size = _push_best(hv, hi, size, k, w[t], cand[t])
            _pop_sorted(hv, hi, size, out_j, out_s, j)
    return out_j, out_s
