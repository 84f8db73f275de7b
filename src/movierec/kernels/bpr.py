"""Bayesian personalized ranking (Rendle et al. 2009): one epoch of pairwise SGD."""

import numba as nb
import numpy as np

from movierec.kernels.prefetch import prefetch_row

_MUL = np.uint64(0x2545F4914F6CDD1D)
_S12 = np.uint64(12)
_S25 = np.uint64(25)
_S27 = np.uint64(27)
_S33 = np.uint64(33)
# how many samples ahead of its update a sample is drawn and its factor rows prefetched
_AHEAD = 8


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


@nb.njit(parallel=True, cache=True)
def group_by_item_block(
    rows_by_block: np.ndarray,
    user_off: np.ndarray,
    indices: np.ndarray,
    item_block: np.ndarray,
    out: np.ndarray,
    off: np.ndarray,
) -> None:
    """Counting sort of each user block's entries by the item block of their item.

    ``rows_by_block[user_off[t]:user_off[t + 1]]`` are the entries (positions in
    ``indices``) of user block t; afterwards ``out[off[t, b]:off[t, b + 1]]`` are those
    whose item lies in item block b, in their original order. ``off`` is (T, T + 1).
    """
    n_blocks = user_off.size - 1
    for t in nb.prange(n_blocks):
        lo, hi = user_off[t], user_off[t + 1]
        off[t, :] = 0
        for p in range(lo, hi):
            off[t, item_block[indices[rows_by_block[p]]] + 1] += 1
        off[t, 0] = lo
        for b in range(n_blocks):
            off[t, b + 1] += off[t, b]
        fill = off[t, :n_blocks].copy()
        for p in range(lo, hi):
            e = rows_by_block[p]
            b = item_block[indices[e]]
            out[fill[b]] = e
            fill[b] += 1


@nb.njit(fastmath=True, cache=True)
def _run_stratum(
    entries: np.ndarray,
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    block_items: np.ndarray,
    U: np.ndarray,
    V: np.ndarray,
    lr: float,
    reg: float,
    state: np.uint64,
    pop_neg: bool,
) -> tuple[int, int]:
    n = entries.size
    nb_items = block_items.size
    d = V.shape[1]
    f = d - 1
    skipped = 0
    correct = 0
    # each sample is drawn _AHEAD steps before its update (the same draws in the same
    # order, so the same result) and its three factor rows are prefetched meanwhile: they
    # are random accesses to memory, and waiting for them is most of an update's time
    ring_k = np.empty(_AHEAD, np.int64)
    ring_neg = np.empty(_AHEAD, np.int64)
    k = np.int64(0)
    neg = np.int64(0)
    for s in range(n + _AHEAD):
        slot = s % _AHEAD
        if s >= _AHEAD:  # sample s - _AHEAD, drawn in this slot
            k = ring_k[slot]
            neg = ring_neg[slot]
        if s < n:
            state, a = _next(state)
            state, b = _next(state)
            k_new = entries[np.int64(a) % n]
            if pop_neg:
                neg_new = np.int64(indices[entries[np.int64(b) % n]])
            else:
                neg_new = np.int64(block_items[np.int64(b) % nb_items])
            ring_k[slot] = k_new
            ring_neg[slot] = neg_new
            prefetch_row(U, rows[k_new])
            prefetch_row(V, indices[k_new])
            prefetch_row(V, neg_new)
        if s < _AHEAD:
            continue
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
        V[pos, f] += lr * (g - reg * V[pos, f])
        V[neg, f] += lr * (-g - reg * V[neg, f])
    return skipped, correct


@nb.njit(parallel=True, cache=True)
def bpr_epoch_strata(
    rows: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    grouped: np.ndarray,
    off: np.ndarray,
    items_by_block: np.ndarray,
    item_off: np.ndarray,
    U: np.ndarray,
    V: np.ndarray,
    lr: float,
    reg: float,
    seeds: np.ndarray,
    pop_neg: bool,
) -> tuple[int, int]:
    """One deterministic parallel BPR epoch over T x T strata (DSGD, Gemulla et al. 2011).

    Users and items are cut into T blocks. In sub-epoch s, stratum (t, (t + s) mod T) for
    every t runs at once: its positives are the entries of user block t with the item in
    item block b = (t + s) mod T (``grouped[off[t, b]:off[t, b + 1]]``), drawn uniformly
    with replacement as many times as there are, and its negatives are drawn from item
    block b (``items_by_block[item_off[b]:item_off[b + 1]]``, or by popularity: the item
    of a drawn entry of the stratum). Strata running together touch disjoint user and item
    rows, so there are no races: one set of seeds (T, T) gives one result, whatever the
    number of threads. Returns (skipped, correct) as :func:`bpr_epoch`.
    """
    n_blocks = off.shape[0]
    out = np.zeros((n_blocks, 2), dtype=np.int64)
    for s in range(n_blocks):
        for t in nb.prange(n_blocks):
            b = (t + s) % n_blocks
            lo, hi = off[t, b], off[t, b + 1]
            if hi == lo:
                continue
            sk, co = _run_stratum(
                grouped[lo:hi], rows, indptr, indices,
                items_by_block[item_off[b] : item_off[b + 1]],
                U, V, lr, reg, seeds[s, t], pop_neg,
            )  # fmt: skip
            out[t, 0] += sk
            out[t, 1] += co
    return int(out[:, 0].sum()), int(out[:, 1].sum())
