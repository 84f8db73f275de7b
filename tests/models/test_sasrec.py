import dataclasses

import numpy as np
import pytest
from contract import COLD_USER, ModelContract, checkerboard

from movierec.errors import ConfigError

torch = pytest.importorskip("torch")  # the optional `ncf` extra

from movierec.models.sasrec import SASRec  # noqa: E402


class TestSASRec(ModelContract):
    model_class = SASRec
    params = {
        "threshold": 4.0,
        "factors": 16,
        "max_len": 20,
        "epochs": 60,
        "n_blocks": 1,
        "lr": 0.01,
    }

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        # the checkerboard's timestamps run through each user's items in index order, so
        # the step after her latest liked item is never seen in training: shuffle the times
        full, _ = checkerboard()
        ts = np.random.default_rng(1).permutation(full.timestamps)
        full = dataclasses.replace(full, timestamps=ts)
        return full, full.subset(full.users != COLD_USER, name="checkerboard:train")

    def test_sequences_are_time_ordered_and_left_padded(self, data, fitted) -> None:
        train = data[1]
        seq = fitted._sequences(train)
        u = 4
        rows = np.flatnonzero((train.users == u) & (train.ratings >= 4))
        rows = rows[np.lexsort((train.items[rows], train.timestamps[rows]))][-21:]
        got = seq[u][seq[u] > 0] - 1
        np.testing.assert_array_equal(got, train.items[rows])
        assert seq.shape[1] == 21 and (seq[u, -1] - 1) == train.items[rows[-1]]

    def test_training_lowers_the_loss(self, fitted) -> None:
        h = fitted.loss_history_
        assert len(h) == 60 and h[-1] < 0.8 * h[0]

    def test_bad_params(self, data) -> None:
        for bad in ({"factors": 0}, {"n_heads": 3}, {"dropout": 1.0}, {"lr": 0}, {"threshold": 9}):
            with pytest.raises(ConfigError):
                SASRec(**{**self.params, **bad}).fit(data[1])
