"""Numba kernels for the MovieLens-shaped synthetic data generator.

Plain arrays in and out, no classes, no I/O. Every user draws from its own
counter-based random stream (splitmix64 keyed by a seed and the user's index), so
the output does not depend on the number of threads or on how users are chunked.

Items here are the rated movies in the order they arrived in the catalogue
(index 0 is the oldest); callers map them back to movieIds.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_INV53 = 1.0 / 9007199254740992.0
_TWO32 = 4294967296.0


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def _stream(seed, index):
    """Initial state of the random stream of one user."""
    return _mix(seed ^ _mix(np.uint64(index) * _GOLDEN + _GOLDEN))


@njit(cache=True)
def _uniform(state):
    """Advance ``state``; return ``(state, u)`` with u uniform in [0, 1)."""
    state = state + _GOLDEN
    return state, (_mix(state) >> _S11) * _INV53


@njit(cache=True)
def _normal(state):
    """Advance ``state``; return ``(state, z)`` with z standard normal (Box-Muller)."""
    state, u1 = _uniform(state)
    state, u2 = _uniform(state)
    return state, np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)


@njit(cache=True)
def _bisect_right(cdf, lo, hi, x):
    """First index lo <= j < hi with cdf[j] > x (cdf non-decreasing); hi - 1 if none."""
    hi_ = hi - 1
    while lo < hi_:
        mid = (lo + hi_) >> 1
        if cdf[mid] > x:
            hi_ = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _dot(a, ia, b, ib):
    s = 0.0
    for f in range(a.shape[1]):
        s += a[ia, f] * b[ib, f]
    return s


@njit(cache=True)
def alias_build(weights, bounds):
    """Walker alias tables of the prefixes ``weights[:bounds[b]]``, one per bound.

    Parameters
    ----------
    weights : int64[n]
    bounds : int64[n_bounds]
        Increasing prefix lengths (>= 1, <= n).

    Returns
    -------
    ptr : int64[n_bounds + 1]
        Table ``b`` occupies ``table[ptr[b]:ptr[b + 1]]``.
    table : uint64[ptr[-1]]
        Per slot: keep-probability in the high 32 bits, alias index in the low 32.
    """
    nb = bounds.shape[0]
    ptr = np.zeros(nb + 1, np.int64)
    for b in range(nb):
        ptr[b + 1] = ptr[b] + bounds[b]
    table = np.empty(ptr[nb], np.uint64)
    n_max = bounds[nb - 1]
    scaled = np.empty(n_max, np.float64)
    small = np.empty(n_max, np.int64)
    large = np.empty(n_max, np.int64)
    for b in range(nb):
        size = bounds[b]
        off = ptr[b]
        total = 0.0
        for i in range(size):
            total += weights[i]
        ns = 0
        nl = 0
        for i in range(size):
            scaled[i] = weights[i] * size / total
            if scaled[i] < 1.0:
                small[ns] = i
                ns += 1
            else:
                large[nl] = i
                nl += 1
        while ns > 0 and nl > 0:
            ns -= 1
            lo = small[ns]
            g = large[nl - 1]
            keep = min(np.uint64(scaled[lo] * _TWO32), _LOW32)
            table[off + lo] = (keep << _S32) | np.uint64(g)
            scaled[g] = (scaled[g] + scaled[lo]) - 1.0
            if scaled[g] < 1.0:
                nl -= 1
                small[ns] = g
                ns += 1
        for q in range(nl):
            table[off + large[q]] = (_LOW32 << _S32) | np.uint64(large[q])
        for q in range(ns):
            table[off + small[q]] = (_LOW32 << _S32) | np.uint64(small[q])
    return ptr, table


@njit(cache=True)
def fenwick_build(weights):
    """1-based Fenwick (binary indexed) tree of integer ``weights``.

    Parameters
    ----------
    weights : int64[n]

    Returns
    -------
    int64[n + 1]
    """
    n = weights.shape[0]
    tree = np.zeros(n + 1, np.int64)
    for i in range(n):
        tree[i + 1] = weights[i]
    _fen_heapify(tree, n)
    return tree


@njit(cache=True)
def _fen_heapify(tree, n):
    """Turn ``tree[1:n + 1]`` (plain weights) into a Fenwick tree in place."""
    for i in range(1, n + 1):
        j = i + (i & -i)
        if j <= n:
            tree[j] += tree[i]


@njit(cache=True)
def _fen_add(tree, n, i, delta):
    i += 1
    while i <= n:
        tree[i] += delta
        i += i & -i


@njit(cache=True)
def _fen_prefix(tree, i):
    """Sum of the first ``i`` weights."""
    s = 0
    while i > 0:
        s += tree[i]
        i -= i & -i
    return s


@njit(cache=True)
def _fen_find(tree, n, r):
    """0-based index j with prefix(j) <= r < prefix(j + 1), for 0 <= r < prefix(n)."""
    step = 1
    while step * 2 <= n:
        step *= 2
    pos = 0
    while step > 0:
        nxt = pos + step
        if nxt <= n and tree[nxt] <= r:
            pos = nxt
            r -= tree[nxt]
        step >>= 1
    return pos


@njit(cache=True)
def _keep_prob(user_f, row, item_f, m, sel_beta, sel_cap):
    """Taste filter: exp(beta * (min(z, cap) - cap)) with z = dot(P_u, Q_m)."""
    if sel_beta <= 0.0:
        return 1.0
    z = _dot(user_f, row, item_f, m)
    if z >= sel_cap:
        return 1.0
    return np.exp(sel_beta * (z - sel_cap))


@njit(parallel=True, cache=True)
def sample_items(
    ptr,
    elig,
    seed_ptr,
    seed_items,
    weights,
    cum,
    bounds,
    alias_ptr,
    alias_table,
    tree,
    user_f,
    user_rows,
    item_f,
    sel_beta,
    sel_cap,
    seed,
    n_chunks,
):
    """Draw each user's set of distinct items.

    User ``u`` gets ``ptr[u + 1] - ptr[u]`` distinct items: first its coverage items
    ``seed_items[seed_ptr[u]:seed_ptr[u + 1]]``, then items drawn without replacement
    with probability proportional to ``weights[i] * keep(u, i)`` among the first
    ``elig[u]`` items (the catalogue available by the user's last session), where
    ``keep = exp(sel_beta * (min(z, sel_cap) - sel_cap))`` and ``z`` is the taste score
    ``dot(user_f[user_rows[u]], item_f[i])``.

    Draws propose from the popularity weights (alias table of the largest bound
    ``<= elig[u]``, or a binary search in ``cum`` for the few items between that bound
    and ``elig[u]``), reject repeats and apply ``keep`` as an acceptance test. Once
    repeats get frequent (heavy users who exhausted the head of the distribution)
    the rest is drawn exactly from a Fenwick tree: for users with much left to draw a
    private tree of ``weights * keep`` over the eligible items without the taken ones
    (no rejections at all); otherwise a copy of ``tree`` with the taken items removed
    (restored afterwards; integer weights, so the restore is exact).

    Parameters
    ----------
    ptr : int64[n_users + 1]
        Offsets of each user's items in the output.
    elig : int64[n_users]
        Number of items (a prefix) each user may rate; at least ``bounds[0]``.
    seed_ptr, seed_items : int64[n_users + 1], int32[n_seeds]
        Items a user must rate (CSR layout); each below the user's ``elig``.
    weights, cum : int64[n_items]
        Integer popularity weights and their cumulative sums (total below 2**53).
    bounds, alias_ptr, alias_table : arrays
        Increasing prefix lengths and ``alias_build(weights, bounds)``.
    tree : int64[n_items + 1]
        ``fenwick_build(weights)``; not modified.
    user_f, item_f : float32[:, rank]
        Planted taste factors; ``user_rows[u]`` is the row of user ``u``.
    user_rows : int64[n_users]
        Row of ``user_f`` and random-stream index of each user.
    sel_beta, sel_cap : float
        Strength of taste in the choice of what to rate.
    seed : uint64
        Stream key.
    n_chunks : int
        Number of user chunks processed in parallel (does not change the output).

    Returns
    -------
    items : int32[ptr[-1]]
        Item of each rating, grouped by user, in draw order.
    """
    n_users = ptr.shape[0] - 1
    n_items = weights.shape[0]
    n_bounds = bounds.shape[0]
    out = np.empty(ptr[n_users], np.int32)
    chunk = (n_users + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        mark = np.zeros(n_items, np.bool_)
        shared = np.empty(0, np.int64)
        own = np.empty(0, np.int64)
        own_w = np.empty(0, np.int64)
        for u in range(c * chunk, min(n_users, (c + 1) * chunk)):
            row = user_rows[u]
            st = _stream(seed, row)
            off = ptr[u]
            n = ptr[u + 1] - off
            cnt = 0
            for s in range(seed_ptr[u], seed_ptr[u + 1]):
                m = seed_items[s]
                mark[m] = True
                out[off + cnt] = m
                cnt += 1
            e = elig[u]
            tot = cum[e - 1]
            b = _bisect_right(bounds, 0, n_bounds, e)
            if bounds[b] > e:
                b -= 1
            size = bounds[b]
            tot_b = cum[size - 1]
            base = alias_ptr[b]
            # leave for the tree once repeats (not taste rejections) get frequent
            budget = (n - cnt) // 2 + 16
            repeats = 0
            while cnt < n and repeats < budget:
                st, r = _uniform(st)
                x = r * tot
                if x >= tot_b:
                    j = _bisect_right(cum, size, e, int(x))
                else:
                    y = x / tot_b * size
                    j = min(int(y), size - 1)
                    slot = alias_table[base + j]
                    if (y - j) * _TWO32 >= (slot >> _S32):
                        j = np.int64(slot & _LOW32)
                if mark[j]:
                    repeats += 1
                    continue
                p = _keep_prob(user_f, row, item_f, j, sel_beta, sel_cap)
                if p < 1.0:
                    st, r = _uniform(st)
                    if r >= p:
                        continue
                mark[j] = True
                out[off + cnt] = j
                cnt += 1
            if cnt < n and e <= 40 * (n - cnt):
                # private tree of weights * keep: no rejections left
                if own.shape[0] == 0:
                    own = np.empty(n_items + 1, np.int64)
                    own_w = np.empty(n_items, np.int64)
                own[0] = 0
                left = 0
                for j in range(e):
                    v = 0
                    if not mark[j]:
                        p = _keep_prob(user_f, row, item_f, j, sel_beta, sel_cap)
                        v = max(int(weights[j] * p), 1)
                    own_w[j] = v
                    own[j + 1] = v
                    left += v
                _fen_heapify(own, e)
                while cnt < n:
                    st, r = _uniform(st)
                    j = _fen_find(own, e, int(r * left))
                    _fen_add(own, e, j, -own_w[j])
                    left -= own_w[j]
                    mark[j] = True
                    out[off + cnt] = j
                    cnt += 1
            elif cnt < n:
                # copy of the popularity tree without the taken items, taste by rejection
                if shared.shape[0] == 0:
                    shared = tree.copy()
                left = _fen_prefix(shared, e)
                for i in range(off, off + cnt):
                    j = out[i]
                    _fen_add(shared, n_items, j, -weights[j])
                    left -= weights[j]
                while cnt < n:
                    st, r = _uniform(st)
                    j = _fen_find(shared, n_items, int(r * left))
                    p = _keep_prob(user_f, row, item_f, j, sel_beta, sel_cap)
                    if p < 1.0:
                        st, r = _uniform(st)
                        if r >= p:
                            continue
                    _fen_add(shared, n_items, j, -weights[j])
                    left -= weights[j]
                    mark[j] = True
                    out[off + cnt] = j
                    cnt += 1
                for i in range(off, off + n):
                    j = out[i]
                    _fen_add(shared, n_items, j, weights[j])
            for i in range(off, off + n):
                mark[out[i]] = False
    return out


@njit(parallel=True, cache=True)
def time_and_rate(
    items,
    ptr,
    sess_start,
    sess_span,
    n_sess,
    sec_per_rating,
    first_bias,
    item_time,
    t_base,
    t_max,
    user_f,
    item_f,
    user_b,
    item_b,
    mu,
    taste_sd,
    noise_sd,
    seed,
    by_time,
    n_chunks,
):
    """Give every rating a timestamp and a latent (continuous) rating; sort each user.

    A user's history is a set of sessions: the first starts at ``sess_start[u]``, the
    last at ``sess_start[u] + sess_span[u]``, the others uniformly in between. A rating
    of item ``m`` lands in a session that starts no earlier than ``item_time[m]`` (the
    first such session with probability ``first_bias``, a uniform later one otherwise)
    at a uniform offset within the session's length. The latent rating is ``mu +
    user_b[u] + item_b[m] + taste_sd * dot(P_u, Q_m) + noise_sd * N(0, 1)``.

    Parameters
    ----------
    items : int32[n_ratings]
        Item per rating, grouped by user; reordered in place.
    ptr : int64[n_users + 1]
        Offsets of each user's ratings.
    sess_start, sess_span : float64[n_users]
        First session start (unix seconds) and distance to the last session start.
    n_sess : int64[n_users]
        Number of sessions (>= 1; 1 means ``sess_span`` is ignored).
    sec_per_rating : float
        Typical seconds spent per rating within a session.
    first_bias : float
        Probability that a rating falls in the earliest allowed session.
    item_time : float64[n_items]
        Time each item arrived in the catalogue.
    t_base, t_max : int
        All timestamps lie in ``[t_base, t_max]``, and ``t_max - t_base < 2**32``.
    user_f, item_f, user_b, item_b : float32 arrays
        Planted taste model.
    mu, taste_sd, noise_sd : float
        Global mean, scale of the taste term and of the noise.
    seed : uint64
        Stream key.
    by_time : bool
        Sort each user's ratings by (timestamp, item) if true, else by item.
    n_chunks : int
        Number of user chunks processed in parallel.

    Returns
    -------
    ts : int64[n_ratings]
        Unix timestamps.
    latent : float32[n_ratings]
        Continuous ratings before quantisation.
    """
    n_users = ptr.shape[0] - 1
    n_items = item_time.shape[0]
    n_tot = items.shape[0]
    ts = np.empty(n_tot, np.int64)
    latent = np.empty(n_tot, np.float32)
    chunk = (n_users + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        for u in range(c * chunk, min(n_users, (c + 1) * chunk)):
            st = _stream(seed, u)
            off = ptr[u]
            n = ptr[u + 1] - off
            k = n_sess[u]
            starts = np.empty(k, np.float64)
            lens = np.empty(k, np.float64)
            starts[0] = sess_start[u]
            if k > 1:
                starts[k - 1] = sess_start[u] + sess_span[u]
                for j in range(1, k - 1):
                    st, r = _uniform(st)
                    starts[j] = sess_start[u] + r * sess_span[u]
                starts.sort()
            per = sec_per_rating * n / k
            for j in range(k):
                st, z = _normal(st)
                lens[j] = 60.0 + per * np.exp(0.5 * z)
            keys = np.empty(n, np.int64)
            for i in range(n):
                m = items[off + i]
                # first session starting at or after the item's arrival
                lo = 0
                hi = k - 1
                tm = item_time[m]
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if starts[mid] >= tm:
                        hi = mid
                    else:
                        lo = mid + 1
                st, r = _uniform(st)
                j = lo
                if r >= first_bias:
                    st, r = _uniform(st)
                    j = min(lo + int(r * (k - lo)), k - 1)
                st, r = _uniform(st)
                t = min(int(starts[j] + r * lens[j]), t_max) - t_base
                # one sortable key carries both the item and the time
                if by_time:
                    keys[i] = t * n_items + m
                else:
                    keys[i] = (np.int64(m) << 32) | t
            keys.sort()
            for i in range(n):
                key = keys[i]
                if by_time:
                    m = key % n_items
                    t = key // n_items
                else:
                    m = key >> 32
                    t = key & 0xFFFFFFFF
                items[off + i] = m
                ts[off + i] = t + t_base
                st, z = _normal(st)
                x = mu + user_b[u] + item_b[m] + taste_sd * _dot(user_f, u, item_f, m)
                latent[off + i] = x + noise_sd * z
    return ts, latent


@njit(cache=True)
def quantize(latent, thresholds):
    """Bucket index of each value: the number of ``thresholds`` (sorted) <= value.

    Parameters
    ----------
    latent : float32[n]
    thresholds : float64[k]

    Returns
    -------
    uint8[n]
    """
    n = latent.shape[0]
    k = thresholds.shape[0]
    out = np.empty(n, np.uint8)
    for i in range(n):
        x = latent[i]
        b = 0
        while b < k and thresholds[b] <= x:
            b += 1
        out[i] = b
    return out


@njit(cache=True)
def count_items(items, n_items):
    """Number of ratings per item."""
    out = np.zeros(n_items, np.int64)
    for i in range(items.shape[0]):
        out[items[i]] += 1
    return out


@njit(cache=True)
def sample_tags(
    taggers,
    n_tags,
    ptr,
    items,
    ts,
    codes,
    n_codes,
    item_genres,
    genre_tag_ptr,
    genre_tags,
    pos_tags,
    neg_tags,
    item_people,
    generic_cdf,
    p_genre,
    p_mood,
    p_people,
    t_max,
    seed,
):
    """Tag applications by the users in ``taggers`` on movies they rated.

    User ``taggers[k]`` applies ``n_tags[k]`` (<= its number of ratings) distinct
    (movie, tag) pairs: movies are taken without replacement from its ratings, each
    receives 1-4 distinct tags, chosen from the movie's genre tags (probability
    ``p_genre``), from positive/negative tags matching the rating (``p_mood``), from
    the people credited on the movie (``p_people``), or from the generic vocabulary
    (Zipf-like ``generic_cdf``).

    Parameters
    ----------
    taggers : int64[n_taggers]
        User indices (rows of ``ptr``).
    n_tags : int64[n_taggers]
        Tags per tagger.
    ptr, items, ts, codes : arrays
        Ratings grouped by user (CSR), their timestamps and rating bucket index.
    n_codes : int
        Number of rating buckets (``codes`` < n_codes).
    item_genres : int8[n_items, max_genres]
        Genre indices of each item, -1 padded.
    genre_tag_ptr, genre_tags : int64[n_genres + 1], int32[:]
        Tag ids associated with each genre (CSR).
    pos_tags, neg_tags : int32[:]
        Tag ids for liked and disliked movies.
    item_people : int32[n_items, max_people]
        Tag ids of the people credited on each item, -1 padded.
    generic_cdf : float64[n_vocab]
        Cumulative weights of every tag id for generic draws.
    p_genre, p_mood, p_people : float
        Probability of a genre tag, a mood tag and a person tag.
    t_max : int
        Last allowed timestamp.
    seed : uint64
        Stream key.

    Returns
    -------
    user, item, tag, time : arrays of length ``n_tags.sum()``
        Rows a tagger could not fill (it ran out of movies) have ``user == -1``.
    """
    n_taggers = taggers.shape[0]
    tptr = np.zeros(n_taggers + 1, np.int64)
    for k in range(n_taggers):
        tptr[k + 1] = tptr[k] + n_tags[k]
    total = tptr[n_taggers]
    o_user = np.empty(total, np.int32)
    o_item = np.empty(total, np.int32)
    o_tag = np.empty(total, np.int32)
    o_ts = np.empty(total, np.int64)
    n_vocab = generic_cdf.shape[0]
    max_g = item_genres.shape[1]
    max_p = item_people.shape[1]
    for k in range(n_taggers):
        u = taggers[k]
        st = _stream(seed, u)
        off = ptr[u]
        n = ptr[u + 1] - off
        perm = np.arange(n)
        w = tptr[k]
        end = tptr[k + 1]
        p = 0
        while w < end and p < n:
            # partial Fisher-Yates: next movie without replacement
            st, r = _uniform(st)
            j = p + int(r * (n - p))
            if j >= n:
                j = n - 1
            tmp = perm[p]
            perm[p] = perm[j]
            perm[j] = tmp
            i = off + perm[p]
            p += 1
            m = items[i]
            st, r = _uniform(st)
            g = 1
            while g < 4 and r < 0.35:
                g += 1
                st, r = _uniform(st)
            if g > end - w:
                g = end - w
            start = w
            tries = 0
            while w < start + g and tries < 50:
                tries += 1
                st, r = _uniform(st)
                tag = -1
                if r < p_genre:
                    ng = 0
                    for q in range(max_g):
                        if item_genres[m, q] >= 0:
                            ng += 1
                    if ng > 0:
                        st, r = _uniform(st)
                        gi = item_genres[m, min(int(r * ng), ng - 1)]
                        a = genre_tag_ptr[gi]
                        b = genre_tag_ptr[gi + 1]
                        if b > a:
                            st, r = _uniform(st)
                            # earlier tags of a genre are the common ones
                            tag = genre_tags[a + int(r * r * (b - a))]
                elif r < p_genre + p_mood:
                    c = codes[i]
                    st, r = _uniform(st)
                    if 4 * c >= 3 * (n_codes - 1):
                        tag = pos_tags[int(r * pos_tags.shape[0])]
                    elif 3 * c <= n_codes - 1:
                        tag = neg_tags[int(r * neg_tags.shape[0])]
                elif r < p_genre + p_mood + p_people:
                    npl = 0
                    for q in range(max_p):
                        if item_people[m, q] >= 0:
                            npl += 1
                    if npl > 0:
                        st, r = _uniform(st)
                        tag = item_people[m, min(int(r * npl), npl - 1)]
                if tag < 0:
                    st, r = _uniform(st)
                    tag = _bisect_right(generic_cdf, 0, n_vocab, r * generic_cdf[n_vocab - 1])
                dup = False
                for q in range(start, w):
                    if o_tag[q] == tag:
                        dup = True
                if dup:
                    continue
                st, r = _uniform(st)
                if r < 0.4:
                    t = ts[i]
                else:
                    st, r = _uniform(st)
                    t = ts[i] + int(-np.log(1.0 - r) * 86400.0)
                if t > t_max:
                    t = t_max
                o_user[w] = u
                o_item[w] = m
                o_tag[w] = tag
                o_ts[w] = t
                w += 1
        # a tagger that ran out of movies leaves unused rows: mark them
        while w < end:
            o_user[w] = -1
            o_item[w] = -1
            o_tag[w] = -1
            o_ts[w] = 0
            w += 1
    return o_user, o_item, o_tag, o_ts
