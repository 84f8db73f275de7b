"""Kernels for per-user temporal splits."""

import numba as nb
import numpy as np


@nb.njit(parallel=True, cache=True)
def per_user_last(
    indptr: np.ndarray,
    order: np.ndarray,
    ts: np.ndarray,
    items: np.ndarray,
    n_val: int,
    n_test: int,
    min_train: int,
    n_items: int,
) -> np.ndarray:
    """Part of every rating (0 train, 1 validation, 2 test) by each user's time order.

    A user's ratings are ordered by (timestamp, item); the last ``n_test`` go to test, the
    ``n_val`` before them to validation, when at least ``min_train`` remain for training.
    """
    part = np.zeros(ts.shape[0], dtype=np.int8)
    need = min_train + n_val + n_test
    # (timestamp, item) as one sortable key: the item index breaks ties below one second
    span = np.float64(n_items + 1)
    for u in nb.prange(indptr.shape[0] - 1):
        a, b = indptr[u], indptr[u + 1]
        n = b - a
        if n < need or n_val + n_test == 0:
            continue
        rows = order[a:b]
        keys = np.empty(n, dtype=np.float64)
        for j in range(n):
            keys[j] = np.float64(ts[rows[j]]) + items[rows[j]] / span
        srt = rows[np.argsort(keys, kind="mergesort")]
        for j in range(n - n_test - n_val, n - n_test):
            part[srt[j]] = 1
        for j in range(n - n_test, n):
            part[srt[j]] = 2
    return part
