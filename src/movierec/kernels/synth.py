"""Numba kernels for the MovieLens-shaped synthetic data generator.

Plain arrays in and out, no classes, no I/O. Every user draws from its own
counter-based random stream (splitmix64 keyed by seed and user index), so the
output does not depend on the number of threads or on how users are chunked.

Item indices here are positions in the listed catalogue, which is ordered by the
time a movie was added (and therefore by movieId).
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
_INV53 = 1.0 / 9007199254740992.0


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@njit(cache=True)
def _stream(seed, index):
    """Initial state of the random stream of one user (or item)."""
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
        Table ``b`` occupies ``[ptr[b], ptr[b + 1])`` of the next two arrays.
    prob : float64[ptr[-1]]
        Probability of keeping the drawn slot.
    alias : int32[ptr[-1]]
        Index used otherwise.
    """
    nb = bounds.shape[0]
    ptr = np.zeros(nb + 1, np.int64)
    for b in range(nb):
        ptr[b + 1] = ptr[b] + bounds[b]
    prob = np.empty(ptr[nb], np.float64)
    alias = np.empty(ptr[nb], np.int32)
    for b in range(nb):
        size = bounds[b]
        off = ptr[b]
        total = 0.0
        for i in range(size):
            total += weights[i]
        scaled = np.empty(size, np.float64)
        small = np.empty(size, np.int64)
        large = np.empty(size, np.int64)
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
            prob[off + lo] = scaled[lo]
            alias[off + lo] = g
            scaled[g] = (scaled[g] + scaled[lo]) - 1.0
            if scaled[g] < 1.0:
                nl -= 1
                small[ns] = g
                ns += 1
        for q in range(nl):
            prob[off + large[q]] = 1.0
            alias[off + large[q]] = large[q]
        for q in range(ns):
            prob[off + small[q]] = 1.0
            alias[off + small[q]] = small[q]
    return ptr, prob, alias


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
    for i in range(1, n + 1):
        j = i + (i & -i)
        if j <= n:
            tree[j] += tree[i]
    return tree


