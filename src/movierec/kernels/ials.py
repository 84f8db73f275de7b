"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) half-steps: conjugate gradient or Cholesky.

One half-step solves, for every row u of a sparse confidence matrix (CSR ``indptr``,
``indices``, ``conf``) with the other side's factors ``Y`` fixed,

    (YtY + Y_u^T (C_u - I) Y_u + reg_u I) x_u = Y_u^T C_u 1

where Y_u holds the factors of the row's items and C_u their confidences (stored entries
have preference 1, absent ones preference 0 and confidence 1). ``YtY`` is passed in,
computed once per half-step with BLAS.
"""

import numba as nb
import numpy as np

from movierec.kernels.prefetch import prefetch_row_read

# factor rows prefetched ahead of the gather (the next row's first ones during the solve)
_AHEAD = 16


@nb.njit(inline="always", fastmath=True)
def _symv(A: np.ndarray, x: np.ndarray, reg: float, out: np.ndarray) -> None:
    # out = (A + reg I) x for symmetric A, as a sum of columns so the inner loop vectorizes;
    # four columns per pass over out
    f = x.size
    for a in range(f):
        out[a] = reg * x[a]
    b = 0
    while b + 4 <= f:
        a0, a1, a2, a3 = A[b], A[b + 1], A[b + 2], A[b + 3]
        x0, x1, x2, x3 = x[b], x[b + 1], x[b + 2], x[b + 3]
        for a in range(f):
            out[a] += a0[a] * x0 + a1[a] * x1 + a2[a] * x2 + a3[a] * x3
        b += 4
    while b < f:
        ab, xb = A[b], x[b]
        for a in range(f):
            out[a] += ab[a] * xb
        b += 1


@nb.njit(inline="always", fastmath=True)
def _add_rows(
    Yu: np.ndarray, m: int, cu: np.ndarray, cm1: np.ndarray, v: np.ndarray, out: np.ndarray,
    first: bool,
) -> None:  # fmt: skip
    # out += sum_j w_j Yu[j] with d_j = Yu[j] . v and w_j = cm1_j d_j, or c_j - cm1_j d_j
    # when ``first`` (the right-hand side minus the rank-one terms); four rows per pass
    f = v.size
    j = 0
    while j + 4 <= m:
        y0, y1, y2, y3 = Yu[j], Yu[j + 1], Yu[j + 2], Yu[j + 3]
        d0 = d1 = d2 = d3 = np.float32(0.0)
        for a in range(f):
            va = v[a]
            d0 += y0[a] * va
            d1 += y1[a] * va
            d2 += y2[a] * va
            d3 += y3[a] * va
        w0, w1, w2, w3 = cm1[j] * d0, cm1[j + 1] * d1, cm1[j + 2] * d2, cm1[j + 3] * d3
        if first:
            w0, w1, w2, w3 = cu[j] - w0, cu[j + 1] - w1, cu[j + 2] - w2, cu[j + 3] - w3
        for a in range(f):
            out[a] += w0 * y0[a] + w1 * y1[a] + w2 * y2[a] + w3 * y3[a]
        j += 4
    while j < m:
        yj = Yu[j]
        d = np.float32(0.0)
        for a in range(f):
            d += yj[a] * v[a]
        w = cm1[j] * d
        if first:
            w = cu[j] - w
        for a in range(f):
            out[a] += w * yj[a]
        j += 1


@nb.njit(parallel=True, fastmath=True, cache=True)
def ials_cg(
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    YtY: np.ndarray,
    reg: np.ndarray,
    cg_steps: int,
    n_blocks: int,
) -> None:
    """Update ``X`` in place by ``cg_steps`` conjugate-gradient steps per row, warm-started.

    Parameters
    ----------
    indptr, indices, conf : CSR arrays of the rows being solved (conf = c_ui > 0).
    X : float32 (n_rows, f), updated in place; its rows are the warm starts.
    Y : float32 (n_cols, f), fixed factors of the other side.
    YtY : float32 (f, f), ``Y.T @ Y``.
    reg : float32 (n_rows,), the L2 weight of each row.
    cg_steps : int, CG iterations per row (rows with no entries are set to 0).
    n_blocks : int, work units for the threads (e.g. 8 x threads); rows are dealt to
        them in stride so long and short rows balance.
    """
    n, f = X.shape
    n_blocks = max(1, min(n, n_blocks))
    for blk in nb.prange(n_blocks):
        # strided rows per block balance long and short rows across threads
        maxlen = 0
        for u in range(blk, n, n_blocks):
            maxlen = max(maxlen, indptr[u + 1] - indptr[u])
        Yu = np.empty((maxlen, f), dtype=np.float32)
        cu = np.empty(maxlen, dtype=np.float32)
        cm1 = np.empty(maxlen, dtype=np.float32)  # c - 1 in float32: no float64 in the loops
        x = np.empty(f, dtype=np.float32)
        r = np.empty(f, dtype=np.float32)
        p = np.empty(f, dtype=np.float32)
        Ap = np.empty(f, dtype=np.float32)
        for u in range(blk, n, n_blocks):
            s, e = indptr[u], indptr[u + 1]
            m = e - s
            if m == 0:
                X[u, :] = 0.0
                continue
            for j in range(m):
                if j + _AHEAD < m:
                    prefetch_row_read(Y, indices[s + j + _AHEAD])
                Yu[j, :] = Y[indices[s + j], :]
                cu[j] = conf[s + j]
                cm1[j] = conf[s + j] - np.float32(1.0)
            if u + n_blocks < n:
                nxt = indptr[u + n_blocks]
                for q in range(nxt, min(indptr[u + n_blocks + 1], nxt + _AHEAD)):
                    prefetch_row_read(Y, indices[q])
            lam = reg[u]
            x[:] = X[u, :]
            # r = b - A x
            _symv(YtY, x, lam, r)
            for a in range(f):
                r[a] = -r[a]
            _add_rows(Yu, m, cu, cm1, x, r, True)
            rs_old = np.float32(0.0)
            for a in range(f):
                p[a] = r[a]
                rs_old += r[a] * r[a]
            for _ in range(cg_steps):
                if rs_old < 1e-20:
                    break
                _symv(YtY, p, lam, Ap)
                _add_rows(Yu, m, cu, cm1, p, Ap, False)
                pap = np.float32(0.0)
                for a in range(f):
                    pap += p[a] * Ap[a]
                if pap <= 0.0:
                    break
                alpha = rs_old / pap
                rs_new = np.float32(0.0)
                for a in range(f):
                    x[a] += alpha * p[a]
                    r[a] -= alpha * Ap[a]
                    rs_new += r[a] * r[a]
                beta = rs_new / rs_old
                for a in range(f):
                    p[a] = r[a] + beta * p[a]
                rs_old = rs_new
            X[u, :] = x


@nb.njit(inline="always")
def _chol_solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    # in-place Cholesky A = L L^T (lower triangle), then two triangular solves
    f = b.size
    for j in range(f):
        s = A[j, j]
        for k in range(j):
            s -= A[j, k] * A[j, k]
        d = np.sqrt(max(s, 1e-30))
        A[j, j] = d
        for i in range(j + 1, f):
            t = A[i, j]
            for k in range(j):
                t -= A[i, k] * A[j, k]
            A[i, j] = t / d
    y = np.empty(f, dtype=np.float64)
    for i in range(f):
        t = b[i]
        for k in range(i):
            t -= A[i, k] * y[k]
        y[i] = t / A[i, i]
    x = np.empty(f, dtype=np.float64)
    for i in range(f - 1, -1, -1):
        t = y[i]
        for k in range(i + 1, f):
            t -= A[k, i] * x[k]
        x[i] = t / A[i, i]
    return x


@nb.njit(parallel=True, cache=True)
def ials_cholesky(
    indptr: np.ndarray,
    indices: np.ndarray,
    conf: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    YtY: np.ndarray,
    reg: np.ndarray,
    n_blocks: int,
) -> None:
    """Update ``X`` in place with the exact solution of every row (float64 Cholesky).

    Same arguments as :func:`ials_cg` (without ``cg_steps``). Costs O(nnz f^2 + n f^3).
    """
    n, f = X.shape
    n_blocks = max(1, min(n, n_blocks))
    for blk in nb.prange(n_blocks):
        A = np.empty((f, f), dtype=np.float64)
        b = np.empty(f, dtype=np.float64)
        for u in range(blk, n, n_blocks):
            s, e = indptr[u], indptr[u + 1]
            if e == s:
                X[u, :] = 0.0
                continue
            for i in range(f):
                b[i] = 0.0
                for k in range(f):
                    A[i, k] = YtY[i, k]
                A[i, i] += reg[u]
            for p in range(s, e):
                y = Y[indices[p]]
                c = conf[p]
                for i in range(f):
                    yi = (c - 1.0) * y[i]
                    b[i] += c * y[i]
                    # the lower triangle is all the factorization reads
                    for k in range(i + 1):
                        A[i, k] += yi * y[k]
            x = _chol_solve(A, b)
            for i in range(f):
                X[u, i] = x[i]
