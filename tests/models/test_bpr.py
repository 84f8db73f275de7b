import numpy as np
import pytest
from contract import N_ITEMS, N_USERS, ModelContract

from movierec.errors import ConfigError
from movierec.evaluation.evaluator import evaluate_model
from movierec.kernels.bpr import bpr_epoch
from movierec.models.bpr import BPR
from movierec.split import temporal_per_user


class TestBPR(ModelContract):
    model_class = BPR
    params = {"factors": 8, "iterations": 60, "learning_rate": 0.05, "parallel": False}

    def test_bad_params(self, data) -> None:
        for p in ({"factors": 0}, {"learning_rate": 0.0}, {"negatives": "hard"}, {"threshold": 9}):
            with pytest.raises(ConfigError):
                BPR(**p).fit(data[1])

    def test_parallel_learns_too(self, data) -> None:
        m = BPR(factors=8, iterations=60, learning_rate=0.05).fit(data[1])
        items, _ = m.recommend(np.arange(N_USERS - 1), k=3)
        group = (np.arange(N_USERS - 1) >= N_USERS // 2)[:, None]
        assert ((items >= N_ITEMS // 2) == group).mean() >= 0.8
        assert (m.user_factors_[:, -1] == 1.0).all()


def test_epoch_skips_liked_negatives_and_moves_only_sampled_rows() -> None:
    # one user who likes every item but item 2: every negative other than 2 is skipped
    indptr = np.array([0, 3], np.int64)
    indices = np.array([0, 1, 3], np.int32)
    rows = np.zeros(3, np.int32)
    U = np.full((1, 3), 0.1, np.float32)
    U[:, -1] = 1.0
    V = np.zeros((4, 3), np.float32)
    skipped, _ = bpr_epoch(rows, indptr, indices, U, V, np.float32(0.1), np.float32(0.0),
                           np.array([7], np.uint64), False)  # fmt: skip
    assert 0 <= skipped <= 3
    # the negative was item 2 whenever a step was taken: its bias fell, positives' rose
    n_steps = 3 - skipped
    assert np.isclose(V[2, -1], -0.05 * n_steps, atol=1e-3)
    assert V[[0, 1, 3], -1].sum() == pytest.approx(0.05 * n_steps, abs=1e-3)
    assert U[0, -1] == 1.0


@pytest.mark.slow
def test_ml100k_ndcg(ml100k) -> None:
    # implicit's BPR (64 factors, 100 epochs) gets NDCG@10 0.078 on this protocol
    s = temporal_per_user(ml100k, n_val=1, n_test=5, min_train=5)
    m = BPR(parallel=False).fit(s.train)
    _, summary = evaluate_model(m, s.test, history=s.train, exclude=s.train, k=10)
    assert summary["ndcg@10"] >= 0.06, summary["ndcg@10"]