@njit(cache=True)
def _fen_add(tree, i, delta):
    n = tree.shape[0] - 1
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
def _fen_find(tree, r):
    """0-based index j with prefix(j) <= r < prefix(j + 1)."""
    n = tree.shape[0] - 1
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
def _heapsort_pairs(keys, vals, n):
    """Sort keys[:n] ascending in place, applying the same moves to vals[:n]."""
    for start in range(n // 2 - 1, -1, -1):
        _sift(keys, vals, start, n)
    for end in range(n - 1, 0, -1):
        t = keys[0]
        keys[0] = keys[end]
        keys[end] = t
        v = vals[0]
        vals[0] = vals[end]
        vals[end] = v
        _sift(keys, vals, 0, end)


@njit(cache=True)
def _sift(keys, vals, root, end):
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and keys[child + 1] > keys[child]:
            child += 1
        if keys[root] >= keys[child]:
            return
        t = keys[root]
        keys[root] = keys[child]
        keys[child] = t
        v = vals[root]
        vals[root] = vals[child]
        vals[child] = v
        root = child


@njit(cache=True)
def _accept(st, user_f, row, item_f, m, sel_beta, sel_cap):
    """Taste filter: accept with probability exp(beta * (min(z, cap) - cap))."""
    if sel_beta <= 0.0:
        return st, True
    z = _dot(user_f, row, item_f, m)
    if z >= sel_cap:
        return st, True
    st, r = _uniform(st)
    return st, r < np.exp(sel_beta * (z - sel_cap))


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
    alias_prob,
    alias_idx,
    tree,
    rated_items,
    rated_pos,
    user_f,
    user_rows,
    item_f,
    sel_beta,
    sel_cap,
    seed,
    n_chunks,
):
    """Draw each user's set of distinct rated movies.

    User ``u`` gets ``ptr[u + 1] - ptr[u]`` distinct items: first its coverage
    items ``seed_items[seed_ptr[u]:seed_ptr[u + 1]]``, then items drawn without
    replacement from the popularity weights restricted to the first ``elig[u]``
    rated items (the catalogue available by the user's last session), each kept
    with probability ``exp(sel_beta * (min(z, sel_cap) - sel_cap))`` where ``z`` is
    the taste score ``dot(user_f[user_rows[u]], item_f[item])``. Draws start with
    rejection of repeats, proposing from the alias table of the largest bound
    ``<= elig[u]`` (or, with the remaining probability, from the few items between
    that bound and ``elig[u]`` by binary search in ``cum``); when repeats make that slow
    (heavy users who exhausted the head of the distribution) the user switches to
    a private copy of the Fenwick tree with its taken items removed, and restores
    it afterwards (integer weights, so the restore is exact).

    Parameters
    ----------
    ptr : int64[n_users + 1]
        Offsets of each user's ratings in the output.
    elig : int64[n_users]
        Number of rated items (prefix of ``rated_items``) the user may rate.
    seed_ptr, seed_items : int64[n_users + 1], int32[n_seeds]
        Listed items a user must rate (CSR layout); all must be eligible.
    weights, cum : int64[n_rated]
        Integer popularity weights of rated items in added order, and their
        cumulative sums (total below 2**53).
    bounds, alias_ptr, alias_prob, alias_idx : arrays
        Prefix lengths (the first <= every ``elig``) and ``alias_build(weights, bounds)``.
    tree : int64[n_rated + 1]
        ``fenwick_build(weights)``; not modified.
    rated_items : int32[n_rated]
        Listed item index of each rated item, in added order.
    rated_pos : int32[n_listed]
        Inverse of ``rated_items`` (-1 for movies that are never rated).
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
        Listed item index of each rating, grouped by user, in draw order.
    """
    n_users = ptr.shape[0] - 1
    n_listed = rated_pos.shape[0]
    out = np.empty(ptr[n_users], np.int32)
    chunk = (n_users + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        mark = np.zeros(n_listed, np.bool_)
        local = np.empty(0, np.int64)
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
            b = _bisect_right(bounds, 0, bounds.shape[0], e)
            if bounds[b] > e:
                b -= 1
            size = bounds[b]
            tot_b = cum[size - 1]
            base = alias_ptr[b]
            # switch to the tree once repeats (not taste rejections) get frequent
            budget = (n - cnt) // 2 + 16
            repeats = 0
            while cnt < n and repeats < budget:
                st, r = _uniform(st)
                x = r * tot
                if x >= tot_b:
                    j = _bisect_right(cum, size, e, int(x))
                else:
                    y = x / tot_b * size
                    j = int(y)
                    if j >= size:
                        j = size - 1
                    if y - j >= alias_prob[base + j]:
                        j = alias_idx[base + j]
                m = rated_items[j]
                if mark[m]:
                    repeats += 1
                    continue
                st, ok = _accept(st, user_f, row, item_f, m, sel_beta, sel_cap)
                if not ok:
                    continue
                mark[m] = True
                out[off + cnt] = m
                cnt += 1
            if cnt < n:
                # exact draws from what is left: Fenwick tree without the taken items
                if local.shape[0] == 0:
                    local = tree.copy()
                left = _fen_prefix(local, e)
                for i in range(off, off + cnt):
                    j = rated_pos[out[i]]
                    _fen_add(local, j, -weights[j])
                    left -= weights[j]
                misses = 0
                while cnt < n:
                    st, r = _uniform(st)
                    j = _fen_find(local, int(r * left))
                    m = rated_items[j]
                    st, ok = _accept(st, user_f, row, item_f, m, sel_beta, sel_cap)
                    if not ok and misses < 1000:
                        misses += 1
                        continue
                    misses = 0
                    _fen_add(local, j, -weights[j])
                    left -= weights[j]
                    mark[m] = True
                    out[off + cnt] = m
                    cnt += 1
                for i in range(off, off + n):
                    j = rated_pos[out[i]]
                    _fen_add(local, j, weights[j])
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

    A user's history is a set of sessions: the first starts at ``sess_start[u]``,
    the last at ``sess_start[u] + sess_span[u]``, the others uniformly between.
    A rating of item ``m`` lands in a session that starts no earlier than
    ``item_time[m]`` (the first such session with probability ``first_bias``, a
    uniform later one otherwise) at a uniform offset within the session length.
    The latent rating is ``mu + user_b + item_b + taste_sd * dot(P_u, Q_i) +
    noise_sd * N(0, 1)``.

    Parameters
    ----------
    items : int32[n_ratings]
        Listed item index per rating, grouped by user; reordered in place.
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
    item_time : float64[n_listed]
        Time each item was added to the catalogue.
    t_max : int
        Last allowed timestamp.
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
    n_listed = item_time.shape[0]
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
                _heapsort_pairs(starts, lens, k)
            per = sec_per_rating * n / k
            for j in range(k):
                st, z = _normal(st)
                lens[j] = 60.0 + per * np.exp(0.5 * z)
            for i in range(off, off + n):
                m = items[i]
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
                    j = lo + int(r * (k - lo))
                    if j >= k:
                        j = k - 1
                st, r = _uniform(st)
                t = int(starts[j] + r * lens[j])
                if t > t_max:
                    t = t_max
                ts[i] = t
                st, z = _normal(st)
                x = mu + user_b[u] + item_b[m] + taste_sd * _dot(user_f, u, item_f, m)
                latent[i] = x + noise_sd * z
            keys = np.empty(n, np.int64)
            order = np.arange(n)
            for i in range(n):
                if by_time:
                    keys[i] = ts[off + i] * n_listed + items[off + i]
                else:
                    keys[i] = items[off + i]
            _heapsort_pairs(keys, order, n)
            tmp_i = items[off : off + n].copy()
            tmp_t = ts[off : off + n].copy()
            tmp_l = latent[off : off + n].copy()
            for i in range(n):
                items[off + i] = tmp_i[order[i]]
                ts[off + i] = tmp_t[order[i]]
                latent[off + i] = tmp_l[order[i]]
    return ts, latent


@njit(cache=True)
def quantize(latent, thresholds):
    """Bucket index of each value: number of ``thresholds`` (sorted) <= value.

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
    """Number of ratings per item index."""
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
    item_genres : int8[n_listed, max_genres]
        Genre indices of each item, -1 padded.
    genre_tag_ptr, genre_tags : int64[n_genres + 1], int32[:]
        Tag ids associated with each genre (CSR).
    pos_tags, neg_tags : int32[:]
        Tag ids for liked and disliked movies.
    item_people : int32[n_listed, max_people]
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
