"""Gibbs sampling kernels of Bayesian matrix factorization (BPMF with SVD++ terms).

The model is ``r_hat(u, i) = mu + b_u + b_i + t_i(bin) + q_i . (p_u + z_u)`` with
``z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j``. Every conditional is Gaussian: a row's unknowns
``x = [p_u, b_u]`` (or ``[q_i, b_i]``) given everything else have precision
``A = Lam + alpha sum_j f_j f_j^T`` and mean ``A^-1 (Lam m + alpha sum_j f_j t_j)`` with
features ``f_j = [v_j, 1]`` (the other side's vector and 1) and targets ``t_j`` (the rating
minus every other term). A draw is ``x = L^-T (L^-1 b + z)`` with ``A = L L^T`` and ``z``
standard normal.

Randomness is numba's ``np.random``, seeded per row from the caller's seed, so parallel
rows give the same draws whatever the thread schedule.
"""

# numba implements only the legacy np.random API (seeded per thread), not Generator
# ruff: noqa: NPY002

import numba as nb
import numpy as np


@nb.njit(inline="always")
def _chol_draw(a: np.ndarray, b: np.ndarray, n: int, draw: bool) -> None:
    """In place: ``a`` (lower triangle) becomes L (``a = L L^T``); ``b`` becomes a draw of
    ``N(A^-1 b, A^-1)`` (the mean only when ``draw`` is False)."""
    for j in range(n):
        s = a[j, j]
        for t in range(j):
            s -= a[j, t] * a[j, t]
        d = np.sqrt(max(s, 1e-12))
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
    if draw:  # after the forward solve: w = L^-1 b + z
        for i in range(n):
            b[i] += np.random.standard_normal()
    for i in range(n - 1, -1, -1):
        s = b[i]
        for t in range(i + 1, n):
            s -= a[t, i] * b[t]
        b[i] = s / a[i, i]


@nb.njit(parallel=True, cache=True, fastmath=True)
def sample_rows(
    indptr: np.ndarray,
    cols: np.ndarray,
    ratings: np.ndarray,
    offset: np.ndarray,
    f: np.ndarray,
    fb: np.ndarray,
    z: np.ndarray,
    x: np.ndarray,
    xb: np.ndarray,
    alpha: float,
    lam: np.ndarray,
    m: np.ndarray,
    seed: int,
) -> None:
    """Draw every row's ``[x[r], xb[r]]`` from its conditional, in parallel.

    Parameters
    ----------
    indptr, cols, ratings : CSR (or CSC) of the rows being drawn.
    offset : per rating (same order), terms other than the row's own and the features'
        bias: ``mu`` plus the time-bin bias.
    f, fb : the other side's vectors (n_cols, k) and biases (n_cols,).
    z : (n_rows, k) implicit part added to the row's vector in the product (users' ``z_u``),
        or an empty (0, k) array for none.
    x, xb : (n_rows, k), (n_rows,) float64, overwritten by the draw.
    alpha : noise precision.  lam, m : prior precision (k+1, k+1) and mean (k+1,).
    seed : row r's draws use seed + r.
    """
    n_rows = indptr.shape[0] - 1
    k = f.shape[1]
    n = k + 1
    use_z = z.shape[0] > 0
    lm = lam @ m
    for r in nb.prange(n_rows):
        np.random.seed(seed + r)
        a = lam.copy()
        b = lm.copy()
        for p in range(indptr[r], indptr[r + 1]):
            c = cols[p]
            t = ratings[p] - offset[p] - fb[c]
            if use_z:
                for d in range(k):
                    t -= f[c, d] * z[r, d]
            for i in range(k):
                fi = alpha * f[c, i]
                b[i] += fi * t
                for j in range(i + 1):
                    a[i, j] += fi * f[c, j]
                a[k, i] += fi
            b[k] += alpha * t
            a[k, k] += alpha
        _chol_draw(a, b, n, True)
        for d in range(k):
            x[r, d] = b[d]
        xb[r] = b[k]


@nb.njit(parallel=True, cache=True)
def implicit_sums(indptr: np.ndarray, cols: np.ndarray, y: np.ndarray, z: np.ndarray) -> None:
    """``z[u] = |N(u)|^-1/2 sum_{j in N(u)} y[j]`` for every row of a CSR (in place)."""
    k = y.shape[1]
    for u in nb.prange(indptr.shape[0] - 1):
        lo, hi = indptr[u], indptr[u + 1]
        s = 1.0 / np.sqrt(max(hi - lo, 1))
        for d in range(k):
            z[u, d] = 0.0
        for p in range(lo, hi):
            for d in range(k):
                z[u, d] += y[cols[p], d]
        for d in range(k):
            z[u, d] *= s


