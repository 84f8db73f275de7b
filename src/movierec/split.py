"""Leak-proof splits of a Dataset into train / validation / test.

Every split returns :class:`Split` objects whose parts share the full data set's id maps,
so a user or movie that appears only in validation or test keeps its index and is counted
as *cold* in the report; nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.kernels.sparse import coo_to_csr_order, in_sorted
from movierec.kernels.split import per_user_last


@dataclass(eq=False)
class Split:
    """Train / validation / test parts of one data set, and a report of what the split did."""

    train: Dataset
    validation: Dataset
    test: Dataset
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    def report(self) -> dict[str, Any]:
        """Sizes, cold users/movies per part, mean rating per part and leakage checks."""
        tr = self.train
        tr_users = tr.user_counts() > 0
        tr_items = tr.item_counts() > 0
        parts: dict[str, Any] = {}
        for name, part in (("train", tr), ("validation", self.validation), ("test", self.test)):
            u = np.unique(part.users)
            i = np.unique(part.items)
            parts[name] = {
                "ratings": part.n_ratings,
                "users": int(u.size),
                "movies": int(i.size),
                "cold_users": 0 if name == "train" else int((~tr_users[u]).sum()),
                "cold_movies": 0 if name == "train" else int((~tr_items[i]).sum()),
                "mean_rating": float(part.ratings.mean()) if part.n_ratings else None,
                "time_min": int(part.timestamps.min()) if part.n_ratings else None,
                "time_max": int(part.timestamps.max()) if part.n_ratings else None,
            }
        return {
            "kind": self.kind,
            "params": self.params,
            "parts": parts,
            "leaks": leaks(self),
        }


def _pairs(ds: Dataset) -> np.ndarray:
    return ds.users.astype(np.int64) * ds.n_items + ds.items


def leaks(split: Split) -> dict[str, int]:
    """Counts that must be zero: (user, movie) pairs in two parts, and time-order breaks."""
    tr, va, te = _pairs(split.train), _pairs(split.validation), _pairs(split.test)
    tr.sort()
    va.sort()
    out = {
        "pairs_train_validation": int(np.count_nonzero(in_sorted(va, tr))),
        "pairs_train_test": int(np.count_nonzero(in_sorted(te, tr))),
        "pairs_validation_test": int(np.count_nonzero(in_sorted(te, va))),
    }
    if split.kind == "temporal_global":
        t = [p.timestamps for p in (split.train, split.validation, split.test) if p.n_ratings]
        out["time_order_breaks"] = sum(
            int(a.max() >= b.min()) for a, b in zip(t[:-1], t[1:], strict=True)
        )
    return out


def _from_parts(ds: Dataset, part: np.ndarray, kind: str, params: dict) -> Split:
    return Split(
        ds.subset(part == 0, name=f"{ds.name}:train"),
        ds.subset(part == 1, name=f"{ds.name}:validation"),
        ds.subset(part == 2, name=f"{ds.name}:test"),
        kind,
        params,
    )


def temporal_global(
    ds: Dataset, fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
) -> Split:
    """Split by timestamp over the whole data set, in strict time order.

    Two cut times t1 <= t2 are taken at the cumulative fractions; train holds ratings with
    timestamp <= t1, validation t1 < ts <= t2, test ts > t2. All ratings sharing a boundary
    timestamp go to the earlier part, so every validation timestamp is strictly later than
    every training timestamp (and so on), and the part sizes may differ slightly from the
    fractions when many ratings share one second.
    """
    f = np.asarray(fractions, dtype=float)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1) > 1e-6 or f[0] <= 0:
        raise ConfigError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    ts = ds.timestamps
    n = ts.size
    cuts = []
    for c in np.cumsum(f)[:2]:
        k = int(round(c * n)) - 1
        cuts.append(np.partition(ts, k)[k] if 0 <= k < n else (ts.min() - 1 if k < 0 else ts.max()))
    t1, t2 = cuts
    part = np.where(ts <= t1, 0, np.where(ts <= t2, 1, 2)).astype(np.int8)
    return _from_parts(ds, part, "temporal_global", {"fractions": [float(x) for x in f]})


def temporal_per_user(ds: Dataset, n_val: int = 1, n_test: int = 5, min_train: int = 5) -> Split:
    """Each user's last ``n_test`` ratings go to test and the ``n_val`` before them to validation.

    Ratings are ordered by (timestamp, movie index) within a user. Users with fewer than
    ``min_train + n_val + n_test`` ratings stay entirely in train (and are counted).
    """
    if min(n_val, n_test, min_train) < 0:
        raise ConfigError("n_val, n_test and min_train must be >= 0")
    indptr, order = coo_to_csr_order(ds.users, ds.n_users)
    part = per_user_last(
        indptr, order, ds.timestamps, ds.items, n_val, n_test, min_train, ds.n_items
    )
    params = {"n_val": n_val, "n_test": n_test, "min_train": min_train}
    s = _from_parts(ds, part, "temporal_per_user", params)
    short = int((np.diff(indptr) < min_train + n_val + n_test).sum())
    s.params["users_kept_in_train"] = short
    return s


def random_holdout(
    ds: Dataset, test_fraction: float = 0.2, seed: int = 0, val_fraction: float = 0.0
) -> Split:
    """Random split of the ratings: ``test_fraction`` to test, ``val_fraction`` to validation."""
    if not (0 < test_fraction < 1 and 0 <= val_fraction < 1 and test_fraction + val_fraction < 1):
        raise ConfigError("test_fraction and val_fraction must lie in (0, 1) and sum below 1")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(ds.n_ratings)
    n_te = int(round(test_fraction * ds.n_ratings))
    n_va = int(round(val_fraction * ds.n_ratings))
    part = np.zeros(ds.n_ratings, dtype=np.int8)
    part[perm[:n_te]] = 2
    part[perm[n_te : n_te + n_va]] = 1
    params = {"test_fraction": test_fraction, "val_fraction": val_fraction, "seed": seed}
    return _from_parts(ds, part, "random_holdout", params)


def kfold(ds: Dataset, k: int = 5, seed: int = 0) -> list[Split]:
    """k folds that partition the ratings; split j tests on fold j and trains on the rest."""
    if k < 2 or k > ds.n_ratings:
        raise ConfigError(f"k must be between 2 and the number of ratings, got {k}")
    perm = np.random.default_rng(seed).permutation(ds.n_ratings)
    fold = np.empty(ds.n_ratings, dtype=np.int64)
    fold[perm] = np.arange(ds.n_ratings) % k
    out = []
    for j in range(k):
        part = np.where(fold == j, 2, 0).astype(np.int8)
        out.append(_from_parts(ds, part, "kfold", {"k": k, "fold": j, "seed": seed}))
    return out


SPLITS = {
    "temporal_global": temporal_global,
    "temporal_per_user": temporal_per_user,
    "random_holdout": random_holdout,
}


def make_split(ds: Dataset, kind: str, **params: Any) -> Split:
    """Run the split named ``kind`` with ``params`` (config and CLI entry point)."""
    if kind not in SPLITS:
        raise ConfigError(f"unknown split {kind!r}; choose one of {sorted(SPLITS)} (or kfold)")
    try:
        return SPLITS[kind](ds, **params)
    except TypeError as e:
        raise ConfigError(f"bad parameters for split {kind!r}: {e}") from e
