"""The full-catalogue top-N evaluator: semantics on tiny data, and the ml-100k reference."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from contract import COLD_USER, checkerboard

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError, UnknownIdError
from movierec.evaluation.evaluator import (
    EvalResult,
    evaluate,
    format_buckets,
    relevant_sets,
    run_evaluate,
    save_recommendations,
    top_k_lists,
)
from movierec.models.base import Recommender
from movierec.models.baselines import Biases
from movierec.models.popularity import Popularity
from movierec.split import Split, random_holdout, temporal_per_user


class Oracle(Recommender):
    """Scores from a fixed user x item table (test helper)."""

    name = "oracle"

    def __init__(self, table: np.ndarray | None = None) -> None:
        self.table = table

    def _fit(self, train: Dataset) -> None:
        pass

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.table, np.float32)[users]


@pytest.fixture(scope="module")
def split() -> Split:
    full, _ = checkerboard()
    s = random_holdout(full, test_fraction=0.25, val_fraction=0.1, seed=0)
    # the cold user keeps its test ratings but has no training history
    train = s.train.subset(s.train.users != COLD_USER, name="cb:train")
    return Split(train, s.validation, s.test, "custom")


def relevance_table(part: Dataset, threshold: float = 4.0) -> np.ndarray:
    t = np.zeros((part.n_users, part.n_items), np.float32)
    m = part.ratings >= threshold
    t[part.users[m], part.items[m]] = part.ratings[m]
    return t


def brute_force(rec: np.ndarray, rel: set, k: int) -> dict[str, float]:
    h = np.array([float(i in rel) for i in rec[:k]])
    disc = 1 / np.log2(np.arange(2, k + 2))
    idcg = disc[: min(len(rel), k)].sum()
    prec = np.cumsum(h) / np.arange(1, k + 1)
    first = np.flatnonzero(h)
    return {
        "precision": h.sum() / k,
        "recall": h.sum() / len(rel),
        "ndcg": (h * disc).sum() / idcg,
        "map": (prec * h).sum() / min(len(rel), k),
        "mrr": 1 / (first[0] + 1) if first.size else 0.0,
        "hit": float(h.any()),
    }


def test_relevant_sets(split: Split) -> None:
    users, ip, ix, g = relevant_sets(split.test, 4.0)
    te = split.test
    want = np.unique(te.users[te.ratings >= 4])
    assert np.array_equal(users, want)
    for r, u in enumerate(users):
        got = set(ix[ip[r] : ip[r + 1]].tolist())
        assert got == set(te.items[(te.users == u) & (te.ratings >= 4)].tolist())
    assert np.all(g == 1)
    _, _, _, g2 = relevant_sets(split.test, 4.0, graded=True)
    assert set(np.unique(g2).tolist()) <= {1.0, 2.0}
    with pytest.raises(ConfigError):
        relevant_sets(split.test, 4.0, graded="bogus")


def test_matches_brute_force_per_user(split: Split) -> None:
    res = evaluate({"pop": Popularity()}, split, k=(3, 5))
    te = split.test
    model = Popularity().fit(split.train)
    pu = res.per_user
    assert pu.height == np.unique(te.users[te.ratings >= 4]).size
    seen = split.train.csr()
    for row in pu.iter_rows(named=True):
        u = row["user"]
        rel = set(te.items[(te.users == u) & (te.ratings >= 4)].tolist())
        # reference list: popularity order with the user's training items removed
        order = np.lexsort((np.arange(model.n_items_), -model.score([u])[0]))
        mine = set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
        rec = np.array([i for i in order if i not in mine])
        for k in (3, 5):
            for name, v in brute_force(rec, rel, k).items():
                assert row[f"{name}@{k}"] == pytest.approx(v), (u, name, k)
        assert row["n_relevant"] == len(rel)
        assert row["n_train"] == len(mine)
    s = res.summary["pop"]
    assert s["ndcg@5"] == pytest.approx(pu["ndcg@5"].mean())
    assert s["ndcg@5_se"] == pytest.approx(pu["ndcg@5"].std() / math.sqrt(pu.height))


def test_oracle_is_perfect_and_cold_user_is_counted(split: Split) -> None:
    oracle = Oracle(relevance_table(split.test))
    res = evaluate({"oracle": oracle}, split, k=(2, 5))
    pu = res.per_user
    warm = pu.filter(~pl.col("fallback"))
    n_rel = warm["n_relevant"].to_numpy()
    assert (warm["ndcg@5"] == 1.0).all() and (warm["mrr@5"] == 1.0).all()
    np.testing.assert_allclose(warm["precision@2"].to_numpy(), np.minimum(n_rel, 2) / 2)
    np.testing.assert_allclose(warm["recall@5"].to_numpy(), np.minimum(n_rel, 5) / n_rel)
    cold = pu.filter(pl.col("fallback"))
    assert cold["user"].to_list() == [COLD_USER]
    assert cold["n_train"].to_list() == [0] and cold["bucket"].to_list() == ["cold"]
    s = res.summary["oracle"]
    assert s["users_evaluated"] == pu.height
    assert s["users_fallback"] == 1 and s["users_personalized"] == pu.height - 1


def test_unknown_policies(split: Split) -> None:
    skip = evaluate({"pop": Popularity()}, split, k=5, unknown="skip")
    fb = evaluate({"pop": Popularity()}, split, k=5, unknown="fallback")
    assert skip.summary["pop"]["users_skipped"] == 1
    assert skip.per_user.height == fb.per_user.height - 1
    assert COLD_USER not in skip.per_user["user"].to_list()
    with pytest.raises(UnknownIdError):
        evaluate({"pop": Popularity()}, split, k=5, unknown="error")
    with pytest.raises(ConfigError):
        evaluate({"pop": Popularity()}, split, k=5, unknown="guess")


def test_training_items_excluded_and_unseen_relevant_items_count(split: Split) -> None:
    te = split.test
    rel_rows = np.flatnonzero(te.ratings >= 4)
    item = int(te.items[rel_rows[0]])
    user = int(te.users[rel_rows[0]])
    train = split.train.subset(split.train.items != item)  # nobody rated it in training
    s2 = Split(train, split.validation, split.test, "custom")
    # a model that loves exactly the training items: all must be skipped
    table = relevance_table(train, threshold=0.0) + 100.0 * (relevance_table(train, 0.0) > 0)
    model = Oracle(table).fit(train)
    items, _ = top_k_lists(model, np.arange(train.n_users), 10, exclude=train)
    seen = train.csr()
    for u in range(train.n_users):
        assert not set(items[u].tolist()) & set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]])
    res = evaluate({"pop": Popularity()}, s2, k=5)
    row = res.per_user.filter(pl.col("user") == user)
    want = int(((te.users == user) & (te.ratings >= 4)).sum())
    assert row["n_relevant"].item() == want


def test_rating_model_gets_rmse_and_ranks_by_prediction(split: Split) -> None:
    res = evaluate({"biases": Biases(), "pop": Popularity()}, split, k=5)
    s = res.summary["biases"]
    m = Biases().fit(split.train)
    pred = m.predict(split.test.users, split.test.items)
    assert s["rmse"] == pytest.approx(float(np.sqrt(np.mean((pred - split.test.ratings) ** 2))))
    assert s["mae"] == pytest.approx(float(np.mean(np.abs(pred - split.test.ratings))))
    cold_item = split.train.item_counts()[split.test.items] == 0
    assert s["rating_fallbacks"] == ((split.test.users == COLD_USER) | cold_item).sum() > 0
    assert "rmse" not in res.summary["pop"]
    items, _ = top_k_lists(m, [0], 5, exclude=split.train)
    assert np.all(np.diff(m.score([0])[0][items[0]]) <= 0)


def test_validation_part_and_beyond_accuracy(split: Split) -> None:
    res = evaluate({"pop": Popularity()}, split, part="validation", k=(1, 3))
    va = split.validation
    assert res.part == "validation"
    assert res.per_user.height == np.unique(va.users[va.ratings >= 4]).size
    s = res.summary["pop"]
    assert 0 < s["coverage@3"] <= 1 and 0 <= s["gini@3"] <= 1
    assert 0 <= s["diversity@3"] <= 1 and s["novelty@3"] > 0
    assert math.isnan(s["diversity@1"])  # one item per list has no pair
    # the catalogue metrics are those of the evaluated users' lists, against training counts
    tr = split.train
    model = Popularity().fit(tr)
    lists, _ = top_k_lists(model, res.per_user["user"].to_numpy(), 3, exclude=tr)
    pop = tr.item_counts()
    assert s["coverage@3"] == pytest.approx(np.unique(lists).size / tr.n_items)
    assert s["avg_popularity@3"] == pytest.approx(pop[lists].mean())
    n_users = int((tr.user_counts() > 0).sum())
    assert s["novelty@3"] == pytest.approx(np.mean(-np.log2(np.maximum(pop[lists], 1) / n_users)))
    # popularity shows everyone nearly the same few movies: exposure is concentrated
    assert s["coverage@3"] < 0.5 and s["gini@3"] > 0.5
    with pytest.raises(ConfigError):
        evaluate({"pop": Popularity()}, split, part="train")


def test_graded_ndcg_differs_and_stays_bounded(split: Split) -> None:
    res = evaluate({"pop": Popularity()}, split, k=5, graded=True)
    binary = evaluate({"pop": Popularity()}, split, k=5).per_user
    nd = res.per_user["ndcg@5"].to_numpy()
    assert np.all((nd >= 0) & (nd <= 1))
    # same users, same lists, the same hits; only the gains differ (5 -> 2, 4 -> 1)
    assert res.per_user["user"].to_list() == binary["user"].to_list()
    np.testing.assert_array_equal(res.per_user["hit@5"], binary["hit@5"])
    assert (nd != binary["ndcg@5"].to_numpy()).sum() >= 3
    # one user by hand: DCG of the list's gains over the ideal DCG of her gains
    te, model = split.test, Popularity().fit(split.train)
    items, _ = top_k_lists(model, res.per_user["user"].to_numpy(), 5, exclude=split.train)
    disc = 1 / np.log2(np.arange(2, 7))
    for row, u in enumerate(res.per_user["user"].to_list()):
        mine = te.users == u
        pairs = zip(te.items[mine], te.ratings[mine], strict=True)
        gain = {int(i): float(r) - 3.0 for i, r in pairs if r >= 4}
        got = np.array([gain.get(int(i), 0.0) for i in items[row]])
        ideal = np.sort(list(gain.values()))[::-1][:5]
        if got.any():
            want = (got * disc).sum() / (ideal * disc[: ideal.size]).sum()
            assert nd[row] == pytest.approx(want)
            break
    else:
        raise AssertionError("no user with a hit")
    oracle = Oracle(relevance_table(split.test))
    perfect = evaluate({"o": oracle}, split, k=5, graded=True).per_user
    assert (perfect.filter(~pl.col("fallback"))["ndcg@5"] == 1.0).all()


def test_result_views(split: Split) -> None:
    res = evaluate({"pop": Popularity(), "biases": Biases()}, split, k=(5, 10))
    text = res.table()
    lines = text.splitlines()
    assert lines[0].split()[0] == "model" and "ndcg@10" in lines[0]
    order = [ln.split()[0] for ln in lines[2:]]
    best = max(res.summary, key=lambda m: res.summary[m]["ndcg@10"])
    assert order[0] == best and set(order) == {"pop", "biases"}
    with pytest.raises(ConfigError):
        res.table(["nope@10"])
    b = res.buckets("ndcg@10")
    assert set(b.columns) == {"model", "bucket", "mean", "se", "n"}
    assert b.filter(pl.col("model") == "pop")["n"].sum() == res.summary["pop"]["users_evaluated"]
    c = res.compare("pop", "biases", "ndcg@10")
    assert c["n"] == res.summary["pop"]["users_evaluated"]
    assert c["mean_diff"] == pytest.approx(
        res.summary["pop"]["ndcg@10"] - res.summary["biases"]["ndcg@10"]
    )
    assert 0 <= c["t_pvalue"] <= 1 and 0 <= c["wilcoxon_pvalue"] <= 1
    js = res.to_json()
    json.dumps(js, allow_nan=False)
    assert js["summary"]["pop"]["ndcg@10"] == pytest.approx(res.summary["pop"]["ndcg@10"])
    assert set(js["buckets"]["ndcg@10"]["pop"]) <= {"cold", "medium", "warm"}
    fb = format_buckets(res)
    assert "cold (<20)" in fb and "pop" in fb
    assert isinstance(res, EvalResult)


def test_fit_false_requires_fitted_models(split: Split) -> None:
    with pytest.raises(ConfigError):
        evaluate({"pop": Popularity()}, split, fit=False)
    m = Popularity().fit(split.train)
    res = evaluate({"pop": m}, split, fit=False, k=5)
    assert math.isnan(res.summary["pop"]["fit_s"]) and res.per_user.height > 0


def test_bad_arguments(split: Split) -> None:
    with pytest.raises(ConfigError):
        evaluate({"pop": Popularity()}, split, k=(0,))
    with pytest.raises(ConfigError):
        evaluate({"pop": Popularity()}, split, threshold=6.0)
    with pytest.raises(ConfigError):
        evaluate({}, split)


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_save_recommendations(split: Split, tmp_path: Path, ext: str) -> None:
    m = Popularity().fit(split.train)
    path = tmp_path / f"recs{ext}"
    n = save_recommendations(m, split, path, 4)
    df = pl.read_csv(path) if ext == ".csv" else pl.read_parquet(path)
    assert df.columns == ["userId", "rank", "movieId", "score"] and df.height == n
    assert df["userId"].n_unique() == split.train.n_users
    assert set(df["rank"].unique().to_list()) == {1, 2, 3, 4}
    train = split.train
    seen = set(
        zip(
            train.user_map.to_raw(train.users).tolist(),
            train.item_map.to_raw(train.items).tolist(),
            strict=True,
        )
    )
    assert not seen & set(zip(df["userId"].to_list(), df["movieId"].to_list(), strict=True))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left
    with pytest.raises(ConfigError):
        save_recommendations(m, split, tmp_path / "recs.txt", 4)


def test_run_evaluate(split: Split, tmp_path: Path) -> None:
    full, _ = checkerboard()
    text = run_evaluate(full, split, "popularity,biases", (5, 10), 4.0, False, None)
    assert "popularity" in text and "biases" in text and "cold (<20)" in text
    js = json.loads(
        run_evaluate(full, split, ["popularity", "globalmean"], [5], 4.0, True, tmp_path / "r.csv")
    )
    assert set(js["summary"]) == {"popularity", "globalmean"}
    assert Path(js["recommendations"]["popularity"]).name == "r.popularity.csv"
    assert (tmp_path / "r.globalmean.csv").exists()
    one = run_evaluate(full, "temporal_per_user", "popularity", (5,), 4.0, True, None)
    assert json.loads(one)["summary"]["popularity"]["users_evaluated"] > 0
    with pytest.raises(ConfigError):
        run_evaluate(full, split, "popularity,nosuchmodel", (5,), 4.0, False, None)


def test_ml100k_popularity_reference(ml100k) -> None:
    """The implicit-library reference: temporal per-user split, rating >= 4, K = 10."""
    s = temporal_per_user(ml100k, n_val=1, n_test=5, min_train=5)
    res = evaluate({"pop": Popularity(threshold=4.0)}, s, k=10, threshold=4.0)
    summ = res.summary["pop"]
    assert summ["users_evaluated"] == 812 and summ["users_fallback"] == 0
    assert abs(summ["ndcg@10"] - 0.057) < 0.003
    assert abs(summ["recall@10"] - 0.077) < 0.003


def test_batch_size_follows_the_catalogue() -> None:
    from movierec.evaluation.evaluator import batch_users

    assert batch_users(59047) < batch_users(1682) < batch_users(500) == 4096
    assert batch_users(59047) * 59047 * 4 < 32 << 20  # below glibc's largest mmap threshold
    assert batch_users(10**9) == 64


def test_one_pass_equals_each_model_alone_and_scores_shared_sub_models_once() -> None:
    from movierec.evaluation.evaluator import evaluate_model, evaluate_models
    from movierec.models.ease import EASE
    from movierec.models.hybrid import WeightedHybrid, fit_shared, shared_fits

    split = random_holdout(checkerboard()[0], test_fraction=0.3, seed=0)
    train = split.train
    with shared_fits():
        ease = fit_shared(EASE(l2=10.0), train)
        mix = fit_shared(WeightedHybrid(models={"ease": {"l2": 10.0}, "popularity": {}}), train)
    assert mix.models_[0] is ease
    pop = Popularity().fit(train)
    models = {"ease": ease, "pop": pop, "mix": mix}
    calls = []
    orig = EASE._score
    ease._score = lambda u: calls.append(1) or orig(ease, u)  # type: ignore[method-assign]
    kw = {"history": train, "exclude": train, "k": (3, 5)}
    got = evaluate_models(models, split.test, batch_size=7, **kw)
    n_batches = -(-int(got["ease"][1]["users_evaluated"]) // 7)
    assert len(calls) == n_batches  # ease scored once per block, for itself and for mix
    for label, m in models.items():
        alone = evaluate_model(m, split.test, label=label, batch_size=1000, **kw)
        assert got[label][0].equals(alone[0])
        for key in ("ndcg@5", "recall@3", "users_evaluated", "coverage@5"):
            assert got[label][1][key] == alone[1][key]


def test_eta_and_progress_of_the_one_pass() -> None:
    import time

    from movierec.evaluation.evaluator import eta, evaluate_models

    assert eta(time.perf_counter(), 0, 10) == ""
    assert eta(time.perf_counter() - 10.0, 1, 3) == "20s left"
    assert eta(time.perf_counter() - 60.0, 1, 4) == "3m00s left"
    split = random_holdout(checkerboard()[0], test_fraction=0.3, seed=0)
    seen = []
    evaluate_models(
        {"a": Popularity().fit(split.train), "b": Popularity().fit(split.train)},
        split.test,
        history=split.train,
        exclude=split.train,
        k=5,
        batch_size=10,
        progress=lambda label, done, total: seen.append((label, done, total)),
    )
    total = seen[-1][2]
    assert seen[-1][1] == total and [x[0] for x in seen[:2]] == ["a", "b"]
    assert [x[1] for x in seen] == sorted(x[1] for x in seen)
