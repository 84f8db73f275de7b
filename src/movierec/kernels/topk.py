"""The one top-K kernel shared by every model (recommend, similar items, evaluation).

:func:`topk_rows` ranks a dense score matrix. :func:`topk_dot` ranks ``A @ V.T`` without
ever holding it: each thread scores a tile of users x items (one BLAS call) that stays in
cache and merges it into the users' heaps, visiting items by decreasing norm and stopping
for a user once no remaining item can enter her list (Cauchy-Schwarz). Both give the same
lists for the same scores.
"""

import numba as nb
import numpy as np

# Loaded here, before movierec.models.base.blas_limit's threadpool controller is created,
# so that the BLAS numba's np.dot calls (scipy's) is limited with numpy's.
import scipy.linalg.cython_blas  # noqa: F401

# columns checked at once against the heap's worst entry (a fixed count vectorizes)
_BLOCK = 64
# topk_rows' work units (each with one row buffer), shared out among the threads
_CHUNKS = 64
# topk_dot's tile: users x items scored by one BLAS call (2 MiB of float32 at most)
_TILE_ROWS = 256
_TILE_COLS = 2048
# |computed dot - exact dot| <= f * 2^-24 * |a| |v|: the bound's margin covers f <= 1600
_BOUND_SLACK = 1e-4


@nb.njit(inline="always")
def _sift_down(hv: np.ndarray, hi: np.ndarray, pos: int, n: int) -> None:
    # min-heap on (value, -index): the root is the worst kept entry
    while True:
        c = 2 * pos + 1
        if c >= n:
            return
        if c + 1 < n and (hv[c + 1] < hv[c] or (hv[c + 1] == hv[c] and hi[c + 1] > hi[c])):
            c += 1
        if hv[c] < hv[pos] or (hv[c] == hv[pos] and hi[c] > hi[pos]):
            hv[c], hv[pos] = hv[pos], hv[c]
            hi[c], hi[pos] = hi[pos], hi[c]
            pos = c
        else:
            return


@nb.njit(inline="always")
def _heap_push(hv: np.ndarray, hi: np.ndarray, size: int, v: float, j: int) -> None:
    """Insert (v, j) into the min-heap of ``size`` entries (ties: larger index is worse)."""
    pos = size
    hv[pos] = v
    hi[pos] = j
    while pos > 0:
        par = (pos - 1) // 2
        if hv[pos] < hv[par] or (hv[pos] == hv[par] and hi[pos] > hi[par]):
            hv[pos], hv[par] = hv[par], hv[pos]
            hi[pos], hi[par] = hi[par], hi[pos]
            pos = par
        else:
            return


@nb.njit(inline="always")
def _scan(
    row: np.ndarray, cols: np.ndarray, hv: np.ndarray, hi: np.ndarray, size: int, k: int, asc: bool
) -> int:
    """Merge ``row`` (entry t is column ``cols[t]``) into the heap of ``size`` <= k entries;
    -inf and NaN never enter. ``asc``: ``cols`` increase, so an equal score never wins.
    Returns the new size."""
    m = row.shape[0]
    j = 0
    while size < k and j < m:
        v = row[j]
        if v > -np.inf:
            _heap_push(hv, hi, size, v, cols[j])
            size += 1
        j += 1
    while j < m:
        end = min(j + _BLOCK, m)
        blk = row[j:end]
        if end - j == _BLOCK:
            # a block none of whose scores can enter the heap is skipped (NaN never does);
            # indexing the slice from 0 keeps the check one vectorized pass
            thr = hv[0]
            hit = 0
            if asc:
                for t in range(_BLOCK):
                    hit += blk[t] > thr
            else:
                for t in range(_BLOCK):
                    hit += blk[t] >= thr
            if hit == 0:
                j = end
                continue
        for t in range(end - j):
            v = blk[t]
            if v > hv[0] or (v == hv[0] and cols[j + t] < hi[0]):
                hv[0] = v
                hi[0] = cols[j + t]
                _sift_down(hv, hi, 0, size)
        j = end
    return size


