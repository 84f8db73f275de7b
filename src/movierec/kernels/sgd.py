"""SGD epochs for biased matrix factorization (SVD) and SVD++ (Surprise's update rules).

Plain arrays in, arrays updated in place. Factors are float32; every scalar learning rate
and regularization is passed as float32 so the inner loops stay in single precision.
Each epoch function returns the sum of squared training errors seen during the epoch
(each error measured just before its update), a cheap proxy of the training loss.

Serial kernels are deterministic. ``*_hogwild`` kernels split the work into contiguous
chunks processed by numba threads without locks (Hogwild: Niu et al., 2011); their result
depends on thread timing.
"""

import numba as nb
import numpy as np

from movierec.kernels.prefetch import prefetch_row

# how many ratings ahead the factor rows are prefetched
_AHEAD = 4


@nb.njit(inline="always")
def _rng_seed(seed: int) -> np.uint64:
    """A non-zero xorshift state from any integer seed (one splitmix64 step)."""
    z = np.uint64(seed) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return z if z != np.uint64(0) else np.uint64(1)


@nb.njit(inline="always")
def _rng_below(x: np.uint64, n: int) -> tuple[np.uint64, int]:
    """(next state, a draw uniform on 0..n-1): xorshift64* and a multiply-shift reduction.

    Far cheaper than np.random.randint in the shuffles; the bias is below n / 2^32.
    """
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    r = (x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(32)
    return x, np.int64((r * np.uint64(n)) >> np.uint64(32))


@nb.njit(cache=True)
def shuffle_ratings(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, seed: int) -> None:
    """Permute the (user, item, rating) triples in place uniformly at random (Fisher-Yates).

    Shuffling the data itself (rather than an index permutation) lets the epoch read the
    triples sequentially; only the factor rows are then accessed at random.
    """
    x = _rng_seed(seed)
    for k in range(users.shape[0] - 1, 0, -1):
        x, j = _rng_below(x, k + 1)
        users[k], users[j] = users[j], users[k]
        items[k], items[j] = items[j], items[k]
        ratings[k], ratings[j] = ratings[j], ratings[k]


@nb.njit(inline="always")
def _shuffle_chunk(order, lo, hi, indptr, items, ratings, x):  # type: ignore[no-untyped-def]
    # Fisher-Yates on order[lo:hi], then within the CSR row of each of those users
    for k in range(hi - 1, lo, -1):
        x, j = _rng_below(x, k - lo + 1)
        j += lo
        order[k], order[j] = order[j], order[k]
    for t in range(lo, hi):
        a = indptr[order[t]]
        for k in range(indptr[order[t] + 1] - 1, a, -1):
            x, j = _rng_below(x, k - a + 1)
            j += a
            items[k], items[j] = items[j], items[k]
            ratings[k], ratings[j] = ratings[j], ratings[k]
    return x


@nb.njit(cache=True)
def shuffle_within_rows(
    indptr: np.ndarray, cols: np.ndarray, vals: np.ndarray, order: np.ndarray, seed: int
) -> None:
    """Shuffle ``order`` (rows to visit) and the entries within each of those rows, in place."""
    _shuffle_chunk(order, 0, order.shape[0], indptr, cols, vals, _rng_seed(seed))


@nb.njit(cache=True, fastmath=True, inline="always")
def _svd_range(
    users, items, ratings, lo, hi, mu, bu, bi, pu, qi,
    lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi, biased,
):  # fmt: skip
    nf = pu.shape[1]
    sse = 0.0
    for k in range(lo, hi):
        if k + _AHEAD < hi:
            prefetch_row(pu, users[k + _AHEAD])
            prefetch_row(qi, items[k + _AHEAD])
        u = users[k]
        i = items[k]
        p = pu[u]
        q = qi[i]
        dot = np.float32(0.0)
        for f in range(nf):
            dot += p[f] * q[f]
        if biased:
            err = ratings[k] - (mu + bu[u] + bi[i] + dot)
            bu[u] += lr_bu * (err - reg_bu * bu[u])
            bi[i] += lr_bi * (err - reg_bi * bi[i])
        else:
            err = ratings[k] - dot
        sse += err * err
        for f in range(nf):
            pf = p[f]
            qf = q[f]
            p[f] = pf + lr_pu * (err * qf - reg_pu * pf)
            q[f] = qf + lr_qi * (err * pf - reg_qi * qf)
    return sse


@nb.njit(cache=True, fastmath=True)
def svd_epoch(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    mu: np.float32,
    bu: np.ndarray,
    bi: np.ndarray,
    pu: np.ndarray,
    qi: np.ndarray,
    lr_bu: np.float32,
    lr_bi: np.float32,
    lr_pu: np.float32,
    lr_qi: np.float32,
    reg_bu: np.float32,
    reg_bi: np.float32,
    reg_pu: np.float32,
    reg_qi: np.float32,
    biased: bool,
) -> float:
    """One SGD pass over the ratings in the given order (the permutation is the order of
    the arrays; shuffle them with :func:`shuffle_ratings`). For each rating (u, i, r)::

        e    = r - (mu + b_u + b_i + p_u . q_i)        (mu, b terms only when biased)
        b_u += lr_bu (e - reg_bu b_u);   b_i += lr_bi (e - reg_bi b_i)
        p_u += lr_pu (e q_i - reg_pu p_u);  q_i += lr_qi (e p_u - reg_qi q_i)

    with p_u and q_i both updated from their old values. Returns the sum of e^2.
    """
    return _svd_range(
        users, items, ratings, 0, users.shape[0], mu, bu, bi, pu, qi,
        lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi, biased,
    )  # fmt: skip


@nb.njit(cache=True, fastmath=True, parallel=True)
def svd_epoch_hogwild(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    mu: np.float32,
    bu: np.ndarray,
    bi: np.ndarray,
    pu: np.ndarray,
    qi: np.ndarray,
    lr_bu: np.float32,
    lr_bi: np.float32,
    lr_pu: np.float32,
    lr_qi: np.float32,
    reg_bu: np.float32,
    reg_bi: np.float32,
    reg_pu: np.float32,
    reg_qi: np.float32,
    biased: bool,
    n_chunks: int,
) -> float:
    """:func:`svd_epoch` with the ratings split in ``n_chunks`` contiguous chunks (one per
    thread) updated concurrently without locks (Hogwild)."""
    n = users.shape[0]
    sse = np.zeros(n_chunks)
    for c in nb.prange(n_chunks):
        lo = c * n // n_chunks
        hi = (c + 1) * n // n_chunks
        sse[c] = _svd_range(
            users, items, ratings, lo, hi, mu, bu, bi, pu, qi,
            lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi, biased,
        )  # fmt: skip
    return sse.sum()


@nb.njit(cache=True, fastmath=True, inline="always")
def _svd_users(
    order, lo, hi, indptr, items, ratings, mu, bu, bi, pu, qi,
    lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi, biased,
):  # fmt: skip
    # The update p' = dec_p p + lr_pu e q_i makes the next rating's dot product
    # q_n . p' = dec_p (q_n . p) + lr_pu e (q_n . q_i): both dots are taken in the same pass
    # that updates p and q_i, before e is needed, so only scalar work waits on e.
    # Row indices are read as unsigned, which spares numba's negative-index wraparound
    # on every access (ids are never negative): 4% of an epoch at ML-100K.
    nf = pu.shape[1]
    dec_p = np.float32(1.0) - lr_pu * reg_pu
    dec_q = np.float32(1.0) - lr_qi * reg_qi
    p = np.empty(nf, dtype=np.float32)
    sse = 0.0
    for t in range(lo, hi):
        u = np.uint32(order[t])
        a = indptr[u]
        b = indptr[u + 1]
        if t + 1 < hi:
            prefetch_row(pu, order[t + 1])
        if a == b:
            continue
        for k in range(a, min(a + _AHEAD, b)):
            prefetch_row(qi, items[k])
        for f in range(nf):
            p[f] = pu[u, f]
        b_u = bu[u]
        q = qi[items[a]]
        dot = np.float32(0.0)
        for f in range(nf):
            dot += p[f] * q[f]
        for k in range(a, b):
            if k + _AHEAD < b:
                prefetch_row(qi, items[k + _AHEAD])
            i = np.uint32(items[k])
            q = qi[i]
            if biased:
                err = ratings[k] - (mu + b_u + bi[i] + dot)
                b_u += lr_bu * (err - reg_bu * b_u)
                bi[i] += lr_bi * (err - reg_bi * bi[i])
            else:
                err = ratings[k] - dot
            sse += err * err
            le_p = lr_pu * err
            le_q = lr_qi * err
            if k + 1 < b:
                qn = qi[np.uint32(items[k + 1])]
                d_p = np.float32(0.0)
                d_q = np.float32(0.0)
                for f in range(nf):
                    pf = p[f]
                    qf = q[f]
                    d_p += qn[f] * pf
                    d_q += qn[f] * qf
                    p[f] = dec_p * pf + le_p * qf
                    q[f] = dec_q * qf + le_q * pf
                dot = dec_p * d_p + le_p * d_q
            else:
                for f in range(nf):
                    pf = p[f]
                    qf = q[f]
                    p[f] = dec_p * pf + le_p * qf
                    q[f] = dec_q * qf + le_q * pf
        for f in range(nf):
            pu[u, f] = p[f]
        if biased:
            bu[u] = b_u
    return sse


@nb.njit(cache=True, fastmath=True)
def svd_epoch_users(
    order: np.ndarray,
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    mu: np.float32,
    bu: np.ndarray,
    bi: np.ndarray,
    pu: np.ndarray,
    qi: np.ndarray,
    lr_bu: np.float32,
    lr_bi: np.float32,
    lr_pu: np.float32,
    lr_qi: np.float32,
    reg_bu: np.float32,
    reg_bi: np.float32,
    reg_pu: np.float32,
    reg_qi: np.float32,
    biased: bool,
) -> float:
    """One SGD pass grouped by user: users in ``order``, each user's CSR row in its stored
    order (shuffle both with :func:`shuffle_within_rows`); the update of every rating is
    that of :func:`svd_epoch`. A user's p_u stays in cache over her ratings. Returns the
    sum of e^2."""
    return _svd_users(
        order, 0, order.shape[0], indptr, items, ratings, mu, bu, bi, pu, qi,
        lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi, biased,
    )  # fmt: skip


@nb.njit(cache=True, fastmath=True, parallel=True)
def svd_epoch_users_hogwild(
    order: np.ndarray,
    bounds: np.ndarray,
    seeds: np.ndarray,
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    mu: np.float32,
    bu: np.ndarray,
    bi: np.ndarray,
    pu: np.ndarray,
    qi: np.ndarray,
    lr_bu: np.float32,
    lr_bi: np.float32,
    lr_pu: np.float32,
    lr_qi: np.float32,
    reg_bu: np.float32,
    reg_bi: np.float32,
    reg_pu: np.float32,
    reg_qi: np.float32,
    biased: bool,
) -> float:
    """One epoch of :func:`svd_epoch_users` by concurrent threads without locks (Hogwild).

    Chunk c owns the users ``order[bounds[c]:bounds[c+1]]`` (so p_u and b_u are private
    to one thread; item rows are shared); it first reshuffles its users and their ratings
    from its own random stream seeded by ``seeds[c]``. Returns the sum of e^2.
    """
    n_chunks = bounds.shape[0] - 1
    sse = np.zeros(n_chunks)
    for c in nb.prange(n_chunks):
        lo = bounds[c]
        hi = bounds[c + 1]
        _shuffle_chunk(order, lo, hi, indptr, items, ratings, _rng_seed(seeds[c]))
        sse[c] = _svd_users(
                order, lo, hi, indptr, items, ratings, mu, bu, bi, pu, qi,
                lr_bu, lr_bi, lr_pu, lr_qi, reg_bu, reg_bi, reg_pu, reg_qi, biased,
            )  # fmt: skip
    return sse.sum()


@nb.njit(cache=True, fastmath=True, inline="always")
def _svdpp_users(
    order, lo, hi, indptr, items, ratings, mu, bu, bi, pu, qi, yj,
    lr_bu, lr_bi, lr_pu, lr_qi, lr_yj, reg_bu, reg_bi, reg_pu, reg_qi, reg_yj,
):  # fmt: skip
    nf = pu.shape[1]
    z = np.empty(nf, dtype=np.float32)
    g = np.empty(nf, dtype=np.float32)
    keep_y = np.float32(1.0) - lr_yj * reg_yj
    sse = 0.0
    for t in range(lo, hi):
        u = order[t]
        a = indptr[u]
        b = indptr[u + 1]
        n = b - a
        if n == 0:
            continue
        s = np.float32(1.0 / np.sqrt(n))
        z[:] = 0.0
        g[:] = 0.0
        if t + 1 < hi:
            prefetch_row(pu, order[t + 1])
        for k in range(a, min(a + _AHEAD, b)):
            prefetch_row(yj, items[k])
        for k in range(a, b):
            if k + _AHEAD < b:
                prefetch_row(yj, items[k + _AHEAD])
            y = yj[items[k]]
            for f in range(nf):
                z[f] += y[f]
        for f in range(nf):
            z[f] *= s
        p = pu[u]
        for k in range(a, min(a + _AHEAD, b)):
            prefetch_row(qi, items[k])
        for k in range(a, b):
            if k + _AHEAD < b:
                prefetch_row(qi, items[k + _AHEAD])
            i = items[k]
            q = qi[i]
            dot = np.float32(0.0)
            for f in range(nf):
                dot += q[f] * (p[f] + z[f])
            err = ratings[k] - (mu + bu[u] + bi[i] + dot)
            sse += err * err
            bu[u] += lr_bu * (err - reg_bu * bu[u])
            bi[i] += lr_bi * (err - reg_bi * bi[i])
            for f in range(nf):
                pf = p[f]
                qf = q[f]
                g[f] += err * qf
                p[f] = pf + lr_pu * (err * qf - reg_pu * pf)
                q[f] = qf + lr_qi * (err * (pf + z[f]) - reg_qi * qf)
        # the n per-rating decays of y_j compound to keep_y^n; the gradients add up to g
        decay = keep_y**n
        for f in range(nf):
            g[f] *= lr_yj * s
        for k in range(a, b):
            y = yj[items[k]]
            for f in range(nf):
                y[f] = y[f] * decay + g[f]
    return sse


@nb.njit(cache=True, fastmath=True)
def svdpp_epoch(
    order: np.ndarray,
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    mu: np.float32,
    bu: np.ndarray,
    bi: np.ndarray,
    pu: np.ndarray,
    qi: np.ndarray,
    yj: np.ndarray,
    lr_bu: np.float32,
    lr_bi: np.float32,
    lr_pu: np.float32,
    lr_qi: np.float32,
    lr_yj: np.float32,
    reg_bu: np.float32,
    reg_bi: np.float32,
    reg_pu: np.float32,
    reg_qi: np.float32,
    reg_yj: np.float32,
) -> float:
    """One SVD++ pass, user by user in ``order``, each user's CSR row in its stored order.

    For user u with rated items N(u) (n = |N(u)|), the implicit vector
    z_u = n^-1/2 sum_{j in N(u)} y_j is computed once; then for each rating (u, i, r)::

        e    = r - (mu + b_u + b_i + q_i . (p_u + z_u))
        b_u += lr_bu (e - reg_bu b_u);   b_i += lr_bi (e - reg_bi b_i)
        p_u += lr_pu (e q_i - reg_pu p_u);  q_i += lr_qi (e (p_u + z_u) - reg_qi q_i)

    and the y_j gradient e n^-1/2 q_i is accumulated. After the user's ratings, every
    y_j (j in N(u)) becomes y_j (1 - lr_yj reg_yj)^n + lr_yj n^-1/2 sum_r e_r q_i: the
    sum of Surprise's n per-rating y updates applied at once, so an epoch costs O(nnz f)
    instead of O(sum_u n_u^2 f). Returns the sum of e^2.
    """
    return _svdpp_users(
        order, 0, order.shape[0], indptr, items, ratings, mu, bu, bi, pu, qi, yj,
        lr_bu, lr_bi, lr_pu, lr_qi, lr_yj, reg_bu, reg_bi, reg_pu, reg_qi, reg_yj,
    )  # fmt: skip


@nb.njit(cache=True, fastmath=True, parallel=True)
def svdpp_epoch_hogwild(
    order: np.ndarray,
    bounds: np.ndarray,
    seeds: np.ndarray,
    indptr: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    mu: np.float32,
    bu: np.ndarray,
    bi: np.ndarray,
    pu: np.ndarray,
    qi: np.ndarray,
    yj: np.ndarray,
    lr_bu: np.float32,
    lr_bi: np.float32,
    lr_pu: np.float32,
    lr_qi: np.float32,
    lr_yj: np.float32,
    reg_bu: np.float32,
    reg_bi: np.float32,
    reg_pu: np.float32,
    reg_qi: np.float32,
    reg_yj: np.float32,
) -> float:
    """One epoch of :func:`svdpp_epoch` by concurrent threads (Hogwild), chunked and
    reshuffled as in :func:`svd_epoch_users_hogwild`. Returns the sum of e^2."""
    n_chunks = bounds.shape[0] - 1
    sse = np.zeros(n_chunks)
    for c in nb.prange(n_chunks):
        lo = bounds[c]
        hi = bounds[c + 1]
        _shuffle_chunk(order, lo, hi, indptr, items, ratings, _rng_seed(seeds[c]))
        sse[c] = _svdpp_users(
                order, lo, hi, indptr, items, ratings, mu, bu, bi, pu, qi, yj,
                lr_bu, lr_bi, lr_pu, lr_qi, lr_yj, reg_bu, reg_bi, reg_pu, reg_qi, reg_yj,
            )  # fmt: skip
    return sse.sum()


@nb.njit(cache=True)
def implicit_sums(
    users: np.ndarray, indptr: np.ndarray, indices: np.ndarray, yj: np.ndarray
) -> np.ndarray:
    """z_u = |N(u)|^-1/2 sum_{j in N(u)} y_j for each user of ``users`` (rows of a CSR)."""
    nf = yj.shape[1]
    out = np.zeros((users.shape[0], nf), dtype=np.float32)
    for t in range(users.shape[0]):
        u = users[t]
        a = indptr[u]
        b = indptr[u + 1]
        if b > a:
            for k in range(a, b):
                y = yj[indices[k]]
                for f in range(nf):
                    out[t, f] += y[f]
            s = np.float32(1.0 / np.sqrt(b - a))
            for f in range(nf):
                out[t, f] *= s
    return out


@nb.njit(cache=True, parallel=True, fastmath=True)
def predict_pairs(
    rows: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    mu: np.float32,
    bu: np.ndarray,
    bi: np.ndarray,
    vec: np.ndarray,
    qi: np.ndarray,
) -> np.ndarray:
    """mu + bu[users[rows[k]]] + bi[items[k]] + vec[rows[k]] . qi[items[k]] for every k.

    ``vec`` holds one (effective) user vector per distinct user, ``rows`` indexes it.
    """
    n = items.shape[0]
    nf = qi.shape[1]
    out = np.empty(n, dtype=np.float64)
    for k in nb.prange(n):
        r = rows[k]
        i = items[k]
        dot = np.float32(0.0)
        for f in range(nf):
            dot += vec[r, f] * qi[i, f]
        out[k] = mu + bu[users[r]] + bi[i] + dot
    return out


@nb.njit(cache=True, fastmath=True)
def fold_in_user(
    items: np.ndarray,
    ratings: np.ndarray,
    mu: np.float32,
    bi: np.ndarray,
    qi: np.ndarray,
    z: np.ndarray,
    lr_b: np.float32,
    lr_p: np.float32,
    reg_b: np.float32,
    reg_p: np.float32,
    biased: bool,
    n_epochs: int,
    seed: int,
) -> tuple[float, np.ndarray]:
    """(b_u, p_u) of a new user by the training SGD on her ratings alone, items fixed.

    Starts from b_u = 0, p_u = 0 and runs ``n_epochs`` passes in a shuffled order of
    e = r - (mu + b_u + b_i + q_i . (p_u + z));  b_u += lr_b (e - reg_b b_u);
    p_u += lr_p (e q_i - reg_p p_u)  (``z`` is SVD++'s implicit vector, zeros for SVD).
    """
    x = _rng_seed(seed)
    nf = qi.shape[1]
    n = items.shape[0]
    p = np.zeros(nf, dtype=np.float32)
    b = np.float32(0.0)
    idx = np.arange(n)
    for _ in range(n_epochs):
        for k in range(n - 1, 0, -1):
            x, j = _rng_below(x, k + 1)
            idx[k], idx[j] = idx[j], idx[k]
        for t in range(n):
            k = idx[t]
            q = qi[items[k]]
            dot = np.float32(0.0)
            for f in range(nf):
                dot += q[f] * (p[f] + z[f])
            if biased:
                err = ratings[k] - (mu + b + bi[items[k]] + dot)
                b += lr_b * (err - reg_b * b)
            else:
                err = ratings[k] - dot
            for f in range(nf):
                p[f] += lr_p * (err * q[f] - reg_p * p[f])
    return b, p
