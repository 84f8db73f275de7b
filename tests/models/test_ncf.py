import numpy as np
import pytest
from contract import ModelContract, checkerboard

from movierec.errors import ConfigError
from movierec.models.ncf import NCF

SMALL = {
    "factors": 8,
    "layers": [16, 8],
    "epochs": 15,
    "batch_size": 64,
    "lr": 0.01,
    "threshold": 4.0,
    "dropout": 0.0,
}


def test_missing_torch_says_what_to_install(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ConfigError, match=r"pip install torch==2\.13\.0"):
        NCF(**SMALL).fit(checkerboard()[1])


class TestNCF(ModelContract):
    model_class = NCF
    params = SMALL

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _needs_torch(cls) -> None:
        pytest.importorskip("torch")

    def test_numpy_scores_match_torch_forward(self, fitted) -> None:
        import torch

        net = fitted._network(torch, fitted.n_users_, fitted.n_items_)
        with torch.no_grad():
            net.ug.weight.copy_(torch.from_numpy(fitted.user_gmf_))
            net.ig.weight.copy_(torch.from_numpy(fitted.item_gmf_))
            net.um.weight.copy_(torch.from_numpy(fitted.user_mlp_))
            net.im.weight.copy_(torch.from_numpy(fitted.item_mlp_))
            lin = [m for m in net.mlp if hasattr(m, "weight")]
            for k, layer in enumerate(lin):
                layer.weight.copy_(torch.from_numpy(getattr(fitted, f"mlp{k}_w_")))
                layer.bias.copy_(torch.from_numpy(getattr(fitted, f"mlp{k}_b_")))
            net.out.weight.copy_(torch.from_numpy(fitted.out_w_[None, :]))
            net.out.bias.fill_(fitted.out_b_)
            net.eval()
            u = torch.full((fitted.n_items_,), 3, dtype=torch.long)
            want = net(u, torch.arange(fitted.n_items_)).numpy()
        np.testing.assert_allclose(fitted.score([3])[0], want, atol=1e-5)

    def test_loss_decreases(self, fitted) -> None:
        h = fitted.loss_history_
        assert len(h) == SMALL["epochs"] and h[-1] < 0.5 * h[0]

    def test_callback_stops_early(self, data) -> None:
        m = NCF(**{**SMALL, "epochs": 5}).fit(data[1], callback=lambda e, _: e >= 1)
        assert len(m.loss_history_) == 2

    def test_mse_predicts_ratings(self, data) -> None:
        m = NCF(**{**SMALL, "loss": "mse", "epochs": 30}).fit(data[1])
        assert m.rating_model
        tr = data[1]
        p = m.predict(tr.users, tr.items)
        assert np.sqrt(np.mean((p - tr.ratings) ** 2)) < 0.9 * tr.ratings.std()

    def test_bad_params(self, data) -> None:
        with pytest.raises(ConfigError):
            NCF(loss="hinge").fit(data[1])
        with pytest.raises(ConfigError):
            NCF(layers=[]).fit(data[1])