@nb.njit(inline="always")
def _pop_all(hv: np.ndarray, hi: np.ndarray, size: int, out_v: np.ndarray, out_i: np.ndarray):
    # pop the heap from worst to best
    for t in range(size - 1, -1, -1):
        out_v[t] = hv[0]
        out_i[t] = hi[0]
        size -= 1
        hv[0] = hv[size]
        hi[0] = hi[size]
        _sift_down(hv, hi, 0, size)


@nb.njit(parallel=True, cache=True)
def topk_rows(
    scores: np.ndarray,
    k: int,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` columns of every row of ``scores``, best first, skipping excluded columns.

    Row r skips columns ``excl_indices[excl_indptr[r]:excl_indptr[r+1]]`` and any -inf or NaN
    score. Ties go to the lower column index. Rows with fewer than k candidates are padded
    with index -1 and score -inf.
    """
    n, m = scores.shape
    k = min(k, m)
    out_i = np.full((n, k), -1, dtype=np.int32)
    out_v = np.full((n, k), -np.inf, dtype=np.float32)
    cols = np.arange(m)
    n_chunks = min(n, _CHUNKS)
    for c in nb.prange(n_chunks):
        # one row buffer per chunk: rows with exclusions are copied and masked with -inf
        buf = np.empty(m, dtype=np.float32)
        hv = np.empty(k, dtype=np.float32)
        hi = np.empty(k, dtype=np.int32)
        for r in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            row = scores[r]
            if excl_indptr[r + 1] > excl_indptr[r]:
                buf[:] = row
                for p in range(excl_indptr[r], excl_indptr[r + 1]):
                    buf[excl_indices[p]] = -np.inf
                row = buf
            size = _scan(row, cols, hv, hi, 0, k, True)
            _pop_all(hv, hi, size, out_v[r], out_i[r])
    return out_i, out_v


@nb.njit(inline="always")
def _touch(hit: np.ndarray, touched: np.ndarray, nt: int, j: int) -> int:
    # record column j among a row's touched columns (once); returns their count
    if not hit[j]:
        hit[j] = True
        touched[nt] = j
        nt += 1
    return nt


@nb.njit(parallel=True, cache=True)
def topk_sparse_product(
    x_indptr: np.ndarray,
    x_indices: np.ndarray,
    x_data: np.ndarray,
    rows: np.ndarray,
    s_indptr: np.ndarray,
    s_indices: np.ndarray,
    s_data: np.ndarray,
    k: int,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
    excl_rows: np.ndarray,
    base: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_rows` of the scores ``X[rows] @ S + base`` for CSR ``X``, a square CSR
    ``S`` and a float32 row ``base`` added to every row (empty: none), the neighbour models'
    scores (the product added up in the order of
    :func:`~movierec.kernels.sparse_dense.rows_times_csr`), without the dense block.

    Each row's product is accumulated in a buffer and only the items it touched are ranked
    (row r skips the columns of row ``excl_rows[r]`` of the exclusion CSR). An untouched
    item scores its ``base`` (0 without): where fewer than k touched items score above the
    largest ``base``, the whole row is ranked, so the lists are those of :func:`topk_rows`
    on the dense scores.
    """
    n = rows.shape[0]
    m = s_indptr.shape[0] - 1
    k = min(k, m)
    out_i = np.full((n, k), -1, dtype=np.int32)
    out_v = np.full((n, k), -np.inf, dtype=np.float32)
    cols = np.arange(m).astype(np.int32)
    has_base = base.size > 0
    top = base.max() if has_base else np.float32(0.0)
    n_chunks = min(n, _CHUNKS)
    for c in nb.prange(n_chunks):
        full = np.empty(m if has_base else 0, dtype=np.float32)
        buf = np.zeros(m, dtype=np.float32)
        hit = np.zeros(m, dtype=np.bool_)
        touched = np.empty(m, dtype=np.int32)
        cand = np.empty(m, dtype=np.float32)
        hv = np.empty(k, dtype=np.float32)
        hi = np.empty(k, dtype=np.int32)
        for r in range(c * n // n_chunks, (c + 1) * n // n_chunks):
            nt = 0
            u = rows[r]
            for q in range(x_indptr[u], x_indptr[u + 1]):
                w = np.float32(x_data[q])
                i = x_indices[q]
                for p in range(s_indptr[i], s_indptr[i + 1]):
                    j = s_indices[p]
                    nt = _touch(hit, touched, nt, j)
                    buf[j] += w * np.float32(s_data[p])
            e = excl_rows[r]
            for p in range(excl_indptr[e], excl_indptr[e + 1]):
                j = excl_indices[p]
                nt = _touch(hit, touched, nt, j)
                buf[j] = -np.inf
            for t in range(nt):
                cand[t] = buf[touched[t]] + base[touched[t]] if has_base else buf[touched[t]]
            size = _scan(cand[:nt], touched[:nt], hv, hi, 0, k, False)
            if size < k or not (hv[0] > top):
                if has_base:
                    for j in range(m):
                        full[j] = buf[j] + base[j]
                    size = _scan(full, cols, hv, hi, 0, k, True)
                else:
                    size = _scan(buf, cols, hv, hi, 0, k, True)
            _pop_all(hv, hi, size, out_v[r], out_i[r])
            for t in range(nt):
                buf[touched[t]] = 0.0
                hit[touched[t]] = False
    return out_i, out_v


@nb.njit(parallel=True, cache=True)
def topk_fused_ranks(
    lists: np.ndarray,
    weights: np.ndarray,
    k_rrf: float,
    n_items: int,
    k: int,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
    excl_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`topk_rows` of the reciprocal-rank fusion of ranked lists, without dense rows.

    ``lists`` (models x rows x c, int32, -1 padded) holds each model's ranking of each row;
    the item at position p of model m's list gets ``weights[m] / (k_rrf + p + 1)`` (float32,
    added up model by model, as :class:`~movierec.models.hybrid.RRFHybrid` does), items in
    no list 0. Row r skips the columns of row ``excl_rows[r]`` of the exclusion CSR. Returns
    (items, scores, exact): ``exact[r]`` is False where fewer than k listed items score
    above 0, so that items in no list (0) could enter the top k: rank those rows from dense
    scores.
    """
    n_models, n, c = lists.shape
    k = min(k, n_items)
    out_i = np.full((n, k), -1, dtype=np.int32)
    out_v = np.full((n, k), -np.inf, dtype=np.float32)
    exact = np.ones(n, dtype=np.bool_)
    kf = np.float32(k_rrf)
    n_chunks = min(n, _CHUNKS)
    for ch in nb.prange(n_chunks):
        buf = np.zeros(n_items, dtype=np.float32)
        hit = np.zeros(n_items, dtype=np.bool_)
        touched = np.empty(n_models * c, dtype=np.int32)
        cand = np.empty(n_models * c, dtype=np.float32)
        hv = np.empty(k, dtype=np.float32)
        hi = np.empty(k, dtype=np.int32)
        for r in range(ch * n // n_chunks, (ch + 1) * n // n_chunks):
            nt = 0
            for mi in range(n_models):
                w = np.float32(weights[mi])
                for p in range(c):
                    j = lists[mi, r, p]
                    if j < 0:
                        break
                    nt = _touch(hit, touched, nt, j)
                    buf[j] += w / (kf + np.float32(p + 1))
            e = excl_rows[r]
            for p in range(excl_indptr[e], excl_indptr[e + 1]):
                if hit[excl_indices[p]]:
                    buf[excl_indices[p]] = -np.inf
            for t in range(nt):
                cand[t] = buf[touched[t]]
            size = _scan(cand[:nt], touched[:nt], hv, hi, 0, k, False)
            exact[r] = size == k and hv[0] > 0
            _pop_all(hv, hi, size, out_v[r], out_i[r])
            for t in range(nt):
                buf[touched[t]] = 0.0
                hit[touched[t]] = False
    return out_i, out_v, exact


def topk_dot(
    A: np.ndarray,
    V: np.ndarray,
    k: int,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
    excl_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_rows` of the scores ``A @ V.T`` (float32), computed tile by tile.

    From ``_TILE_ROWS`` rows on, items are visited by decreasing norm (:func:`norm_order`)
    and a row stops early (see :func:`topk_dot_sorted`); fewer rows do not pay for the
    sort. A caller ranking many small batches against the same items sorts them once and
    calls :func:`topk_dot_sorted` itself.

    Parameters
    ----------
    A : float32 (n, f), C-contiguous: one vector per row (user).
    V : float32 (m, f), C-contiguous: one vector per column (item).
    k : int
    excl_indptr, excl_indices, excl_rows : row r of ``A`` skips the columns of row
        ``excl_rows[r]`` of the CSR (``excl_indptr``, ``excl_indices``), e.g. a model's seen
        items and the users of ``A``.
    """
    if A.shape[0] >= _TILE_ROWS:
        Vs, order, rest = norm_order(V)
    else:
        Vs, order, rest = V, np.arange(V.shape[0]), np.empty(0)
    return topk_dot_sorted(A, Vs, order, rest, k, excl_indptr, excl_indices, excl_rows)


@nb.njit(nogil=True, cache=True)
def norm_order(V: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the rows of ``V`` by decreasing norm, their order, the norms in that order) for
    :func:`topk_dot_sorted`; a NaN row counts as infinitely long (never bounded)."""
    m, f = V.shape
    vnorm = np.empty(m)
    for j in range(m):
        t = 0.0
        for a in range(f):
            t += np.float64(V[j, a]) ** 2
        vnorm[j] = np.sqrt(t) if t == t else np.inf
    order = np.argsort(-vnorm)
    Vs = np.empty_like(V)
    for q in range(m):
        Vs[q] = V[order[q]]
    return Vs, order, vnorm[order]


@nb.njit(parallel=True, nogil=True, cache=True)
def topk_dot_sorted(
    A: np.ndarray,
    Vs: np.ndarray,
    order: np.ndarray,
    rest: np.ndarray,
    k: int,
    excl_indptr: np.ndarray,
    excl_indices: np.ndarray,
    excl_rows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_dot` over items already in visiting order: ``Vs[q]`` is item
    ``order[q]``. With ``rest`` (the items' norms in that order, decreasing, as
    :func:`norm_order` gives) a row stops once its list is full and ``|a| rest[j]`` over
    the items left (with a margin for rounding) is below its k-th score, so that only the
    items that can still enter are scored; with an empty ``rest`` every item is scored.
    """
    n, f = A.shape
    m = Vs.shape[0]
    k = min(k, m)
    out_i = np.full((n, k), -1, dtype=np.int32)
    out_v = np.full((n, k), -np.inf, dtype=np.float32)
    prune = rest.size > 0
    anorm = np.empty(n if prune else 0)
    for r in range(anorm.size):
        t = 0.0
        for a in range(f):
            t += np.float64(A[r, a]) ** 2
        anorm[r] = np.sqrt(t)
    pos = np.empty(m, dtype=np.int64)  # item -> its position in the visiting order
    pos[order] = np.arange(m)
    n_blk = (n + _TILE_ROWS - 1) // _TILE_ROWS
    for b in nb.prange(n_blk):
        r0 = b * _TILE_ROWS
        nr = min(_TILE_ROWS, n - r0)
        hv = np.empty((nr, k), dtype=np.float32)
        hi = np.empty((nr, k), dtype=np.int32)
        size = np.zeros(nr, dtype=np.int64)
        act = np.arange(nr)  # rows still scanning, their vectors in Aa[:n_act]
        n_act = nr
        Aa = A[r0 : r0 + nr].copy()
        buf = np.empty(nr * _TILE_COLS, dtype=np.float32)
        for j0 in range(0, m, _TILE_COLS):
            if prune and j0 > 0:
                lim = rest[j0] * (1.0 + _BOUND_SLACK)
                w = 0
                for q in range(n_act):
                    r = act[q]
                    if size[r] < k or not (anorm[r0 + r] * lim < hv[r, 0]):
                        act[w] = r
                        w += 1
                if w == 0:
                    break
                if w < n_act:
                    for q in range(w):
                        Aa[q] = A[r0 + act[q]]
                    n_act = w
            j1 = min(j0 + _TILE_COLS, m)
            width = j1 - j0
            s = buf[: n_act * width].reshape(n_act, width)
            np.dot(Aa[:n_act], Vs[j0:j1].T, s)
            for q in range(n_act):
                r = act[q]
                row = s[q]
                e = excl_rows[r0 + r]
                for p in range(excl_indptr[e], excl_indptr[e + 1]):
                    c = pos[excl_indices[p]] - j0
                    if c >= 0 and c < width:
                        row[c] = -np.inf
                size[r] = _scan(row, order[j0:j1], hv[r], hi[r], size[r], k, not prune)
        for r in range(nr):
            _pop_all(hv[r], hi[r], size[r], out_v[r0 + r], out_i[r0 + r])
    return out_i, out_v


@nb.njit(cache=True)
def because_cosine(
    V: np.ndarray,
    recs: np.ndarray,
    recs_ptr: np.ndarray,
    liked: np.ndarray,
    liked_ptr: np.ndarray,
    n: int,
) -> np.ndarray:
    """For each recommended item, the ``n`` liked items of its user most similar to it by
    the cosine of the rows of ``V``: positive similarities only, most similar first (ties:
    the earlier liked item), -1 padding. User b's recommendations are
    ``recs[recs_ptr[b]:recs_ptr[b+1]]`` and her liked items
    ``liked[liked_ptr[b]:liked_ptr[b+1]]``; a recommendation < 0 gets none. One call for a
    batch of users (it holds the GIL: no hand-back per user)."""
    out = np.full((recs.size, n), -1, dtype=np.int64)
    bv = np.empty(n)
    for b in range(recs_ptr.size - 1):
        l0, l1 = liked_ptr[b], liked_ptr[b + 1]
        ln = np.empty(l1 - l0)
        for q in range(l0, l1):
            ln[q - l0] = _norm_or_one(V[liked[q]])
        for p in range(recs_ptr[b], recs_ptr[b + 1]):
            j = recs[p]
            if j < 0 or n == 0:
                continue
            rn = _norm_or_one(V[j])
            size = 0
            for q in range(l0, l1):
                t = 0.0
                for a in range(V.shape[1]):
                    t += np.float64(V[j, a]) * np.float64(V[liked[q], a])
                s = t / (rn * ln[q - l0])
                if not (0.0 < s < np.inf) or (size == n and s <= bv[n - 1]):
                    continue
                if size < n:
                    size += 1
                pos = size - 1
                while pos > 0 and bv[pos - 1] < s:
                    bv[pos] = bv[pos - 1]
                    out[p, pos] = out[p, pos - 1]
                    pos -= 1
                bv[pos] = s
                out[p, pos] = liked[q]
    return out


@nb.njit(inline="always")
def _norm_or_one(x: np.ndarray) -> float:
    t = 0.0
    for a in range(x.size):
        t += np.float64(x[a]) ** 2
    return np.sqrt(t) if t > 0 else 1.0
