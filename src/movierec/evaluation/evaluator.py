"""Batched full-catalogue top-N evaluation of one or many models on a Split.

Every user with at least one relevant rating (rating >= threshold) in the evaluated part
is evaluated: a block of users is scored at once over all items, the user's training
items are excluded, and the one top-K kernel picks each list. Relevant items that never
appear in training stay in the relevant set (no model can find them). Users without
training history, or whose training ratings give the model no signal (all below a
thresholding model's ``threshold``: ``Recommender.known_users``), are served by the model's
fallback and counted (``users_fallback``), or skipped and counted (``unknown="skip"``),
never silently dropped.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from movierec.atomic import write_table
from movierec.data.dataset import Dataset, IdMap
from movierec.errors import ConfigError
from movierec.evaluation import metrics as M
from movierec.evaluation.analysis import (
    _fmt,
    bucket_labels,
    bucket_table,
    format_buckets,
    mean_se,
    paired_test,
)
from movierec.kernels.sparse_dense import rows_times_dense
from movierec.kernels.topk import (
    norm_order,
    topk_dot_sorted,
    topk_fused_ranks,
    topk_rows,
    topk_sparse_product,
)
from movierec.models.base import Recommender, blas_limit
from movierec.split import Split
from movierec.tables import text_table

__all__ = [
    "ACCURACY",
    "BEYOND",
    "EvalResult",
    "evaluate",
    "evaluate_model",
    "evaluate_models",
    "batch_users",
    "format_buckets",
    "relevant_sets",
    "run_evaluate",
    "save_recommendations",
    "top_k_lists",
]

ACCURACY, BEYOND = M.ACCURACY, M.BEYOND
UNKNOWN = ("fallback", "skip", "error")

Progress = Callable[[str, int, int], None]
# a score block of 16 MB: below glibc's largest mmap threshold (32 MB), so blocks reuse
# the heap's pages instead of faulting in fresh ones each time (8.0 -> 2.3 s of scoring
# for popularity's dense rows over 157,819 users x 59,047 movies, measured)
_BATCH_CELLS = 1 << 22
# users ranked at once by a direct model (the kernels' tiles spread over the cores)
_DIRECT_USERS = 4096


# -- result -----------------------------------------------------------------------------------
@dataclass
class EvalResult:
    """Per-user metrics of every model and their summary.

    Attributes
    ----------
    per_user : polars DataFrame
        One row per (model, evaluated user): model, user (dense index), user_raw, n_train,
        n_relevant, bucket, fallback, and "<metric>@<K>" for every accuracy metric and K.
    summary : dict
        label -> {"ndcg@10": mean, "ndcg@10_se": standard error, ..., catalogue metrics
        ("coverage@10", ...), user counts, "fit_s", "eval_s", and "rmse"/"mae" for rating
        models}.
    k : tuple of int
    threshold : float
    part : str
        The evaluated part ("test" or "validation").
    bucket_edges : (int, int)
    """

    per_user: pl.DataFrame
    summary: dict[str, dict[str, float]]
    k: tuple[int, ...]
    threshold: float
    part: str = "test"
    bucket_edges: tuple[int, int] = (20, 100)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def primary_k(self) -> int:
        """10 when evaluated, else the first K."""
        return 10 if 10 in self.k else self.k[0]

    @property
    def models(self) -> list[str]:
        return list(self.summary)

    def default_metrics(self) -> list[str]:
        k = self.primary_k
        out = [f"{m}@{k}" for m in ("ndcg", "recall", "precision", "map", "mrr", "hit")]
        out += [f"coverage@{k}", f"novelty@{k}"]
        if any("rmse" in s for s in self.summary.values()):
            out += ["rmse", "mae"]
        return out

    def table(self, metrics: list[str] | None = None) -> str:
        """Aligned text table: one row per model, sorted by the first metric (best first);
        per-user metrics shown as mean ± standard error."""
        metrics = list(metrics or self.default_metrics())
        known = {m for s in self.summary.values() for m in s}
        bad = [m for m in metrics if m not in known]
        if bad:
            raise ConfigError(f"unknown metric(s) {bad}; available: {sorted(known)}")
        first = metrics[0]
        lower_better = M.lower_is_better(first)

        def key(label: str) -> float:
            v = self.summary[label].get(first, float("nan"))
            if not math.isfinite(v):
                return math.inf
            return v if lower_better else -v

        rows = []
        for label in sorted(self.summary, key=key):
            s = self.summary[label]
            cells = [label]
            for m in metrics:
                v = s.get(m, float("nan"))
                cells.append(f"{_fmt(v)} ± {_fmt(s[m + '_se'])}" if m + "_se" in s else _fmt(v))
            cells += [
                str(int(s["users_evaluated"])),
                str(int(s["users_fallback"])),
                _fmt(s["fit_s"], 2),
            ]
            rows.append(cells)
        head = ["model", *metrics, "users", "fallback", "fit_s"]
        return text_table(rows, head, right=range(1, len(head)))

    def buckets(self, metric: str = "ndcg@10") -> pl.DataFrame:
        """Model x activity bucket: mean, se and number of users of ``metric``."""
        return bucket_table(self.per_user, metric)

    def compare(self, a: str, b: str, metric: str = "ndcg@10") -> dict[str, Any]:
        """Paired t-test and Wilcoxon test of ``metric`` between models ``a`` and ``b`` on
        the users both evaluated; mean difference is a - b."""
        for m in (a, b):
            if m not in self.summary:
                raise ConfigError(f"no model {m!r} in this result; have {self.models}")
        if metric not in self.per_user.columns:
            raise ConfigError(f"no per-user metric {metric!r} in this result")
        pa = self.per_user.filter(pl.col("model") == a).select("user", metric)
        pb = self.per_user.filter(pl.col("model") == b).select("user", metric)
        j = pa.join(pb, on="user", suffix="_b")
        out: dict[str, Any] = {"a": a, "b": b, "metric": metric}
        out.update(paired_test(j[metric].to_numpy(), j[metric + "_b"].to_numpy()))
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: {"part", "k", "threshold", "bucket_edges", "summary": label ->
        metric -> value, "buckets": metric -> label -> bucket -> {mean, se, n}}; NaN -> None."""
        k = self.primary_k
        buckets: dict[str, Any] = {}
        for name in ACCURACY:
            metric = f"{name}@{k}"
            t = self.buckets(metric)
            per: dict[str, Any] = {}
            for r in t.iter_rows(named=True):
                per.setdefault(r["model"], {})[r["bucket"]] = {
                    "mean": r["mean"],
                    "se": r["se"],
                    "n": r["n"],
                }
            buckets[metric] = per
        return _clean(
            {
                "part": self.part,
                "k": list(self.k),
                "threshold": self.threshold,
                "bucket_edges": list(self.bucket_edges),
                "summary": self.summary,
                "buckets": buckets,
                **({"meta": self.meta} if self.meta else {}),
            }
        )


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


