"""Regularized user and item biases by alternating least squares (Surprise's BaselineOnly)."""

import numba as nb
import numpy as np


@nb.njit(cache=True)
def baseline_als(
    u_indptr: np.ndarray,
    u_items: np.ndarray,
    u_r: np.ndarray,
    i_indptr: np.ndarray,
    i_users: np.ndarray,
    i_r: np.ndarray,
    mu: float,
    reg_u: float,
    reg_i: float,
    n_epochs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Biases minimizing sum (r - mu - bu - bi)^2 + reg_u sum bu^2 + reg_i sum bi^2.

    Each epoch solves the items' biases given the users' and then the users' given the
    items' (Surprise's order: bi first, then bu), each in closed form.
    """
    n_u = u_indptr.shape[0] - 1
    n_i = i_indptr.shape[0] - 1
    bu = np.zeros(n_u, dtype=np.float64)
    bi = np.zeros(n_i, dtype=np.float64)
    for _ in range(n_epochs):
        for i in range(n_i):
            s = 0.0
            for p in range(i_indptr[i], i_indptr[i + 1]):
                s += i_r[p] - mu - bu[i_users[p]]
            bi[i] = s / (reg_i + (i_indptr[i + 1] - i_indptr[i]))
        for u in range(n_u):
            s = 0.0
            for p in range(u_indptr[u], u_indptr[u + 1]):
                s += u_r[p] - mu - bi[u_items[p]]
            bu[u] = s / (reg_u + (u_indptr[u + 1] - u_indptr[u]))
    return bu, bi
