"""SGD kernels on tiny problems whose answer is known by construction."""

import numpy as np
import pytest

from movierec.kernels.sgd import (
    fold_in_user,
    implicit_sums,
    predict_pairs,
    shuffle_ratings,
    shuffle_within_rows,
    svd_epoch,
    svd_epoch_hogwild,
    svd_epoch_users,
    svd_epoch_users_hogwild,
    svdpp_epoch,
    svdpp_epoch_hogwild,
)

F = np.float32


def rank1(n_u: int = 12, n_i: int = 9, seed: int = 0):
    """A dense rank-1 matrix r_ui = a_u b_i with every entry observed, as triples."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(1.0, 2.0, n_u)
    b = rng.uniform(1.0, 2.0, n_i)
    u, i = np.meshgrid(np.arange(n_u), np.arange(n_i), indexing="ij")
    u, i = u.ravel().astype(np.int32), i.ravel().astype(np.int32)
    return u, i, (a[u] * b[i]).astype(F), n_u, n_i


def rates(lr: float, reg: float, n: int = 4) -> list:
    return [F(lr)] * n + [F(reg)] * n


def test_svd_epoch_recovers_a_rank1_matrix_and_loss_decreases() -> None:
    u, i, r, n_u, n_i = rank1()
    rng = np.random.default_rng(1)
    pu = rng.uniform(0.5, 1.0, (n_u, 1)).astype(F)
    qi = rng.uniform(0.5, 1.0, (n_i, 1)).astype(F)
    bu, bi = np.zeros(n_u, F), np.zeros(n_i, F)
    losses = []
    for e in range(300):
        shuffle_ratings(u, i, r, e)
        losses.append(svd_epoch(u, i, r, F(0), bu, bi, pu, qi, *rates(0.02, 0.0), False))
    assert all(b <= a for a, b in zip(losses[:30], losses[1:31], strict=True))
    np.testing.assert_allclose(pu[u, 0] * qi[i, 0], r, rtol=1e-3)
    assert not bu.any() and not bi.any()  # unbiased: biases untouched


def test_svd_epoch_one_rating_matches_hand_computation() -> None:
    u, i, r = np.array([0], np.int32), np.array([0], np.int32), np.array([4.0], F)
    pu, qi = np.array([[0.5, 1.0]], F), np.array([[2.0, -1.0]], F)
    bu, bi = np.array([0.1], F), np.array([-0.2], F)
    sse = svd_epoch(u, i, r, F(3.0), bu, bi, pu, qi, *rates(0.1, 0.5), True)
    e = 4.0 - (3.0 + 0.1 - 0.2 + 0.0)  # p.q = 1 - 1 = 0
    assert sse == pytest.approx(e * e)
    assert bu[0] == pytest.approx(0.1 + 0.1 * (e - 0.5 * 0.1))
    assert bi[0] == pytest.approx(-0.2 + 0.1 * (e + 0.5 * 0.2))
    np.testing.assert_allclose(
        pu[0], [0.5 + 0.1 * (e * 2 - 0.25), 1.0 + 0.1 * (-e - 0.5)], rtol=1e-6
    )
    np.testing.assert_allclose(
        qi[0], [2.0 + 0.1 * (e * 0.5 - 1.0), -1 + 0.1 * (e * 1 + 0.5)], rtol=1e-6
    )


def test_hogwild_recovers_the_rank1_matrix_too() -> None:
    u, i, r, n_u, n_i = rank1(40, 30)
    rng = np.random.default_rng(1)
    pu = rng.uniform(0.5, 1.0, (n_u, 1)).astype(F)
    qi = rng.uniform(0.5, 1.0, (n_i, 1)).astype(F)
    bu, bi = np.zeros(n_u, F), np.zeros(n_i, F)
    for e in range(60):
        shuffle_ratings(u, i, r, e)
        svd_epoch_hogwild(u, i, r, F(0), bu, bi, pu, qi, *rates(0.02, 0.0), False, 2)
    np.testing.assert_allclose(pu[u, 0] * qi[i, 0], r, rtol=1e-2)


def test_user_grouped_svd_serial_and_hogwild_recover_rank1() -> None:
    u, i, r, n_u, n_i = rank1(40, 30)
    indptr, items, rr = _csr(u, i, r, n_u)
    order = np.arange(n_u, dtype=np.int32)
    for hogwild in (False, True):
        rng = np.random.default_rng(1)
        pu = rng.uniform(0.5, 1.0, (n_u, 1)).astype(F)
        qi = rng.uniform(0.5, 1.0, (n_i, 1)).astype(F)
        bu, bi = np.zeros(n_u, F), np.zeros(n_i, F)
        args = (indptr, items, rr, F(0), bu, bi, pu, qi, *rates(0.02, 0.0), False)
        bounds = np.array([0, 13, 27, n_u])  # three chunks on the threads
        sse = []
        for e in range(60):
            if hogwild:
                sse.append(svd_epoch_users_hogwild(order, bounds, np.arange(3) + 3 * e, *args))
            else:
                shuffle_within_rows(indptr, items, rr, order, e)
                sse.append(svd_epoch_users(order, *args))
        assert sse[-1] < 1e-3 * sse[0]
        assert sorted(order.tolist()) == list(range(n_u))
        np.testing.assert_allclose(pu[u, 0] * qi[i, 0], r, rtol=1e-2)


def test_user_grouped_epoch_is_the_plain_epoch_in_its_order() -> None:
    # the grouped kernel (fused next dot, unsigned row indices) makes the updates of
    # svd_epoch visiting the same ratings in the same order
    rng = np.random.default_rng(4)
    n_u, n_i, nf = 30, 40, 100  # 100 factors: the vector loop and its 4-wide tail
    rows = [np.sort(rng.choice(n_i, rng.integers(1, 12), replace=False)) for _ in range(n_u)]
    rows[3] = rows[3][:0]  # a user without ratings is skipped
    indptr = np.r_[0, np.cumsum([r.size for r in rows])].astype(np.int64)
    items = np.concatenate(rows).astype(np.int32)
    r = rng.uniform(1, 5, items.size).astype(F)
    order = rng.permutation(n_u).astype(np.int32)
    pu0 = rng.normal(0, 0.1, (n_u, nf)).astype(F)
    qi0 = rng.normal(0, 0.1, (n_i, nf)).astype(F)
    a = [pu0.copy(), qi0.copy(), np.zeros(n_u, F), np.zeros(n_i, F)]
    b = [pu0.copy(), qi0.copy(), np.zeros(n_u, F), np.zeros(n_i, F)]
    seq = np.concatenate([np.arange(indptr[u], indptr[u + 1]) for u in order])
    uu = np.repeat(np.arange(n_u), np.diff(indptr))[seq].astype(np.int32)
    for _ in range(3):
        s1 = svd_epoch_users(order, indptr, items, r, F(3), a[2], a[3], a[0], a[1], *rates(0.05, 0.1), True)  # fmt: skip
        s2 = svd_epoch(uu, items[seq], r[seq], F(3), b[2], b[3], b[0], b[1], *rates(0.05, 0.1), True)  # fmt: skip
        assert s1 == pytest.approx(s2, rel=1e-5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
    assert not np.allclose(a[0], pu0)  # it did learn


def test_shuffle_ratings_permutes_whole_triples_deterministically() -> None:
    n = 1000
    u = np.arange(n, dtype=np.int32)
    i = (np.arange(n) * 7).astype(np.int32)
    r = np.arange(n, dtype=F)
    a = [x.copy() for x in (u, i, r)]
    b = [x.copy() for x in (u, i, r)]
    shuffle_ratings(*a, 5)
    shuffle_ratings(*b, 5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], u)
    assert np.array_equal(np.sort(a[0]), u)
    np.testing.assert_array_equal(a[1], a[0] * 7)
    np.testing.assert_array_equal(a[2], a[0].astype(F))


def test_shuffle_within_rows_keeps_rows() -> None:
    indptr = np.array([0, 3, 3, 8, 10], np.int64)
    cols = np.arange(10, dtype=np.int32)
    vals = cols.astype(F) * 2
    order = np.arange(4, dtype=np.int32)
    shuffle_within_rows(indptr, cols, vals, order, 3)
    assert sorted(order.tolist()) == [0, 1, 2, 3]
    for a, b in zip(indptr[:-1], indptr[1:], strict=True):
        assert sorted(cols[a:b].tolist()) == list(range(a, b))
    np.testing.assert_array_equal(vals, cols.astype(F) * 2)


def _csr(u, i, r, n_u):
    o = np.argsort(u, kind="stable")
    indptr = np.zeros(n_u + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=n_u), out=indptr[1:])
    return indptr, i[o].copy(), r[o].copy()


def test_svdpp_one_rating_user_matches_surprise_update() -> None:
    # with a single rating the grouped y update equals Surprise's per-rating one
    indptr = np.array([0, 1], np.int64)
    items, r = np.array([1], np.int32), np.array([5.0], F)
    pu = np.array([[0.2, -0.1]], F)
    qi = np.array([[0.0, 0.0], [1.0, 2.0]], F)
    yj = np.array([[9.0, 9.0], [0.5, 0.25]], F)
    bu, bi = np.zeros(1, F), np.zeros(2, F)
    lr, reg = 0.1, 0.2
    p0, q0, y0 = pu[0].copy(), qi[1].copy(), yj[1].copy()
    sse = svdpp_epoch(np.array([0], np.int32), indptr, items, r, F(3.0), bu, bi, pu, qi, yj,
                      *rates(lr, reg, 5))  # fmt: skip
    e = 5.0 - (3.0 + q0 @ (p0 + y0))
    assert sse == pytest.approx(e * e, rel=1e-5)
    np.testing.assert_allclose(pu[0], p0 + lr * (e * q0 - reg * p0), rtol=1e-5)
    np.testing.assert_allclose(qi[1], q0 + lr * (e * (p0 + y0) - reg * q0), rtol=1e-5)
    np.testing.assert_allclose(yj[1], y0 + lr * (e * q0 - reg * y0), rtol=1e-5)
    np.testing.assert_array_equal(yj[0], [9.0, 9.0])  # not rated by anyone: untouched


def test_svdpp_epoch_fits_a_rank1_matrix_and_loss_decreases() -> None:
    u, i, r, n_u, n_i = rank1()
    indptr, items, rr = _csr(u, i, r, n_u)
    rng = np.random.default_rng(2)
    pu = rng.uniform(0.5, 1.0, (n_u, 1)).astype(F)
    qi = rng.uniform(0.5, 1.0, (n_i, 1)).astype(F)
    yj = np.zeros((n_i, 1), F)
    bu, bi = np.zeros(n_u, F), np.zeros(n_i, F)
    mu = F(r.mean())
    order = np.arange(n_u, dtype=np.int32)
    losses = []
    for e in range(100):
        shuffle_within_rows(indptr, items, rr, order, e)
        losses.append(
            svdpp_epoch(order, indptr, items, rr, mu, bu, bi, pu, qi, yj, *rates(0.01, 0.0, 5))
        )
    assert all(b <= a for a, b in zip(losses[:20], losses[1:21], strict=True))
    # then Hogwild epochs, two chunks of users
    for e in range(100):
        losses.append(svdpp_epoch_hogwild(order, np.array([0, 5, n_u]), np.array([e, e + 1]),
                                          indptr, items, rr, mu, bu, bi, pu, qi, yj,
                                          *rates(0.01, 0.0, 5)))  # fmt: skip
    assert losses[-1] < losses[99]
    z = implicit_sums(np.arange(n_u), indptr, items, yj)
    pred = predict_pairs(u.astype(np.int64), np.arange(n_u), i, mu, bu, bi, pu + z, qi)
    assert np.sqrt(np.mean((pred - r) ** 2)) < 0.02


def test_implicit_sums_and_predict_pairs_match_numpy() -> None:
    rng = np.random.default_rng(0)
    indptr = np.array([0, 2, 2, 5], np.int64)
    idx = np.array([0, 3, 1, 2, 3], np.int32)
    yj = rng.normal(size=(4, 3)).astype(F)
    z = implicit_sums(np.array([2, 1, 0]), indptr, idx, yj)
    np.testing.assert_allclose(z[0], yj[[1, 2, 3]].sum(0) / np.sqrt(3), rtol=1e-6)
    np.testing.assert_array_equal(z[1], 0)
    np.testing.assert_allclose(z[2], yj[[0, 3]].sum(0) / np.sqrt(2), rtol=1e-6)
    vec, qi = rng.normal(size=(2, 3)).astype(F), rng.normal(size=(4, 3)).astype(F)
    bu, bi = rng.normal(size=5).astype(F), rng.normal(size=4).astype(F)
    rows, users, items = np.array([1, 0, 1]), np.array([4, 2]), np.array([3, 0, 1])
    got = predict_pairs(rows, users, items, F(3.5), bu, bi, vec, qi)
    want = 3.5 + bu[users[rows]] + bi[items] + (vec[rows] * qi[items]).sum(1)
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_fold_in_user_recovers_a_known_user() -> None:
    # items fixed at the true b_i; the user's ratings are exactly a * b_i
    u, i, r, _, n_i = rank1(1, 9)
    qi = (r / r.mean()).reshape(-1, 1).astype(F)  # proportional to the true item factor
    b, p = fold_in_user(i, r, F(0), np.zeros(n_i, F), qi, np.zeros(1, F), F(0.05), F(0.05),
                        F(0), F(0), False, 500, 0)  # fmt: skip
    assert b == 0.0
    np.testing.assert_allclose(qi[:, 0] * p[0], r, rtol=1e-3)


def test_shuffle_is_uniform_over_permutations() -> None:
    # all 24 orders of 4 triples appear about equally often over 4800 seeds
    counts: dict[tuple, int] = {}
    for seed in range(4800):
        u = np.arange(4, dtype=np.int32)
        shuffle_ratings(u, u.copy(), np.zeros(4, F), seed)
        counts[tuple(u)] = counts.get(tuple(u), 0) + 1
    assert len(counts) == 24
    assert 140 <= min(counts.values()) and max(counts.values()) <= 260
