"""Explicit-feedback ALS with biases: one half-step solves every row's small system.

The model is ``r_hat(u, i) = mu + b_u + b_i + p_u . q_i``. With the other side fixed, each
row's unknowns ``x = [p_u, b_u]`` solve a ridge regression on the augmented features
``z_i = [q_i, 1]`` and targets ``r_ui - mu - b_i``::

    (sum_i z_i z_i^T + diag(lam, ..., lam, lam_b)) x = sum_i (r_ui - mu - b_i) z_i

with ``lam = reg * n_u`` and ``lam_b = reg_bias * n_u`` under weighted-lambda
regularization (Zhou et al. 2008), or ``reg`` / ``reg_bias`` without it. Rows are
independent and solved in parallel; each builds its (k+1) x (k+1) Gram matrix from its
CSR row and solves it by Cholesky.
"""

import numba as nb
import numpy as np


@nb.njit(inline="always")
def _cholesky_solve(a: np.ndarray, b: np.ndarray, n: int) -> None:
    # in place: a (lower triangle filled) becomes L with a = L L^T; b becomes the solution
    for j in range(n):
        s = a[j, j]
        for t in range(j):
            s -= a[j, t] * a[j, t]
        if s <= 1e-12:
            s = 1e-12
        d = np.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, n):
            s = a[i, j]
            for t in range(j):
                s -= a[i, t] * a[j, t]
            a[i, j] = s / d
    for i in range(n):
        s = b[i]
        for t in range(i):
            s -= a[i, t] * b[t]
        b[i] = s / a[i, i]
    for i in range(n - 1, -1, -1):
        s = b[i]
        for t in range(i + 1, n):
            s -= a[t, i] * b[t]
        b[i] = s / a[i, i]


@nb.njit(parallel=True, cache=True, fastmath=True)
def als_half_step(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    x: np.ndarray,
    xb: np.ndarray,
    y: np.ndarray,
    yb: np.ndarray,
    mu: float,
    reg: float,
    reg_bias: float,
    weighted: bool,
) -> None:
    """Solve every row's factors ``x[r]`` and bias ``xb[r]`` exactly, given ``y, yb``.

    Parameters
    ----------
    indptr, indices, data : CSR of the rows being solved (row r's columns and ratings).
    x : (n_rows, k) float32, overwritten.  xb : (n_rows,) float32, overwritten.
    y : (n_cols, k) float32.  yb : (n_cols,) float32.
    mu : global mean.  reg, reg_bias : ridge weights of factors and bias.
    weighted : multiply both weights by the row's number of ratings.

    Rows without ratings get zero factors and bias. The Gram matrix is built as dot
    products of the gathered, transposed features (contiguous, vectorized).
    """
    n_rows = indptr.shape[0] - 1
    k = y.shape[1]
    m = k + 1
    for r in nb.prange(n_rows):
        lo, hi = indptr[r], indptr[r + 1]
        n = hi - lo
        if n == 0:
            x[r, :] = 0.0
            xb[r] = 0.0
            continue
        zt = np.empty((m, n), dtype=np.float32)
        t = np.empty(n, dtype=np.float32)
        for p in range(n):
            j = indices[lo + p]
            t[p] = data[lo + p] - mu - yb[j]
            for f in range(k):
                zt[f, p] = y[j, f]
            zt[k, p] = 1.0
        a = np.empty((m, m), dtype=np.float64)
        b = np.empty(m, dtype=np.float64)
        for f in range(m):
            zf = zt[f]
            s = np.float32(0.0)
            for p in range(n):
                s += zf[p] * t[p]
            b[f] = s
            for g in range(f + 1):
                zg = zt[g]
                s = np.float32(0.0)
                for p in range(n):
                    s += zf[p] * zg[p]
                a[f, g] = s
        scale = float(n) if weighted else 1.0
        for f in range(k):
            a[f, f] += reg * scale
        a[k, k] += reg_bias * scale
        _cholesky_solve(a, b, m)
        for f in range(k):
            x[r, f] = b[f]
        xb[r] = b[k]


