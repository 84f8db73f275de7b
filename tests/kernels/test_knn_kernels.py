import numpy as np
import scipy.sparse as sp

from movierec.kernels.knn import knn_baseline_predict, pearson_baseline_sim


def _mats(dense: np.ndarray) -> tuple:
    # dense: users x items (0 = missing); item-based: x = items, y = users
    m = sp.csr_matrix(dense.astype(np.float32))
    c = m.tocsc()
    return (c.indptr.astype(np.int64), c.indices), (m.indptr.astype(np.int64), m.indices, m.data)


def _brute(dense, mu, bx, by, shrinkage):
    n = dense.shape[1]
    res = dense - (mu + bx[None, :] + by[:, None])
    out = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            both = (dense[:, a] > 0) & (dense[:, b] > 0)
            f = both.sum()
            if a == b:
                out[a, b] = 1
            elif f:
                d = np.sqrt((res[both, a] ** 2).sum() * (res[both, b] ** 2).sum())
                if d > 0:
                    out[a, b] = (
                        (res[both, a] * res[both, b]).sum() / d * (f - 1) / (f - 1 + shrinkage)
                    )
    return out


def test_identical_items_are_maximally_similar() -> None:
    rng = np.random.default_rng(0)
    dense = rng.integers(1, 6, (30, 5)).astype(np.float64)
    dense[rng.random((30, 5)) < 0.3] = 0
    dense[:, 4] = dense[:, 1]  # item 4 is a copy of item 1
    (xp, xi), (yp, yx, yr) = _mats(dense)
    zeros = np.zeros(30)
    sim = pearson_baseline_sim(xp, xi, yp, yx, yr, 3.0, np.zeros(5), zeros, 0.0, 1)
    assert np.isclose(sim[1, 4], 1.0) and np.isclose(sim[4, 1], 1.0)
    off = sim[~np.eye(5, dtype=bool)]
    assert off.max() == sim[1, 4] and (np.abs(off) <= 1 + 1e-6).all()
    # shrinkage scales it by (n - 1) / (n - 1 + shrinkage)
    n = int((dense[:, 1] > 0).sum())
    shrunk = pearson_baseline_sim(xp, xi, yp, yx, yr, 3.0, np.zeros(5), zeros, 100.0, 1)
    assert np.isclose(shrunk[1, 4], (n - 1) / (n - 1 + 100.0), rtol=1e-5)


def test_similarity_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    dense = rng.integers(1, 6, (40, 8)).astype(np.float64)
    dense[rng.random((40, 8)) < 0.5] = 0
    bx, by = rng.normal(0, 0.3, 8), rng.normal(0, 0.3, 40)
    (xp, xi), (yp, yx, yr) = _mats(dense)
    sim = pearson_baseline_sim(xp, xi, yp, yx, yr, 3.5, bx, by, 10.0, 1)
    np.testing.assert_allclose(sim, _brute(dense, 3.5, bx, by, 10.0), rtol=1e-4, atol=1e-6)


def test_prediction_by_hand() -> None:
    # one user rated items 0, 1, 2; predict item 3 with k=2: the two most similar positives
    yp, yx, yr = (
        np.array([0, 3], np.int64),
        np.array([0, 1, 2], np.int32),
        np.array([5.0, 1.0, 4.0], np.float32),
    )
    sim = np.zeros((4, 4), np.float32)
    sim[3, :3] = [0.5, -0.9, 0.2]
    out = knn_baseline_predict(
        np.array([3]), np.array([0]), yp, yx, yr, sim, 3.0, np.zeros(4), np.zeros(1), 2, 1
    )
    want = 3.0 + (0.5 * 2.0 + 0.2 * 1.0) / 0.7
    assert np.isclose(out[0], want)
    out = knn_baseline_predict(
        np.array([3]), np.array([0]), yp, yx, yr, sim, 3.0, np.zeros(4), np.zeros(1), 1, 1
    )
    assert np.isclose(out[0], 5.0)
    out = knn_baseline_predict(
        np.array([3]), np.array([0]), yp, yx, yr, sim, 3.0, np.zeros(4), np.zeros(1), 2, 3
    )
    assert np.isclose(out[0], 3.0)
