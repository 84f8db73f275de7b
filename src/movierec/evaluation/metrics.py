"""Pure metric functions: rating error and ranking quality.

Ranking metrics work on a batch of top-K lists at once: ``rec`` is an (n_users, K) int
matrix of recommended item indices, best first (-1 pads short lists), and the relevant
items of each row are given as CSR arrays (``rel_indptr``, ``rel_indices`` sorted within
rows, optional ``rel_gains``). :func:`hit_matrix` turns them into an (n_users, K) gain
matrix; every accuracy metric below reads that matrix and ``n_rel`` (the size of each
row's relevant set, which counts relevant items no model can recommend too).

With ``h_j`` the gain at rank j (1-based) and ``R`` the relevant set:

- precision@K = sum_{j<=K} [h_j > 0] / K
- recall@K = sum_{j<=K} [h_j > 0] / |R|
- DCG@K = sum_{j<=K} h_j / log2(j + 1); NDCG@K = DCG@K / IDCG@K, the ideal DCG of the
  best possible list (binary gains: min(|R|, K) ones)
- AP@K = sum_{j<=K} precision@j [h_j > 0] / min(|R|, K); MAP is its mean over users
- RR@K = 1 / (rank of the first hit), 0 when no hit within K
- hit@K = 1 if any hit within K

Rows with an empty relevant set give NaN for recall, NDCG and AP (undefined).
"""

from __future__ import annotations

import numpy as np

#: Per-user accuracy metrics of a top-K list, computed at every K ("ndcg@10").
ACCURACY = ("precision", "recall", "ndcg", "map", "mrr", "hit")
#: Catalogue-level metrics over all evaluated users' lists, at every K ("coverage@10").
BEYOND = ("coverage", "avg_popularity", "novelty", "diversity", "gini")
#: Rating-prediction errors (no K).
RATING_METRICS = ("rmse", "mae")
#: Metrics where a smaller value is better; every other metric is better larger.
LOWER_IS_BETTER = (*RATING_METRICS, "gini", "avg_popularity")


