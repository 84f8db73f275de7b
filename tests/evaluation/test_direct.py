"""Models ranked without dense score rows (dot products, neighbour products) give the same
lists, metrics and scores as the dense path: score every item, then topk_rows."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.data import load
from movierec.evaluation.evaluator import _dense_models, _direct, evaluate_models, top_k_lists
from movierec.kernels.sparse_dense import rows_times_csr
from movierec.kernels.topk import topk_rows, topk_sparse_product
from movierec.models import make_model
from movierec.split import temporal_per_user

DIRECT = {
    "popularity": {},
    "biases": {},
    "svd": {"n_factors": 8, "n_epochs": 5},
    "svdpp": {"n_factors": 4, "n_epochs": 2},
    "als": {"n_factors": 8, "n_epochs": 3},
    "nmf": {"n_factors": 5, "n_epochs": 5},
    "ials": {"factors": 8, "iterations": 3},
    "bpr": {"factors": 8, "iterations": 3},
    "itemknn": {"k": 20},
    "p3alpha": {"k": 20},
    "rp3beta": {"k": 20},
    "slim": {"k": 20},
    "sequential": {},  # pop_weight: a dense row added to the sparse product
    "ease": {"l2": 100.0, "max_items": 150},  # dense product on the kept items only
    "blend": {"models": {"svd": {"n_factors": 4, "n_epochs": 3}, "biases": {}}},
}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from movierec.data.synth import generate

    out = tmp_path_factory.mktemp("synth") / "ml"
    generate("ml-100k", out, scale=0.2, seed=3, force=True)
    ds = load(out, cache=False)
    return temporal_per_user(ds, n_test=3, n_val=1, min_train=3)


@pytest.fixture(scope="module")
def fitted(split):
    return {name: make_model(name, **p).fit(split.train) for name, p in DIRECT.items()}


def _dense(m):
    """The model with its direct paths switched off (instance attributes shadow them)."""
    m.dot_items = lambda: None
    m.neighbour_product = lambda: None
    return m


def _restore(m):
    del m.dot_items, m.neighbour_product


def test_every_listed_model_takes_a_direct_path(fitted):
    assert [name for name, m in fitted.items() if not _direct(m)] == []


def test_hybrids_on_dense_rows_keep_their_parts_dense(split):
    """The weighted hybrid reuses the score rows of its iALS (the standalone one, fitted
    once): that iALS is scored by dense rows too; rrf ranks its parts' candidate lists and
    the blend by dot products, so their parts need not be."""
    from movierec.models.hybrid import fit_shared, shared_fits

    parts = {"itemknn": {"k": 10}, "ials": {"factors": 4}}
    specs = {
        "ials": ("ials", {"factors": 4}),
        "svd": ("svd", {"n_factors": 4, "n_epochs": 2}),
        "itemknn": ("itemknn", {"k": 10}),
        "weighted": ("weighted", {"models": parts}),
        "rrf": ("rrf", {"models": {"itemknn": {"k": 10}, "svd": {"n_factors": 4, "n_epochs": 2}}}),
        "blend": ("blend", {"models": {"svd": {"n_factors": 4, "n_epochs": 2}}}),
        "content": ("content", {}),
    }
    with shared_fits():
        models = {k: fit_shared(make_model(n, **p), split.train) for k, (n, p) in specs.items()}
    assert models["weighted"].models_[1] is models["ials"]
    assert models["rrf"].models_[0] is models["weighted"].models_[0] is models["itemknn"]
    # itemknn is a part of both; the weighted hybrid's reuse of its rows keeps it dense
    assert set(_dense_models(models)) == {"ials", "itemknn", "weighted", "content"}


HYBRIDS = {
    "rrf": {"models": {"ials": {"factors": 8, "iterations": 3}, "itemknn": {"k": 20}}},
    # a part without a direct path (content: dense rows), three parts, unequal weights
    "rrf3": {
        "models": {"svd": {"n_factors": 4, "n_epochs": 3}, "content": {}, "slim": {"k": 10}},
        "weights": [0.5, 0.2, 0.3],
        "k": 10.0,
    },
    # 4 candidates for top-10 lists: every row is ranked from the dense fusion
    "rrf_few": {"models": {"itemknn": {"k": 20}, "biases": {}}, "candidates": 4},
    "switching": {"models": {"ials": {"factors": 8, "iterations": 3}, "content": {}}},
    "switching_pop": {"models": {"itemknn": {"k": 20}, "popularity": {}}, "min_ratings": 30},
}


@pytest.mark.parametrize("name", list(HYBRIDS))
def test_fusion_and_switching_equal_the_dense_path(split, name, monkeypatch):
    from movierec.evaluation import evaluator

    p = dict(HYBRIDS[name])
    m = make_model(name.split("_")[0].rstrip("3"), **p).fit(split.train)
    assert _direct(m)
    kw = dict(history=split.train, exclude=split.train, k=(5, 10))
    users = np.arange(m.n_users_)
    got = evaluate_models({name: m}, split.test, **kw)[name]
    got_lists = top_k_lists(m, users, 12, exclude=split.train)
    direct = evaluator._direct
    monkeypatch.setattr(evaluator, "_direct", lambda x: x is not m and direct(x))
    want = evaluate_models({name: m}, split.test, **kw)[name]
    want_lists = top_k_lists(m, users, 12, exclude=split.train)
    assert np.array_equal(got_lists[0], want_lists[0])
    np.testing.assert_array_equal(got_lists[1], want_lists[1])
    for col in ("ndcg@10", "recall@5", "map@10", "fallback"):
        assert np.array_equal(got[0][col].to_numpy(), want[0][col].to_numpy()), col
    if name == "switching_pop":  # both parts serve users
        warm = m.warm(users[m.known_users(users)])
        assert 0 < warm.sum() < warm.size


@pytest.mark.parametrize("name", list(DIRECT))
def test_evaluation_equals_the_dense_path(split, fitted, name):
    m = fitted[name]
    kw = dict(history=split.train, exclude=split.train, k=(5, 10))
    got = evaluate_models({name: m}, split.test, **kw)[name]
    _dense(m)
    try:
        want = evaluate_models({name: m}, split.test, **kw)[name]
    finally:
        _restore(m)
    for col in ("ndcg@10", "recall@5", "map@10", "fallback"):
        assert np.array_equal(got[0][col].to_numpy(), want[0][col].to_numpy()), col
    for key in ("coverage@10", "novelty@10", "gini@10"):
        assert got[1][key] == pytest.approx(want[1][key], rel=1e-12)
    assert got[1]["users_fallback"] == want[1]["users_fallback"]


@pytest.mark.parametrize("name", ["biases", "svd", "sequential", "ease", "blend", "itemknn"])
def test_top_k_lists_and_recommend_equal_the_dense_path(split, fitted, name):
    m = fitted[name]
    users = np.arange(m.n_users_)  # every user, those without history included
    i1, s1 = top_k_lists(m, users, 12, exclude=split.train)
    r1, rs1 = m.recommend(users, k=12)
    _dense(m)
    try:
        i2, s2 = top_k_lists(m, users, 12, exclude=split.train)
        r2, rs2 = m.recommend(users, k=12)
    finally:
        _restore(m)
    assert np.array_equal(i1, i2) and np.array_equal(r1, r2)
    np.testing.assert_allclose(s1, s2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rs1, rs2, rtol=1e-5, atol=1e-5)


def test_dot_items_are_rebuilt_after_a_refit(split):
    m = make_model("svd", n_factors=4, n_epochs=2, random_state=0).fit(split.train)
    first = m.dot_items()
    assert m.dot_items() is first  # built once per fit
    m.set_params(random_state=1).fit(split.train)
    assert m.dot_items() is not first
    np.testing.assert_allclose(
        m._dot_users(np.arange(5)) @ m.dot_items().T, m.score(np.arange(5)), atol=1e-4
    )


def _sparse_case(rng, n, m, density, negative):
    x = sp.random(n, m, density=density, format="csr", random_state=rng, dtype=np.float32)
    s = sp.random(m, m, density=density, format="csr", random_state=rng, dtype=np.float32)
    if negative:
        s.data -= 0.5
    return x, s


@pytest.mark.parametrize("negative", [False, True])
@pytest.mark.parametrize("with_base", [False, True])
@pytest.mark.parametrize("density", [0.01, 0.2])
def test_topk_sparse_product_equals_topk_rows_of_the_product(negative, with_base, density):
    """Sparse rows touch few items (the whole row is then ranked: untouched items score
    their base) or many; negative weights put touched items below the untouched ones."""
    rng = np.random.default_rng(int(negative) * 4 + int(with_base) * 2 + int(density > 0.1))
    n, m, k = 60, 300, 15
    x, s = _sparse_case(rng, n, m, density, negative)
    rows = rng.permutation(n)[:40].astype(np.int64)
    excl = sp.random(n, m, density=0.05, format="csr", random_state=rng)
    eip, eix = excl.indptr.astype(np.int64), excl.indices.astype(np.int32)
    base = (rng.random(m).astype(np.float32) * 0.01) if with_base else np.zeros(0, np.float32)
    dense = np.zeros((rows.size, m), np.float32)
    rows_times_csr(x.indptr, x.indices, x.data, rows, s.indptr, s.indices, s.data, dense)
    if with_base:
        dense += base[None, :]
    e = excl[rows]
    want_i, want_v = topk_rows(dense, k, e.indptr.astype(np.int64), e.indices.astype(np.int32))
    got_i, got_v = topk_sparse_product(
        x.indptr.astype(np.int64), x.indices, x.data, rows, s.indptr.astype(np.int64),
        s.indices, s.data, k, eip, eix, rows, base,
    )  # fmt: skip
    assert np.array_equal(got_i, want_i)
    assert np.array_equal(got_v, want_v)
