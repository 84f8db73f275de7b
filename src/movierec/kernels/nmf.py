"""Non-negative matrix factorization by multiplicative updates on observed ratings.

Luo et al. (2014), as in Surprise's ``NMF``: with ``est = p_u . q_i`` (plus the biases
when biased), one epoch updates every factor by

    p_uf <- p_uf * sum_i q_if r_ui / (sum_i q_if est_ui + n_u reg_pu p_uf)
    q_if <- q_if * sum_u p_uf r_ui / (sum_u p_uf est_ui + n_i reg_qi q_if)

with both sums over the observed ratings and ``est`` computed from the factors at the
start of the epoch. Non-negative factors stay non-negative.
"""

import numba as nb
import numpy as np

from movierec.kernels.prefetch import prefetch_row_read

# how many entries ahead a factor row is prefetched
_AHEAD = 8


@nb.njit(parallel=True, cache=True, fastmath=True)
def nmf_accumulate(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    num: np.ndarray,
    den: np.ndarray,
) -> None:
    """Row sums ``num[r] = sum_c y[c] r_rc`` and ``den[r] = sum_c y[c] est_rc``.

    ``est_rc = offset[p] + x[r] . y[c]`` for CSR entry p = (r, c); rows in parallel.
    """
    n_rows = indptr.shape[0] - 1
    k = x.shape[1]
    for r in nb.prange(n_rows):
        for f in range(k):
            num[r, f] = 0.0
            den[r, f] = 0.0
        end = indptr[r + 1]
        for p in range(indptr[r], end):
            if p + _AHEAD < end:  # y's rows are random accesses: fetch them ahead
                prefetch_row_read(y, indices[p + _AHEAD])
            c = indices[p]
            est = offset[p]
            for f in range(k):
                est += x[r, f] * y[c, f]
            for f in range(k):
                num[r, f] += y[c, f] * data[p]
                den[r, f] += y[c, f] * est


@nb.njit(parallel=True, cache=True)
def nmf_apply(
    indptr: np.ndarray, x: np.ndarray, num: np.ndarray, den: np.ndarray, reg: float
) -> None:
    """``x[r, f] *= num[r, f] / (den[r, f] + n_r reg x[r, f])`` for rows with ratings."""
    n_rows = indptr.shape[0] - 1
    k = x.shape[1]
    for r in nb.prange(n_rows):
        n = indptr[r + 1] - indptr[r]
        if n == 0:
            continue
        for f in range(k):
            d = den[r, f] + n * reg * x[r, f]
            if d != 0.0:
                x[r, f] *= num[r, f] / d


@nb.njit(cache=True)
def nmf_bias_sgd(
    u_indptr: np.ndarray,
    u_items: np.ndarray,
    u_r: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    bu: np.ndarray,
    bi: np.ndarray,
    mu: float,
    lr_bu: float,
    reg_bu: float,
    lr_bi: float,
    reg_bi: float,
    offset: np.ndarray,
) -> None:
    """One sequential SGD pass over the biases in user order, as Surprise does.

    ``bu += lr_bu (err - reg_bu bu)``, ``bi += lr_bi (err - reg_bi bi)`` per rating, and
    ``offset[t] = mu + bu + bi`` as seen by that rating (used in the factor sums).
    """
    n_u = u_indptr.shape[0] - 1
    k = p.shape[1]
    for u in range(n_u):
        for t in range(u_indptr[u], u_indptr[u + 1]):
            i = u_items[t]
            off = mu + bu[u] + bi[i]
            est = off
            for f in range(k):
                est += p[u, f] * q[i, f]
            offset[t] = off
            err = u_r[t] - est
            bu[u] += lr_bu * (err - reg_bu * bu[u])
            bi[i] += lr_bi * (err - reg_bi * bi[i])


@nb.njit(cache=True)
def scatter(perm: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    """``dst[perm[t]] = src[t]`` (CSR-ordered values into CSC order)."""
    for t in range(src.shape[0]):
        dst[perm[t]] = src[t]
