"""Neighbourhood kernels: shrunk pearson-baseline similarity and baseline-kNN prediction.

Written for "x" entities (the ones compared: items when item-based) rated through "y"
entities (users when item-based). ``x_*`` is the x-major sparse matrix (x -> its y's),
``y_*`` the y-major one (y -> its x's), both with ratings.
"""

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True)
def pearson_baseline_sim(
    x_indptr: np.ndarray,
    x_ys: np.ndarray,
    y_indptr: np.ndarray,
    y_xs: np.ndarray,
    y_r: np.ndarray,
    mu: float,
    bx: np.ndarray,
    by: np.ndarray,
    shrinkage: float,
    min_support: int,
) -> np.ndarray:
    """Dense (n_x, n_x) float32 shrunk pearson-baseline similarity (Surprise's definition).

    With residuals ``d_xy = r_xy - (mu + bx[x] + by[y])`` and ``Y`` the y's that rated
    both x and x'::

        sim(x, x') = sum_Y d_xy d_x'y / sqrt(sum_Y d_xy^2 * sum_Y d_x'y^2)
                     * (|Y| - 1) / (|Y| - 1 + shrinkage)

    and 0 when ``|Y| < min_support`` or a denominator is 0; ``sim(x, x) = 1``. Rows are
    computed in parallel by walking x's y's and each of their x's (the co-rating
    structure), so the cost is ``sum_y n_y^2``.
    """
    n_x = x_indptr.shape[0] - 1
    sim = np.zeros((n_x, n_x), dtype=np.float32)
    # residual of each y-major entry, computed once
    y_res = np.empty(y_r.shape[0], dtype=np.float64)
    n_y = y_indptr.shape[0] - 1
    for y in nb.prange(n_y):
        for p in range(y_indptr[y], y_indptr[y + 1]):
            y_res[p] = y_r[p] - (mu + bx[y_xs[p]] + by[y])
    for x in nb.prange(n_x):
        freq = np.zeros(n_x, dtype=np.int64)
        prods = np.zeros(n_x, dtype=np.float64)
        sq_x = np.zeros(n_x, dtype=np.float64)
        sq_o = np.zeros(n_x, dtype=np.float64)
        for p in range(x_indptr[x], x_indptr[x + 1]):
            y = x_ys[p]
            lo, hi = y_indptr[y], y_indptr[y + 1]
            # find x's own residual in y's row (rows are sorted)
            a, b = lo, hi
            while a < b:
                mid = (a + b) // 2
                if y_xs[mid] < x:
                    a = mid + 1
                else:
                    b = mid
            dx = y_res[a]
            for q in range(lo, hi):
                o = y_xs[q]
                do = y_res[q]
                freq[o] += 1
                prods[o] += dx * do
                sq_x[o] += dx * dx
                sq_o[o] += do * do
        for o in range(n_x):
            f = freq[o]
            if o == x:
                sim[x, o] = 1.0
            elif f >= min_support and f > 0:
                den = np.sqrt(sq_x[o] * sq_o[o])
                if den > 0.0:
                    sim[x, o] = prods[o] / den * (f - 1) / (f - 1 + shrinkage)
    return sim


@nb.njit(parallel=True, cache=True)
def knn_baseline_predict(
    xs: np.ndarray,
    ys: np.ndarray,
    y_indptr: np.ndarray,
    y_xs: np.ndarray,
    y_r: np.ndarray,
    sim: np.ndarray,
    mu: float,
    bx: np.ndarray,
    by: np.ndarray,
    k: int,
    min_k: int,
) -> np.ndarray:
    """Baseline plus the similarity-weighted residuals of the k nearest rated neighbours.

    For pair (x, y): the neighbours are the x' rated by y with ``sim(x, x') > 0``; keep
    the ``k`` most similar and, if at least ``min_k`` remain, predict::

        mu + bx[x] + by[y] + sum sim(x, x') (r_x'y - mu - bx[x'] - by[y]) / sum sim(x, x')

    (Surprise's KNNBaseline: top-k by similarity, non-positive similarities ignored),
    otherwise the baseline alone. Pairs in parallel.
    """
    n = xs.shape[0]
    out = np.empty(n, dtype=np.float64)
    for t in nb.prange(n):
        x, y = xs[t], ys[t]
        lo, hi = y_indptr[y], y_indptr[y + 1]
        base = mu + bx[x] + by[y]
        cand_s = np.empty(hi - lo, dtype=np.float32)
        cand_p = np.empty(hi - lo, dtype=np.int64)
        c = 0
        for p in range(lo, hi):
            s = sim[x, y_xs[p]]
            if s > 0.0:
                cand_s[c] = s
                cand_p[c] = p
                c += 1
        if c > k:
            # keep the k largest similarities (ties broken by position)
            order = np.argsort(-cand_s[:c], kind="mergesort")[:k]
            sel_p = cand_p[order]
            sel_s = cand_s[order]
            c = k
        else:
            sel_p = cand_p[:c]
            sel_s = cand_s[:c]
        if c < min_k or c == 0:
            out[t] = base
            continue
        num = 0.0
        den = 0.0
        for j in range(c):
            p = sel_p[j]
            s = float(sel_s[j])
            num += s * (y_r[p] - (mu + bx[y_xs[p]] + by[y]))
            den += s
        out[t] = base + num / den
    return out