@nb.njit(parallel=True, cache=True, fastmath=True)
def als_half_step_cg(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    x: np.ndarray,
    xb: np.ndarray,
    y: np.ndarray,
    yb: np.ndarray,
    mu: float,
    reg: float,
    reg_bias: float,
    weighted: bool,
    cg_steps: int,
) -> None:
    """Like :func:`als_half_step`, but ``cg_steps`` conjugate-gradient steps per row.

    Warm-started from the current ``x[r], xb[r]``; the Gram matrix is never formed: each
    step applies ``A v = sum_i z_i (z_i . v) + diag(lam) v`` over the row's ratings, so
    a step costs ``2 (k+1)`` multiply-adds per rating instead of ``(k+1)^2 / 2`` for the
    Gram matrix (Takacs, Pilaszy and Tikk 2011).
    """
    n_rows = indptr.shape[0] - 1
    k = y.shape[1]
    m = k + 1
    for r in nb.prange(n_rows):
        lo, hi = indptr[r], indptr[r + 1]
        n = hi - lo
        if n == 0:
            x[r, :] = 0.0
            xb[r] = 0.0
            continue
        scale = float(n) if weighted else 1.0
        lam = np.float32(reg * scale)
        lam_b = np.float32(reg_bias * scale)
        # gather the row's features once: the steps then stream a contiguous buffer
        z = np.empty((n, k), dtype=np.float32)
        t = np.empty(n, dtype=np.float32)
        for p in range(n):
            j = indices[lo + p]
            z[p, :] = y[j, :]
            t[p] = data[lo + p] - mu - yb[j]
        v = np.empty(m, dtype=np.float32)
        v[:k] = x[r, :]
        v[k] = xb[r]
        # residual g = b - A v
        g = np.empty(m, dtype=np.float32)
        for f in range(k):
            g[f] = -lam * v[f]
        g[k] = -lam_b * v[k]
        for p in range(n):
            zp = z[p]
            s = v[k]
            for f in range(k):
                s += zp[f] * v[f]
            e = t[p] - s
            for f in range(k):
                g[f] += e * zp[f]
            g[k] += e
        d = g.copy()
        rs_old = np.float32(0.0)
        for f in range(m):
            rs_old += g[f] * g[f]
        ad = np.empty(m, dtype=np.float32)
        for _ in range(cg_steps):
            if rs_old < 1e-20:
                break
            for f in range(k):
                ad[f] = lam * d[f]
            ad[k] = lam_b * d[k]
            for p in range(n):
                zp = z[p]
                s = d[k]
                for f in range(k):
                    s += zp[f] * d[f]
                for f in range(k):
                    ad[f] += s * zp[f]
                ad[k] += s
            dad = np.float32(0.0)
            for f in range(m):
                dad += d[f] * ad[f]
            alpha = rs_old / dad
            rs_new = np.float32(0.0)
            for f in range(m):
                v[f] += alpha * d[f]
                g[f] -= alpha * ad[f]
                rs_new += g[f] * g[f]
            beta = rs_new / rs_old
            for f in range(m):
                d[f] = g[f] + beta * d[f]
            rs_old = rs_new
        x[r, :] = v[:k]
        xb[r] = v[k]


@nb.njit(parallel=True, cache=True)
def als_predict(
    users: np.ndarray,
    items: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    bu: np.ndarray,
    bi: np.ndarray,
    mu: float,
) -> np.ndarray:
    """``mu + bu[u] + bi[i] + p[u] . q[i]`` for each (u, i) pair (float64)."""
    n = users.shape[0]
    k = p.shape[1]
    out = np.empty(n, dtype=np.float64)
    for t in nb.prange(n):
        u, i = users[t], items[t]
        s = 0.0
        for f in range(k):
            s += p[u, f] * q[i, f]
        out[t] = mu + bu[u] + bi[i] + s
    return out


@nb.njit(parallel=True, cache=True)
def rmse_csr(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    bu: np.ndarray,
    bi: np.ndarray,
    mu: float,
) -> float:
    """Training RMSE of the biased factor model over a CSR matrix of ratings."""
    n_rows = indptr.shape[0] - 1
    k = p.shape[1]
    sq = np.zeros(n_rows, dtype=np.float64)
    for u in nb.prange(n_rows):
        s_u = 0.0
        for t in range(indptr[u], indptr[u + 1]):
            i = indices[t]
            s = mu + bu[u] + bi[i]
            for f in range(k):
                s += p[u, f] * q[i, f]
            e = data[t] - s
            s_u += e * e
        sq[u] = s_u
    n = indptr[n_rows]
    return np.sqrt(sq.sum() / n) if n > 0 else 0.0