@nb.njit(cache=True, fastmath=True)
def sample_implicit(
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    offset: np.ndarray,
    cindptr: np.ndarray,
    cusers: np.ndarray,
    bu: np.ndarray,
    p: np.ndarray,
    z: np.ndarray,
    q: np.ndarray,
    bi: np.ndarray,
    y: np.ndarray,
    alpha: float,
    lam: np.ndarray,
    m: np.ndarray,
    seed: int,
) -> None:
    """Draw every implicit vector ``y[j]`` in turn from its exact conditional; updates ``z``.

    ``y_j`` enters every rating of every user who rated j through ``n_u^-1/2 q_i . y_j``, so
    its precision is ``Lam + alpha sum_{u rated j} Q_u / n_u`` with ``Q_u = sum_{i in R(u)}
    q_i q_i^T``, and its linear term ``Lam m + alpha sum_u n_u^-1/2 (g_u + n_u^-1/2 Q_u y_j)``
    with ``g_u = sum_i q_i e_ui`` (the residuals). Caching ``Q_u`` and ``g_u`` per user
    and updating ``g_u`` after each draw makes a sweep ``O(nnz k^2)`` instead of
    ``O(sum_u n_u^2 k)``; it costs ``n_users k^2`` floats of memory.
    """
    np.random.seed(seed)
    n_users = indptr.shape[0] - 1
    k = q.shape[1]
    qu = np.zeros((n_users, k, k))
    g = np.zeros((n_users, k))
    inv = np.zeros(n_users)
    for u in range(n_users):
        lo, hi = indptr[u], indptr[u + 1]
        if hi == lo:
            continue
        inv[u] = 1.0 / np.sqrt(hi - lo)
        for t in range(lo, hi):
            i = items[t]
            e = ratings[t] - offset[t] - bu[u] - bi[i]
            for d in range(k):
                e -= q[i, d] * (p[u, d] + z[u, d])
            for d in range(k):
                g[u, d] += q[i, d] * e
                for c in range(d + 1):
                    qu[u, d, c] += q[i, d] * q[i, c]
        for d in range(k):
            for c in range(d):
                qu[u, c, d] = qu[u, d, c]
    lm = lam @ m
    a = np.empty((k, k))
    b = np.empty(k)
    delta = np.empty(k)
    for j in range(cindptr.shape[0] - 1):
        a[:, :] = lam
        b[:] = lm
        for t in range(cindptr[j], cindptr[j + 1]):
            u = cusers[t]
            w = inv[u]
            for d in range(k):
                s = g[u, d]
                for c in range(k):
                    s += w * qu[u, d, c] * y[j, c]
                b[d] += alpha * w * s
                for c in range(d + 1):
                    a[d, c] += alpha * w * w * qu[u, d, c]
        _chol_draw(a, b, k, True)
        for d in range(k):
            delta[d] = b[d] - y[j, d]
            y[j, d] = b[d]
        for t in range(cindptr[j], cindptr[j + 1]):
            u = cusers[t]
            w = inv[u]
            for d in range(k):
                s = 0.0
                for c in range(k):
                    s += qu[u, d, c] * delta[c]
                g[u, d] -= w * s
                z[u, d] += w * delta[d]


@nb.njit(parallel=True, cache=True)
def sample_bin_biases(
    cindptr: np.ndarray,
    cusers: np.ndarray,
    ratings: np.ndarray,
    bins: np.ndarray,
    mu: float,
    bu: np.ndarray,
    pz: np.ndarray,
    q: np.ndarray,
    bi: np.ndarray,
    bt: np.ndarray,
    alpha: float,
    lam_t: float,
    seed: int,
) -> None:
    """Draw each item's time-bin biases ``bt[i, bin] ~ N(0, 1/lam_t)`` prior given the rest;
    ``pz`` are the users' effective vectors ``p_u + z_u``, the arrays in CSC order."""
    n_bins = bt.shape[1]
    k = q.shape[1]
    for i in nb.prange(cindptr.shape[0] - 1):
        np.random.seed(seed + i)
        s = np.zeros(n_bins)
        cnt = np.zeros(n_bins)
        for t in range(cindptr[i], cindptr[i + 1]):
            u = cusers[t]
            e = ratings[t] - mu - bu[u] - bi[i]
            for d in range(k):
                e -= q[i, d] * pz[u, d]
            s[bins[t]] += e
            cnt[bins[t]] += 1.0
        for h in range(n_bins):
            prec = lam_t + alpha * cnt[h]
            bt[i, h] = alpha * s[h] / prec + np.random.standard_normal() / np.sqrt(prec)


@nb.njit(parallel=True, cache=True)
def sum_squared_errors(
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    offset: np.ndarray,
    bu: np.ndarray,
    pz: np.ndarray,
    q: np.ndarray,
    bi: np.ndarray,
) -> float:
    """Sum over a CSR of ``(r - offset - b_u - b_i - q_i . pz_u)^2``."""
    n_users = indptr.shape[0] - 1
    k = q.shape[1]
    per = np.zeros(n_users)
    for u in nb.prange(n_users):
        s = 0.0
        for t in range(indptr[u], indptr[u + 1]):
            i = items[t]
            e = ratings[t] - offset[t] - bu[u] - bi[i]
            for d in range(k):
                e -= q[i, d] * pz[u, d]
            s += e * e
        per[u] = s
    return per.sum()