# -- building blocks --------------------------------------------------------------------------
def relevant_sets(
    part: Dataset, threshold: float = 4.0, graded: bool | str = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The relevant items of every user of ``part`` with at least one rating >= threshold.

    Returns (users, indptr, indices, gains): users sorted ascending (dense int64), and a
    CSR over those users of their relevant items (sorted) and gains. Gains are 1 when
    ``graded`` is False; ``True``/"shifted" gives rating - threshold + 1, "rating" the rating.
    """
    mask = part.ratings >= threshold
    u, i, r = part.users[mask], part.items[mask], part.ratings[mask].astype(np.float64)
    order = np.lexsort((i, u))
    u, i, r = u[order], i[order], r[order]
    users, counts = np.unique(u, return_counts=True)
    indptr = np.zeros(users.size + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    if graded is False:
        gains = np.ones(i.size)
    elif graded is True or graded == "shifted":
        gains = r - threshold + 1.0
    elif graded == "rating":
        gains = r
    else:
        raise ConfigError(f"graded must be False, True, 'shifted' or 'rating', got {graded!r}")
    if np.any(gains <= 0):
        raise ConfigError("graded gains must be > 0; use graded='shifted' for a threshold <= 0")
    return users.astype(np.int64), indptr, i.astype(np.int32), gains


def _rows_of(indptr: np.ndarray, indices: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
    """CSR (indptr, indices) of rows ``u`` of a CSR matrix."""
    starts, ends = indptr[u], indptr[u + 1]
    lens = ends - starts
    ip = np.zeros(u.size + 1, dtype=np.int64)
    np.cumsum(lens, out=ip[1:])
    idx = np.repeat(starts - ip[:-1], lens) + np.arange(ip[-1])
    return ip, np.ascontiguousarray(indices[idx], dtype=np.int32)


def _exclusions(exclude: Dataset | None, n_users: int, n_items: int) -> tuple[np.ndarray, ...]:
    """CSR (indptr, indices) of every user's items in ``exclude`` (the data set's own CSR,
    shared, not copied); an empty one for None."""
    if exclude is None:
        return np.zeros(n_users + 1, np.int64), np.empty(0, np.int32)
    if exclude.n_items != n_items or exclude.n_users != n_users:
        raise ConfigError("exclude data set and model use different id maps")
    csr = exclude.csr()
    return csr.indptr.astype(np.int64, copy=False), csr.indices


def top_k_lists(
    model: Recommender,
    users: Any,
    k: int,
    *,
    exclude: Dataset | None = None,
    unknown: str = "fallback",
    batch_size: int | None = None,
    progress: Progress | None = None,
    label: str = "",
    timings: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items of each user over the full catalogue, best first.

    Blocks of ``batch_size`` users are scored at once with ``model.score`` and ranked by
    the parallel top-K kernel, skipping each user's items in ``exclude`` (normally the
    training part; None excludes nothing); dot-product and neighbour-product models are
    ranked without dense score rows (:func:`_rank_direct`), with the same lists. Returns
    (items int32, scores float32), each (n, min(k, n_items)); rows with too few candidates
    are padded with -1 / -inf.
    """
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    n_items = model.n_items_
    batch_size = batch_users(n_items) if batch_size is None else batch_size
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    u = np.atleast_1d(np.asarray(users, dtype=np.int64))
    ex_ip, ex_ix = _exclusions(exclude, model.n_users_, n_items)
    kk = min(k, n_items)
    tick = None if progress is None else (lambda a: progress(label, a, u.size))
    spent = {"score_s": 0.0, "topk_s": 0.0}
    if _direct(model):  # scored and ranked at once, without dense score rows
        t0 = time.perf_counter()
        items, scores = _rank_direct(model, u, kk, ex_ip, ex_ix, unknown, tick)
        spent["score_s"] = time.perf_counter() - t0
    else:
        rank = _dense_ranker(model, kk, ex_ip, ex_ix, unknown, batch_size, spent, tick)
        items, scores = rank(u)
    if timings is not None:
        for key, sec in spent.items():
            timings[key] = timings.get(key, 0.0) + sec
    return items, scores


