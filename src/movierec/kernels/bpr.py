"""Bayesian personalized ranking (Rendle et al. 2009): one epoch of pairwise SGD."""

import numba as nb
import numpy as np

_MUL = np.uint64(0x2545F4914F6CDD1D)
_S12 = np.uint64(12)
_S25 = np.uint64(25)
_S27 = np.uint64(27)
_S33 = np.uint64(33)


@nb.njit(inline="always")
def _next(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    # xorshift64*: (new state, 31 well-mixed output bits)
    state ^= state >> _S12
    state ^= state << _S25
    state ^= state >> _S27
    return state, (state * _MUL) >> _S33


@nb.njit(inline="always")
def _contains(indices: np.ndarray, lo: int, hi: int, item: int) -> bool:
    # binary search in the sorted slice indices[lo:hi]
    while lo < hi:
        mid = (lo + hi) // 2
        v = indices[mid]
        if v == item:
            return True
        if v < item:
            lo = mid + 1
        else:
            hi = mid
    return False


@nb.njit(fastmath=True, cache=True)
def _run(
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    U: np.ndarray,
    V: np.ndarray,
    lr: float,
    reg: float,
    state: np.uint64,
    n_samples: int,
    pop_neg: bool,
) -> tuple[int, int]:
    nnz = indices.size
    n_items, d = V.shape
    f = d - 1
    skipped = 0
    correct = 0
    for _ in range(n_samples):
        state, a = _next(state)
        state, b = _next(state)
        # 31-bit draws are uniform enough for any MovieLens size (< 2^31 ratings)
        k = np.int64(a) % nnz
        if pop_neg:
            neg = np.int64(indices[np.int64(b) % nnz])
        else:
            neg = np.int64(b) % n_items
        u = rows[k]
        pos = indices[k]
        if _contains(indices, indptr[u], indptr[u + 1], neg):
            skipped += 1
            continue
        z = np.float32(0.0)
        for t in range(d):
            z += U[u, t] * (V[pos, t] - V[neg, t])
        if z > 0:
            correct += 1
        g = np.float32(1.0) / (np.float32(1.0) + np.exp(z))
        for t in range(f):
            ut = U[u, t]
            U[u, t] += lr * (g * (V[pos, t] - V[neg, t]) - reg * ut)
            V[pos, t] += lr * (g * ut - reg * V[pos, t])
            V[neg, t] += lr * (-g * ut - reg * V[neg, t])
        # the last column is the item bias; the user's is fixed to 1
        V[pos, f] += lr * (g - reg * V[pos, f])
        V[neg, f] += lr * (-g - reg * V[neg, f])
    return skipped, correct


@nb.njit(parallel=True, cache=True)
def bpr_epoch(
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    U: np.ndarray,
    V: np.ndarray,
    lr: float,
    reg: float,
    seeds: np.ndarray,
    pop_neg: bool,
) -> tuple[int, int]:
    """One epoch of BPR-SGD: ``indices.size`` samples split over ``seeds.size`` threads.

    Each sample draws a positive (user u, item i) uniformly among the stored entries and a
    negative item j (uniformly or by popularity; skipped when u has j), then takes a step
    on :math:`\\ln \\sigma(x_{ui} - x_{uj}) - \\lambda \\|\\theta\\|^2` with
    :math:`x_{ui} = U_u \\cdot V_i`. Threads update the shared factors without locks
    (Hogwild); one seed gives a deterministic epoch.

    Parameters
    ----------
    rows : int32 (nnz,), the user of each stored entry (CSR order).
    indptr, indices : CSR of the positive entries, indices sorted within rows.
    U : float32 (n_users, f + 1), last column fixed to 1; updated in place.
    V : float32 (n_items, f + 1), last column the item bias; updated in place.
    lr, reg : learning rate and L2 weight.
    seeds : uint64 (n_threads,), nonzero xorshift seeds, one per thread.
    pop_neg : False: negatives uniform over the catalogue; True: proportional to their
        number of positives (the item of a uniformly drawn stored entry).

    Returns
    -------
    (skipped, correct) : samples skipped (negative was a positive), and samples ranked
        right before their update.
    """
    n_threads = seeds.size
    nnz = indices.size
    out = np.zeros((n_threads, 2), dtype=np.int64)
    for t in nb.prange(n_threads):
        n_t = nnz // n_threads + (1 if t < nnz % n_threads else 0)
        out[t, 0], out[t, 1] = _run(rows, indptr, indices, U, V, lr, reg, seeds[t], n_t, pop_neg)
    return int(out[:, 0].sum()), int(out[:, 1].sum())