def lower_is_better(metric: str) -> bool:
    """True when a smaller value of ``metric`` ("rmse", "gini@10", "ndcg@10_se"...) is better.

    Smaller is better for the rating errors (rmse, mae), for the Gini index of exposure
    (``gini@K``: 0 when every item is recommended equally often, towards 1 when a few items
    get all the exposure) and for the mean popularity of the recommended items
    (``avg_popularity@K``: lower means less popularity bias, the counterpart of novelty).
    Accuracy, coverage, novelty and diversity are better larger.
    """
    return metric.split("@")[0] in LOWER_IS_BETTER


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    """Root mean squared error."""
    d = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def mae(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error."""
    d = np.asarray(pred, np.float64) - np.asarray(truth, np.float64)
    return float(np.mean(np.abs(d))) if d.size else float("nan")


# -- relevance ------------------------------------------------------------------------------
def hit_matrix(
    rec: np.ndarray,
    rel_indptr: np.ndarray,
    rel_indices: np.ndarray,
    rel_gains: np.ndarray | None = None,
) -> np.ndarray:
    """Gain of each recommended item in its row's relevant set (0 if not relevant).

    Parameters
    ----------
    rec : (n, K) int array
        Recommended items, best first; -1 pads (never a hit).
    rel_indptr, rel_indices : CSR arrays
        Row r's relevant items are ``rel_indices[rel_indptr[r]:rel_indptr[r+1]]``
        (sorted ascending within each row).
    rel_gains : float array aligned with ``rel_indices``, optional
        Graded gains (all > 0); binary gains 1 when omitted.

    Returns
    -------
    (n, K) float64 array of gains; ``hits = gains > 0``.
    """
    rec = np.ascontiguousarray(np.atleast_2d(rec), dtype=np.int32)
    ip = np.ascontiguousarray(rel_indptr, dtype=np.int64)
    ix = np.ascontiguousarray(rel_indices, dtype=np.int32)
    if ip.size != rec.shape[0] + 1:
        raise ValueError("rel_indptr must have one entry more than rec has rows")
    g = (
        np.ones(ix.size, np.float64)
        if rel_gains is None
        else np.ascontiguousarray(rel_gains, dtype=np.float64)
    )
    from movierec.kernels.rankmetrics import hit_gains  # numba, loaded when first needed

    return hit_gains(rec, ip, ix, g)


def ideal_gains(rel_indptr: np.ndarray, rel_gains: np.ndarray, k: int) -> np.ndarray:
    """(n, k) matrix of each row's best ``k`` relevant gains, descending, zero-padded."""
    ip = np.asarray(rel_indptr, dtype=np.int64)
    g = np.asarray(rel_gains, dtype=np.float64)
    n = ip.size - 1
    lens = np.diff(ip)
    row = np.repeat(np.arange(n), lens)
    order = np.lexsort((-g, row))  # by row, then gain descending
    rank = np.arange(g.size) - ip[row]
    out = np.zeros((n, k), np.float64)
    keep = rank < k
    out[row[keep], rank[keep]] = g[order][keep]
    return out


def _hits(gains: np.ndarray, k: int) -> np.ndarray:
    g = np.atleast_2d(np.asarray(gains))
    if k < 1 or k > g.shape[1]:
        raise ValueError(f"k must lie in 1..{g.shape[1]}, got {k}")
    return g[:, :k] > 0


def _per_rel(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    den = np.asarray(den, np.float64)
    return np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)


def precision_at_k(gains: np.ndarray, k: int) -> np.ndarray:
    """Hits within the first k / k, per row."""
    return _hits(gains, k).sum(axis=1) / float(k)


def recall_at_k(gains: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """Hits within the first k / |relevant|, per row."""
    return _per_rel(_hits(gains, k).sum(axis=1).astype(np.float64), n_rel)


def hit_rate_at_k(gains: np.ndarray, k: int) -> np.ndarray:
    """1.0 where at least one of the first k items is relevant, per row."""
    return _hits(gains, k).any(axis=1).astype(np.float64)


def reciprocal_rank_at_k(gains: np.ndarray, k: int) -> np.ndarray:
    """1 / rank of the first hit within k (0 when none), per row."""
    h = _hits(gains, k)
    first = h.argmax(axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1.0), 0.0)


def average_precision_at_k(gains: np.ndarray, n_rel: np.ndarray, k: int) -> np.ndarray:
    """AP@k = sum_j precision@j * hit_j / min(|relevant|, k), per row."""
    h = _hits(gains, k).astype(np.float64)
    prec = np.cumsum(h, axis=1) / np.arange(1, k + 1)
    return _per_rel((prec * h).sum(axis=1), np.minimum(np.asarray(n_rel), k))


def _discount(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def dcg_at_k(gains: np.ndarray, k: int) -> np.ndarray:
    """Discounted cumulative gain sum_j gain_j / log2(j + 1), per row."""
    _hits(gains, k)
    g = np.atleast_2d(np.asarray(gains, np.float64))[:, :k]
    return g @ _discount(k)


def ndcg_at_k(
    gains: np.ndarray, n_rel: np.ndarray, k: int, ideal: np.ndarray | None = None
) -> np.ndarray:
    """DCG@k / ideal DCG@k, per row.

    ``ideal`` is the (n, >= k) matrix of :func:`ideal_gains` for graded gains; when omitted
    gains are binary and the ideal list holds min(|relevant|, k) hits.
    """
    dcg = dcg_at_k(gains, k)
    if ideal is None:
        cum = np.concatenate([[0.0], np.cumsum(_discount(k))])
        idcg = cum[np.minimum(np.asarray(n_rel, np.int64), k)]
    else:
        idcg = np.asarray(ideal, np.float64)[:, :k] @ _discount(k)
    return _per_rel(dcg, idcg)


# -- beyond accuracy ------------------------------------------------------------------------
def _valid(rec: np.ndarray) -> np.ndarray:
    r = np.asarray(rec)
    return r[r >= 0]


def catalog_coverage(rec: np.ndarray, n_items: int) -> float:
    """Share of the catalogue recommended to at least one user."""
    if not n_items:
        return float("nan")
    return float(np.count_nonzero(np.bincount(_valid(rec), minlength=n_items)) / n_items)


def average_popularity(rec: np.ndarray, item_pop: np.ndarray) -> float:
    """Mean popularity (training rating count) of the recommended items."""
    v = _valid(rec)
    return float(np.asarray(item_pop, np.float64)[v].mean()) if v.size else float("nan")


def novelty(rec: np.ndarray, item_pop: np.ndarray, n_users: int) -> float:
    """Mean self-information -log2(pop_i / n_users) of the recommended items.

    ``item_pop`` counts training users per item; items never seen in training count as
    popularity 1 (the rarest observable), so novelty stays finite.
    """
    v = _valid(rec)
    if not v.size:
        return float("nan")
    p = np.maximum(np.asarray(item_pop, np.float64)[v], 1.0) / float(n_users)
    return float(np.mean(-np.log2(p)))


def genre_masks(genres: list[list[str]] | list) -> np.ndarray:
    """(n_items, words) uint64 bit masks of each item's genre set (input to diversity)."""
    names = sorted({g for gs in genres for g in (gs or [])})
    pos = {g: j for j, g in enumerate(names)}
    words = max(1, (len(names) + 63) // 64)
    out = np.zeros((len(genres), words), np.uint64)
    for i, gs in enumerate(genres):
        for g in gs or []:
            j = pos[g]
            out[i, j // 64] |= np.uint64(1) << np.uint64(j % 64)
    return out


def intra_list_diversity(rec: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per list: mean pairwise Jaccard distance 1 - |A & B| / |A | B| of the items' sets.

    ``masks`` comes from :func:`genre_masks`. Two items with no genre are at distance 0;
    lists with fewer than two items give NaN.
    """
    rec = np.ascontiguousarray(np.atleast_2d(rec), dtype=np.int32)
    m = np.ascontiguousarray(masks, dtype=np.uint64)
    if m.ndim == 1:
        m = m[:, None]
    from movierec.kernels.rankmetrics import list_jaccard_distance

    return list_jaccard_distance(rec, m)


def gini_index(rec: np.ndarray, n_items: int) -> float:
    """Gini index of item exposure over the whole catalogue (0 = equal, -> 1 = concentrated).

    G = sum_i (2i - n - 1) c_(i) / (n sum c), with the exposure counts c sorted ascending
    and i = 1..n over all ``n_items`` items (never-recommended items count with 0).
    """
    c = np.sort(np.bincount(_valid(rec), minlength=n_items).astype(np.float64))
    n = c.size
    total = c.sum()
    if n == 0 or total == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * c).sum() / (n * total))