def _check_k(k: Any) -> tuple[int, ...]:
    ks = (k,) if isinstance(k, (int, np.integer)) else tuple(k)
    if not ks or any(not isinstance(x, (int, np.integer)) or x < 1 for x in ks):
        raise ConfigError(f"k must be positive integers, got {k!r}")
    return tuple(sorted({int(x) for x in ks}))


def batch_users(n_items: int, cells: int = _BATCH_CELLS) -> int:
    """Users scored at once for a catalogue of ``n_items``: one score block of about
    ``cells`` float32 cells (16 MB), 64..4096 users."""
    return int(min(4096, max(64, cells // max(int(n_items), 1))))


def eta(start: float, done: int, total: int) -> str:
    """'3m05s left' from the time since ``start`` and the part done ('' before any)."""
    if done <= 0 or total <= 0:
        return ""
    left = (time.perf_counter() - start) * (total - done) / done
    m, s = divmod(int(round(left)), 60)
    return f"{m}m{s:02d}s left" if m else f"{s}s left"


def evaluate_model(
    model: Recommender,
    target: Dataset,
    *,
    history: Dataset,
    exclude: Dataset | None,
    k: Any = (5, 10, 20),
    threshold: float = 4.0,
    unknown: str = "fallback",
    bucket_edges: tuple[int, int] = (20, 100),
    batch_size: int | None = None,
    graded: bool | str = False,
    label: str = "model",
    progress: Progress | None = None,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Evaluate one fitted model against the relevant ratings of ``target``.

    ``history`` is the training data (activity buckets, item popularity, novelty);
    ``exclude`` the data whose items are removed from each user's candidates (normally the
    same training part; None to score against what the model saw). Returns the per-user
    frame and the summary dict of :class:`EvalResult` for this model.
    """
    return evaluate_models(
        {label: model},
        target,
        history=history,
        exclude=exclude,
        k=k,
        threshold=threshold,
        unknown=unknown,
        bucket_edges=bucket_edges,
        batch_size=batch_size,
        graded=graded,
        progress=progress,
    )[label]


def evaluate_models(
    models: Mapping[str, Recommender],
    target: Dataset,
    *,
    history: Dataset,
    exclude: Dataset | None,
    k: Any = (5, 10, 20),
    threshold: float = 4.0,
    unknown: str = "fallback",
    bucket_edges: tuple[int, int] = (20, 100),
    batch_size: int | None = None,
    graded: bool | str = False,
    progress: Progress | None = None,
) -> dict[str, tuple[pl.DataFrame, dict[str, float]]]:
    """Evaluate fitted models in one pass over blocks of users: label -> (per-user frame,
    summary) as :func:`evaluate_model` gives for each.

    The relevant sets, each block's excluded items and the block's score rows of models
    that hybrids share (:func:`movierec.models.hybrid.shared_scores`) are computed once for
    all models; dot-product and neighbour-product models are ranked without dense score
    rows, with the same lists (:func:`_rank_direct`; not the parts of hybrids that reuse
    their rows, :func:`_dense_models`). ``batch_size`` None derives the block from the
    catalogue size (:func:`batch_users`). ``progress(label, users_done, users_total)`` is called as each
    model starts on a block.
    """
    from movierec.models.hybrid import cached_score, ensemble_parts, shared_scores

    ks = _check_k(k)
    if unknown not in UNKNOWN:
        raise ConfigError(f"unknown must be one of {UNKNOWN}, got {unknown!r}")
    if not models:
        raise ConfigError("give at least one model to evaluate")
    t_start = time.perf_counter()
    users, ip, ix, gains_rel = relevant_sets(target, threshold, graded)
    first = next(iter(models.values()))
    n_items, n_users = first.n_items_, first.n_users_
    for m in models.values():
        m._require_fitted()
        if (m.n_items_, m.n_users_) != (n_items, n_users):
            raise ConfigError("the models use different id maps; fit them on the same data")
    bs = batch_users(n_items) if batch_size is None else int(batch_size)
    if bs < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    ex_ip, ex_ix = _exclusions(exclude, n_users, n_items)
    setup_s = time.perf_counter() - t_start
    kk = min(ks[-1], n_items)
    policy = "error" if unknown == "error" else "fallback"
    state: dict[str, dict[str, Any]] = {}
    for label, m in models.items():
        known = m.known_users(users) if users.size else np.zeros(0, bool)
        rows = np.flatnonzero(known) if unknown == "skip" else np.arange(users.size)
        state[label] = {
            "known": known,
            "rows": rows,
            "items": np.empty((rows.size, kk), np.int32),
            "filled": 0,
            "score_s": 0.0,
            "topk_s": 0.0,
        }
    dense = _dense_models(models)
    for label, m in models.items():
        st = state[label]
        if label in dense:
            continue
        t0 = time.perf_counter()
        tick = (
            None if progress is None else (lambda a, x=label, n=st["rows"].size: progress(x, a, n))
        )
        st["items"], _ = _rank_direct(m, users[st["rows"]], kk, ex_ip, ex_ix, policy, tick)
        st["score_s"] = time.perf_counter() - t0  # scored and ranked at once
        st["filled"] = st["rows"].size
    with shared_scores(ensemble_parts(models.values())):
        for a in range(0, users.size, bs):
            b = users[a : a + bs]
            bip, bix = _rows_of(ex_ip, ex_ix, b)
            for label, m in dense.items():
                st = state[label]
                if progress is not None:
                    progress(label, a, users.size)
                sel = st["rows"][(st["rows"] >= a) & (st["rows"] < a + b.size)] - a
                if sel.size == 0:
                    continue
                mip, mix = (bip, bix) if sel.size == b.size else _rows_of(bip, bix, sel)
                t0 = time.perf_counter()
                got = m.score(b[sel], unknown=policy) if policy == "error" else None
                got = cached_score(m, b[sel]) if got is None else got  # kept for hybrids
                s = np.ascontiguousarray(got, dtype=np.float32)
                t1 = time.perf_counter()
                lists, _ = topk_rows(s, kk, mip, mix)
                del s, got
                st["items"][st["filled"] : st["filled"] + sel.size] = lists
                st["filled"] += sel.size
                st["score_s"] += t1 - t0
                st["topk_s"] += time.perf_counter() - t1
    if progress is not None:
        progress("", users.size, users.size)
    out = {}
    for label, m in models.items():
        st = state[label]
        per_user, summary = _summarize(
            m, str(label), target, history, users, ip, ix, gains_rel, st, ks, unknown,
            bucket_edges, graded,
        )  # fmt: skip
        summary["eval_s"] = setup_s / len(models) + summary["score_s"] + summary["topk_s"]
        summary["eval_s"] += summary["metrics_s"]
        out[str(label)] = (per_user, summary)
    return out


def _direct(m: Recommender) -> bool:
    """Whether ``m`` is ranked without dense score rows of the whole catalogue: a
    dot-product model (:meth:`Recommender.dot_items`), a neighbour product
    (:meth:`Recommender.neighbour_product`), a switching hybrid or a reciprocal-rank
    fusion of candidate lists (each sub-model ranked its own way)."""
    from movierec.models.hybrid import RRFHybrid, SwitchingHybrid

    if isinstance(m, SwitchingHybrid):
        return True
    if isinstance(m, RRFHybrid):
        return m.candidates is not None
    return m.dot_items() is not None or m.neighbour_product() is not None


def _dense_models(models: Mapping[str, Recommender]) -> dict[str, Recommender]:
    """The models scored by dense rows, block by block: those not :func:`_direct`, and
    the parts of such hybrids (whose score rows the hybrid reuses, see
    :func:`~movierec.models.hybrid.shared_scores`)."""
    from movierec.models.hybrid import ensemble_parts

    shared = {id(x) for x in ensemble_parts(m for m in models.values() if not _direct(m))}
    return {k: m for k, m in models.items() if id(m) in shared or not _direct(m)}


def _csr_arrays(x: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # one dtype per argument: one compiled kernel for every model
    x = x.tocsr().astype(np.float32, copy=False)
    return np.asarray(x.indptr, np.int64), np.asarray(x.indices, np.int32), x.data


Ranker = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _dense_ranker(
    m: Recommender,
    k: int,
    ex_ip: np.ndarray,
    ex_ix: np.ndarray,
    policy: str = "fallback",
    batch_size: int | None = None,
    spent: dict[str, float] | None = None,
    tick: Callable[[int], None] | None = None,
) -> Ranker:
    """``rank(users)``: :func:`topk_rows` of ``m.score(users, unknown=policy)`` skipping
    each user's items of the CSR (``ex_ip``, ``ex_ix``; k <= n_items), scored in blocks of
    ``batch_size`` users (None: :func:`batch_users`). Seconds of scoring and ranking are
    added to ``spent["score_s"]`` and ``spent["topk_s"]``; ``tick(done)`` follows each block."""
    bs = batch_users(m.n_items_) if batch_size is None else batch_size

    def by_rows(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        items = np.empty((users.size, k), np.int32)
        scores = np.empty((users.size, k), np.float32)
        for a in range(0, users.size, bs):
            b = users[a : a + bs]
            t0 = time.perf_counter()
            s = np.ascontiguousarray(m.score(b, unknown=policy), dtype=np.float32)
            t1 = time.perf_counter()
            items[a : a + b.size], scores[a : a + b.size] = topk_rows(
                s, k, *_rows_of(ex_ip, ex_ix, b)
            )
            if spent is not None:
                spent["score_s"] += t1 - t0
                spent["topk_s"] += time.perf_counter() - t1
            if tick is not None:
                tick(a + b.size)
        return items, scores

    return by_rows


def _ranker(
    m: Recommender, k: int, ex_ip: np.ndarray, ex_ix: np.ndarray, policy: str = "fallback"
) -> Ranker:
    """``rank(users)``: the lists of :func:`_dense_ranker`, for known users of a
    :func:`_direct` model without dense rows (:func:`_direct_ranker`)."""
    by_rows = _dense_ranker(m, k, ex_ip, ex_ix, policy)
    if not _direct(m):
        return by_rows
    direct = _direct_ranker(m, k, ex_ip, ex_ix)

    def rank(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kn = m.known_users(users)
        if kn.all():
            return direct(users)
        items = np.empty((users.size, k), np.int32)
        scores = np.empty((users.size, k), np.float32)
        if kn.any():
            items[kn], scores[kn] = direct(users[kn])
        items[~kn], scores[~kn] = by_rows(users[~kn])
        return items, scores

    return rank


def _direct_ranker(m: Recommender, k: int, ex_ip: np.ndarray, ex_ix: np.ndarray) -> Ranker:
    """``rank(users)`` for known users of a :func:`_direct` model (see :func:`_ranker`):
    dot products by :func:`topk_dot_sorted` (items by decreasing norm), a sparse product by
    :func:`topk_sparse_product`, a dense item x item product (EASE) on its items only, a
    switching hybrid by its sub-models' rankers, a reciprocal-rank fusion
    (:func:`topk_fused_ranks`) of its sub-models' top ``candidates``."""
    from movierec.models.hybrid import RRFHybrid, SwitchingHybrid

    if isinstance(m, SwitchingHybrid):
        cf, cold = (_ranker(x, k, ex_ip, ex_ix) for x in m.models_)

        def by_switch(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            warm = m.warm(users)
            items = np.empty((users.size, k), np.int32)
            scores = np.empty((users.size, k), np.float32)
            for mask, rank in ((warm, cf), (~warm, cold)):
                if mask.any():
                    items[mask], scores[mask] = rank(users[mask])
            return items, scores

        return by_switch
    if isinstance(m, RRFHybrid):
        # the sub-models' lists skip the items each user rated, as RRFHybrid._score's do
        c = min(int(m.candidates), m.n_items_)  # type: ignore[arg-type]
        subs = [_ranker(x, c, m.seen_indptr_, m.seen_indices_) for x in m.models_]
        w = m.weights_.astype(np.float32)
        dense = _dense_ranker(m, k, ex_ip, ex_ix)

        def by_fusion(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            lists = np.stack([rank(users)[0] for rank in subs])
            items, scores, exact = topk_fused_ranks(
                lists, w, float(m.k), m.n_items_, k, ex_ip, ex_ix, users
            )
            if not exact.all():  # items in no list could enter these users' top k
                items[~exact], scores[~exact] = dense(users[~exact])
            return items, scores

        return by_fusion
    V = m.dot_items()
    if V is not None:
        dot = norm_order(V)

        def by_dot(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            A = np.ascontiguousarray(m._dot_users(users), dtype=np.float32)
            with blas_limit(m.blas_threads):
                return topk_dot_sorted(A, *dot, k, ex_ip, ex_ix, users)

        return by_dot
    X, S, base, kept = m.neighbour_product()  # type: ignore[misc]
    xs = _csr_arrays(X)
    if not isinstance(S, np.ndarray):
        ss = _csr_arrays(S)
        row = np.zeros(0, np.float32) if base is None else np.asarray(base, np.float32)
        return lambda users: topk_sparse_product(*xs, users, *ss, k, ex_ip, ex_ix, users, row)
    B = np.ascontiguousarray(S, dtype=np.float32)
    col = np.full(m.n_items_, -1, np.int64)
    col[kept] = np.arange(kept.size)

    def by_dense(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((users.size, B.shape[1]), dtype=np.float32)
        rows_times_dense(*xs, users, B, out)
        ip, ix = _rows_of(ex_ip, ex_ix, users)  # the exclusions among its items
        c = col[ix]
        r = np.repeat(np.arange(users.size), np.diff(ip))[c >= 0]
        ip = np.r_[0, np.cumsum(np.bincount(r, minlength=users.size))].astype(np.int64)
        it, sc = topk_rows(out, k, ip, c[c >= 0].astype(np.int32))
        it = np.where(it >= 0, kept[np.maximum(it, 0)], -1).astype(np.int32)
        if it.shape[1] < k:  # fewer items than k: padded as topk_rows pads
            pad = ((0, 0), (0, k - it.shape[1]))
            it, sc = np.pad(it, pad, constant_values=-1), np.pad(sc, pad, constant_values=-np.inf)
        return it, sc

    return by_dense


def _rank_direct(
    m: Recommender,
    u: np.ndarray,
    k: int,
    ex_ip: np.ndarray,
    ex_ix: np.ndarray,
    policy: str,
    tick: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` (items, scores) of users ``u`` for a :func:`_direct` model
    (:func:`_ranker`) in blocks of ``_DIRECT_USERS``, skipping each user's items of the CSR
    (``ex_ip``, ``ex_ix``); unknown users get the fallback's scores (``policy``).
    ``tick(done)`` is called before each block."""
    kk = min(k, m.n_items_)
    rank = _ranker(m, kk, ex_ip, ex_ix, policy)
    items = np.empty((u.size, kk), np.int32)
    scores = np.empty((u.size, kk), np.float32)
    for a in range(0, u.size, _DIRECT_USERS):
        if tick is not None:
            tick(a)
        b = u[a : a + _DIRECT_USERS]
        items[a : a + b.size], scores[a : a + b.size] = rank(b)
    return items, scores


def _summarize(
    model: Recommender,
    label: str,
    target: Dataset,
    history: Dataset,
    users: np.ndarray,
    ip: np.ndarray,
    ix: np.ndarray,
    gains_rel: np.ndarray,
    st: dict[str, Any],
    ks: tuple[int, ...],
    unknown: str,
    bucket_edges: tuple[int, int],
    graded: bool | str,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Per-user metrics and summary of one model from its top-K lists (``st["items"]``)."""
    t_metrics = time.perf_counter()
    known, rows = st["known"], st["rows"]
    n_skipped = int(users.size - rows.size)
    if n_skipped:
        users, known = users[rows], known[rows]
        ip, pos = _rows_of(ip, np.arange(ix.size, dtype=np.int32), rows)
        ix, gains_rel = ix[pos], gains_rel[pos]
    n_rel_all = np.diff(ip)
    kmax = ks[-1]
    rec = st["items"]
    gains = M.hit_matrix(rec, ip, ix, None if graded is False else gains_rel)
    if gains.shape[1] < kmax:  # catalogue smaller than K: pad with misses
        gains = np.pad(gains, ((0, 0), (0, kmax - gains.shape[1])))
        rec = np.pad(rec, ((0, 0), (0, kmax - rec.shape[1])), constant_values=-1)
    hits = (gains > 0).astype(np.float64)
    ideal = None if graded is False else M.ideal_gains(ip, gains_rel, kmax)
    n_train = history.user_counts()[users] if users.size else np.zeros(0, np.int64)
    cols: dict[str, Any] = {
        "model": [label] * users.size,
        "user": users.astype(np.int64),
        "user_raw": target.user_map.to_raw(users),
        "n_train": n_train.astype(np.int64),
        "n_relevant": n_rel_all.astype(np.int64),
        "bucket": bucket_labels(n_train, bucket_edges).astype(str),
        "fallback": ~known,
    }
    summary: dict[str, float] = {}
    item_pop = history.item_counts()
    n_hist_users = int((history.user_counts() > 0).sum())
    masks = _genre_masks(history)
    for kk in ks:
        per = {
            "precision": M.precision_at_k(hits, kk),
            "recall": M.recall_at_k(hits, n_rel_all, kk),
            "ndcg": M.ndcg_at_k(gains, n_rel_all, kk, ideal),
            "map": M.average_precision_at_k(hits, n_rel_all, kk),
            "mrr": M.reciprocal_rank_at_k(hits, kk),
            "hit": M.hit_rate_at_k(hits, kk),
        }
        for name, v in per.items():
            col = f"{name}@{kk}"
            cols[col] = v
            summary[col], summary[col + "_se"] = mean_se(v)
        lists = rec[:, :kk]
        summary[f"coverage@{kk}"] = M.catalog_coverage(lists, history.n_items)
        summary[f"avg_popularity@{kk}"] = M.average_popularity(lists, item_pop)
        summary[f"novelty@{kk}"] = M.novelty(lists, item_pop, max(n_hist_users, 1))
        div = M.intra_list_diversity(lists, masks)
        summary[f"diversity@{kk}"] = float(np.nanmean(div)) if np.isfinite(div).any() else math.nan
        summary[f"gini@{kk}"] = M.gini_index(lists, history.n_items)
    summary["users_evaluated"] = float(users.size)
    summary["users_personalized"] = float(known.sum())
    summary["users_fallback"] = float((~known).sum())
    summary["users_skipped"] = float(n_skipped)
    if model.rating_model and target.n_ratings:
        tu, ti, tr = target.users, target.items, target.ratings
        if unknown == "skip":
            ok = (model.user_count_[tu] > 0) & (model.item_count_[ti] > 0)
            tu, ti, tr = tu[ok], ti[ok], tr[ok]
        pred, fb = model.predict(
            tu, ti, unknown="error" if unknown == "error" else "fallback", return_fallback=True
        )
        summary["rmse"] = M.rmse(pred, tr)
        summary["mae"] = M.mae(pred, tr)
        summary["rating_pairs"] = float(tr.size)
        summary["rating_fallbacks"] = float(np.asarray(fb).sum())
    summary["score_s"] = st["score_s"]
    summary["topk_s"] = st["topk_s"]
    summary["metrics_s"] = time.perf_counter() - t_metrics
    return pl.DataFrame(cols), summary


def _genre_masks(ds: Dataset) -> np.ndarray:
    key = "_eval_genre_masks"
    if key not in ds.__dict__:
        ds.__dict__[key] = M.genre_masks(ds.item_table["genres"].to_list())
    return ds.__dict__[key]


class _StderrProgress:
    """'evaluating <model>: done/total users, ETA' on one terminal line."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, label: str, done: int, total: int) -> None:
        if done >= total:
            sys.stderr.write("\r\033[K")
        else:
            left = eta(self.start, done, total)
            sys.stderr.write(f"\r\033[Kevaluating {label}: {done:,}/{total:,} users {left}")
        sys.stderr.flush()


def evaluate(
    models: Mapping[str, Recommender],
    split: Split,
    *,
    part: str = "test",
    k: Any = (5, 10, 20),
    threshold: float = 4.0,
    fit: bool = True,
    unknown: str = "fallback",
    bucket_edges: tuple[int, int] = (20, 100),
    batch_size: int | None = None,
    graded: bool | str = False,
    progress: bool | Progress | None = None,
) -> EvalResult:
    """Fit (optionally) and evaluate every model on one split, on the same users.

    Parameters
    ----------
    models : mapping label -> Recommender
    split : Split
    part : {"test", "validation"}
        Whose ratings >= ``threshold`` form the relevant sets; training items are excluded.
    k : int or sequence of int
        List lengths; every metric is computed at each.
    threshold : float
        A rating >= threshold is relevant.
    fit : bool
        Fit each model on ``split.train`` first (else they must already be fitted on it).
    unknown : {"fallback", "skip", "error"}
        Users without training history: served by the model's fallback and counted
        (``users_fallback``), left out and counted (``users_skipped``), or an error.
    bucket_edges : (int, int)
        Training-activity buckets: cold < edges[0] <= medium < edges[1] <= warm.
    batch_size : int or None
        Users scored at once (memory ~ batch_size x n_items x 4 bytes); None derives it
        from the catalogue size (:func:`batch_users`).
    graded : bool or {"shifted", "rating"}
        Graded NDCG gains (rating - threshold + 1, or the rating); binary when False.
    progress : bool or callable(label, done, total), optional
        True prints to stderr when it is a terminal; None/False stays quiet.
    """
    if part not in ("test", "validation"):
        raise ConfigError(f"part must be 'test' or 'validation', got {part!r}")
    if not models:
        raise ConfigError("give at least one model to evaluate")
    target = split.test if part == "test" else split.validation
    if target.n_ratings == 0:
        raise ConfigError(f"the split has no {part} ratings; choose a split that fills it")
    ks = _check_k(k)
    edges = tuple(int(e) for e in bucket_edges)
    if len(edges) != 2:
        raise ConfigError(f"bucket_edges must be two counts, got {bucket_edges!r}")
    if progress is True:
        progress = _StderrProgress() if sys.stderr.isatty() else None
    elif progress is False:
        progress = None
    if not np.any(target.ratings >= threshold):
        raise ConfigError(f"no {part} rating is >= threshold {threshold}; lower the threshold")
    fit_s: dict[str, float] = {}
    for label, model in models.items():
        fit_s[str(label)] = math.nan
        if fit:
            t0 = time.perf_counter()
            model.fit(split.train)
            fit_s[str(label)] = time.perf_counter() - t0
        else:
            model._require_fitted()
    got = evaluate_models(
        {str(label): m for label, m in models.items()},
        target,
        history=split.train,
        exclude=split.train,
        k=ks,
        threshold=threshold,
        unknown=unknown,
        bucket_edges=edges,  # type: ignore[arg-type]
        batch_size=batch_size,
        graded=graded,
        progress=progress,  # type: ignore[arg-type]
    )
    frames, summary = [], {}
    for label, (per_user, s) in got.items():
        s["fit_s"] = fit_s[label]
        frames.append(per_user)
        summary[label] = s
    return EvalResult(
        per_user=pl.concat(frames),
        summary=summary,
        k=ks,
        threshold=float(threshold),
        part=part,
        bucket_edges=edges,  # type: ignore[arg-type]
        meta={"split": split.kind, "split_params": dict(split.params), "graded": graded},
    )


# -- saving lists -----------------------------------------------------------------------------
def save_recommendations(
    model: Recommender,
    split_or_users: Split | Any,
    path: str | os.PathLike,
    k: int = 10,
    item_map: IdMap | None = None,
    user_map: IdMap | None = None,
    *,
    batch_size: int | None = None,
) -> int:
    """Write every user's top-``k`` (userId, rank, movieId, score) to CSV or parquet.

    ``split_or_users`` is a Split (all users of its id map: those without training history
    get the model's fallback; training items are excluded) or an array of dense user
    indices (the model's seen items are excluded). Raw ids come from the maps (by default
    the split's). The format follows the extension (.csv or .parquet); the file is written
    to a temporary file in the same folder and renamed. Returns the number of rows.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in (".csv", ".parquet"):
        raise ConfigError(f"recommendations file must end with .csv or .parquet, got {path.name}")
    model._require_fitted()
    batch_size = batch_users(model.n_items_) if batch_size is None else int(batch_size)
    if isinstance(split_or_users, Split):
        item_map = item_map or split_or_users.train.item_map
        user_map = user_map or split_or_users.train.user_map
        users = np.arange(split_or_users.train.n_users, dtype=np.int64)
        exclude: Dataset | None = split_or_users.train
    else:
        users = np.atleast_1d(np.asarray(split_or_users, dtype=np.int64))
        exclude = None
    if item_map is None or user_map is None:
        raise ConfigError("give item_map and user_map to write raw ids")
    if exclude is not None:
        items, scores = top_k_lists(model, users, k, exclude=exclude, batch_size=batch_size)
    else:
        items, scores = model.recommend(users, k, exclude_seen=True, batch_size=batch_size)
    n, kk = items.shape
    ok = (items >= 0).ravel()
    flat_items = items.ravel()[ok]
    df = pl.DataFrame(
        {
            "userId": np.repeat(user_map.to_raw(users), kk)[ok],
            "rank": np.tile(np.arange(1, kk + 1, dtype=np.int32), n)[ok],
            "movieId": item_map.to_raw(flat_items),
            "score": scores.ravel()[ok],
        }
    )
    write_table(df, path, "csv" if ext == ".csv" else "parquet")
    return df.height


# -- the CLI's one call -----------------------------------------------------------------------
def _recs_path(save_recs: str | os.PathLike, label: str, n_models: int) -> Path:
    p = Path(save_recs)
    return p if n_models == 1 else p.with_name(f"{p.stem}.{label}{p.suffix}")


def run_evaluate(
    dataset: Dataset,
    split: str | Split = "temporal_per_user",
    model_names: str | Sequence[str] = ("popularity",),
    k_list: Any = (5, 10, 20),
    threshold: float = 4.0,
    as_json: bool = False,
    save_recs: str | os.PathLike | None = None,
) -> str:
    """Split ``dataset``, fit and evaluate the named models, return the text to print.

    ``split`` is a split name (default params) or a ready Split; ``model_names`` a list or
    a comma-separated string of registry names (unknown names raise ConfigError); models
    use their default params. Returns the results table and the activity-bucket table, or
    the JSON of :meth:`EvalResult.to_json` with ``as_json``. With ``save_recs`` every
    user's top-K (largest K) is written there; with several models the model name goes
    before the extension (``recs.popularity.csv``).
    """
    from movierec.models import make_model
    from movierec.split import make_split

    names = (
        [n.strip() for n in model_names.split(",")]
        if isinstance(model_names, str)
        else [str(n).strip() for n in model_names]
    )
    names = [n for n in names if n]
    if not names:
        raise ConfigError("give at least one model name")
    if len(set(names)) != len(names):
        raise ConfigError(f"model names repeat: {names}")
    models = {n: make_model(n) for n in names}  # raises ConfigError on unknown names
    ks = _check_k(k_list)
    if save_recs is not None and Path(save_recs).suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--save-recs must end with .csv or .parquet, got {save_recs}")
    sp = make_split(dataset, split) if isinstance(split, str) else split
    result = evaluate(models, sp, k=ks, threshold=threshold, progress=True if not as_json else None)
    written = {}
    if save_recs is not None:
        for n, m in models.items():
            p = _recs_path(save_recs, n, len(models))
            save_recommendations(m, sp, p, ks[-1])
            written[n] = str(p)
    if as_json:
        out = result.to_json()
        out["dataset"] = dataset.label
        if written:
            out["recommendations"] = written
        return json.dumps(out, indent=2)
    s = sp.train
    n_eval = int(next(iter(result.summary.values()))["users_evaluated"])
    head = (
        f"{dataset.label}: split {sp.kind}, {s.n_ratings} training ratings; "
        f"{result.part} relevance: rating >= {threshold:g}; {n_eval} users evaluated, "
        f"full catalogue of {s.n_items} movies, training items excluded"
    )
    parts = [head, "", result.table(), "", format_buckets(result)]
    if written:
        parts += ["", *(f"recommendations of {n}: {p}" for n, p in written.items())]
    return "\n".join(parts)
