import numpy as np
import pytest
from contract import N_ITEMS, ModelContract, popularity_ndcg

from movierec.errors import ConfigError
from movierec.kernels.itemknn import cosine_topk
from movierec.models.itemknn import ItemKNN


def _kernel(x: np.ndarray, k: int, shrink: float = 0.0):
    import scipy.sparse as sp

    xt = sp.csr_matrix(x.T)
    xu = sp.csr_matrix(x)
    return cosine_topk(
        xt.indptr.astype(np.int64),
        xt.indices.astype(np.int32),
        xt.data.astype(np.float64),
        xu.indptr.astype(np.int64),
        xu.indices.astype(np.int32),
        xu.data.astype(np.float64),
        k,
        shrink,
    )


def test_kernel_matches_dense_cosine() -> None:
    rng = np.random.default_rng(3)
    x = (rng.random((30, 12)) < 0.3) * rng.integers(1, 6, (30, 12)).astype(float)
    x[:, 5] = 0  # an item nobody rated has no neighbours and is nobody's neighbour
    n = np.linalg.norm(x, axis=0)
    dense = (x.T @ x) / np.maximum(np.outer(n, n), 1e-300)
    np.fill_diagonal(dense, 0)
    nbr, sim = _kernel(x, 4)
    for i in range(12):
        if i == 5:
            assert (nbr[i] == -1).all()
            continue
        order = np.lexsort((np.arange(12), -dense[i]))[:4]
        order = order[dense[i, order] > 0]
        np.testing.assert_array_equal(nbr[i, : order.size], order)
        np.testing.assert_allclose(sim[i, : order.size], dense[i, order], rtol=1e-6)
        assert 5 not in nbr[i]


def test_kernel_shrink_and_identical_items() -> None:
    # items 0 and 1 rated by the same two users: cosine 1, shrink 1 gives 2 / (2 + 1)
    x = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    nbr, sim = _kernel(x, 2, shrink=1.0)
    assert nbr[0, 0] == 1 and np.isclose(sim[0, 0], 2 / 3)


class TestItemKNN(ModelContract):
    model_class = ItemKNN
    params = {"k": 10, "threshold": 4.0}

    def test_fold_in_matches_trained_user(self, data, fitted) -> None:
        csr = data[1].csr()
        for u in (0, 31):
            it = csr.indices[csr.indptr[u] : csr.indptr[u + 1]]
            r = csr.data[csr.indptr[u] : csr.indptr[u + 1]]
            np.testing.assert_allclose(fitted.fold_in(it, r), fitted.score([u])[0], rtol=1e-6)

    def test_neighbours_on_the_same_side(self, fitted) -> None:
        items, sims = fitted.similar_items([0, N_ITEMS - 1], k=5)
        assert (items[0] < N_ITEMS // 2).all() and (items[1] >= N_ITEMS // 2).all()
        assert fitted.similarity_.getnnz(axis=1).max() <= 10

    @pytest.mark.parametrize("weighting", ["bm25", "tfidf"])
    def test_weightings_learn_the_likes(self, data, weighting) -> None:
        # only likes (>= 4) count: the two halves never co-occur
        m = ItemKNN(k=10, threshold=4.0, weighting=weighting).fit(data[1])
        items, _ = m.recommend(np.arange(59), k=3)
        side = items >= N_ITEMS // 2
        assert (side == (np.arange(59) >= 30)[:, None]).all()

    def test_bad_params(self, data) -> None:
        with pytest.raises(ConfigError):
            ItemKNN(weighting="idf").fit(data[1])
        with pytest.raises(ConfigError):
            ItemKNN(k=0).fit(data[1])
        with pytest.raises(ConfigError, match="threshold"):
            ItemKNN(threshold=9).fit(data[1])


def test_ml100k_cosine_matches_the_implicit_reference_band(ml100k) -> None:
    # k=100 cosine on raw ratings is implicit's CosineRecommender(K=100): 0.083 reference
    from movierec.evaluation.evaluator import evaluate_model
    from movierec.split import temporal_per_user

    split = temporal_per_user(ml100k, n_val=1, n_test=5, min_train=5)
    m = ItemKNN(k=100, binary=False).fit(split.train)
    _, s = evaluate_model(m, split.test, history=split.train, exclude=split.train, k=(10,))
    assert 0.075 <= s["ndcg@10"] <= 0.10
    assert s["ndcg@10"] >= popularity_ndcg(split) + 0.015  # popularity: 0.057
    assert s["users_evaluated"] == 812
