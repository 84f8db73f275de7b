"""Neural collaborative filtering: NeuMF (GMF + MLP towers), trained with PyTorch.

PyTorch is imported only inside :meth:`NCF._fit`, so this module imports without it. The
learned weights are kept as numpy arrays and scoring runs in numpy, so a saved model is
served without PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.errors import ConfigError
from movierec.kernels.sparse import in_sorted
from movierec.models.base import Recommender

LOSSES = ("bpr", "bce", "mse")
TORCH_PIN = "torch==2.13.0"


def _torch() -> Any:
    try:
        import torch
    except ImportError as e:
        raise ConfigError(
            f"NCF needs PyTorch, which is not installed: run `pip install {TORCH_PIN}` "
            "(or `pip install movierec[ncf]`)"
        ) from e
    return torch


class NCF(Recommender):
    r"""NeuMF (He et al., WWW 2017): a GMF and an MLP tower fused by one output layer.

    With user/item embeddings :math:`p_u, q_i` (GMF) and :math:`p'_u, q'_i` (MLP), each of
    size ``factors``:

    .. math:: h_{GMF} = p_u \odot q_i, \qquad
              h_{MLP} = \mathrm{MLP}([p'_u; q'_i]), \qquad
              \hat y_{ui} = w^\top [h_{GMF}; h_{MLP}] + b,

    the MLP being Linear + ReLU + dropout layers of sizes ``layers``. Losses:

    * ``"bpr"``: :math:`-\log \sigma(\hat y_{ui} - \hat y_{uj})` for each positive (rating
      >= ``threshold``) and ``n_negatives`` items j drawn uniformly among the user's
      non-positives;
    * ``"bce"``: binary cross-entropy, positives 1 and sampled negatives 0;
    * ``"mse"``: squared error on the ratings themselves (a rating model: ``predict``
      works; no negatives).

    Adam with ``lr`` and ``weight_decay``, minibatches of ``batch_size``, ``epochs``
    passes; ``random_state`` seeds PyTorch and the sampler. After training the weights are
    copied to numpy (``user_gmf_``, ``item_gmf_``, ``user_mlp_``, ``item_mlp_``,
    ``mlp{k}_w_``/``mlp{k}_b_``, ``out_w_``, ``out_b_``) and scoring is pure numpy.

    ``n_threads`` sets PyTorch's intra-op threads during ``fit`` (restored afterwards); the
    default 1 is fastest for batches of a few hundred pairs, and avoids PyTorch's spinning
    threads stalling on a busy machine. None keeps PyTorch's own setting.
    """

    name = "ncf"
    #: Hyperparameter ranges for `movierec tune`, `cv --tune` and `tuning:` in a config.
    search_space = {
        "factors": {"type": "int", "low": 8, "high": 64, "log": True, "grid": [16, 32]},
        "lr": {"type": "float", "low": 0.0001, "high": 0.01, "log": True, "grid": [0.001, 0.003]},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "grid": [0.0, 0.2]},
        "epochs": {"type": "int", "low": 5, "high": 30, "grid": [10, 20]},
    }

    def __init__(
        self,
        factors: int = 64,
        layers: tuple[int, ...] | list[int] = (128, 64, 32),
        dropout: float = 0.2,
        lr: float = 0.001,
        weight_decay: float = 0.0,
        batch_size: int = 256,
        epochs: int = 10,
        n_negatives: int = 4,
        loss: str = "bpr",
        threshold: float = 0.0,
        random_state: int = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.factors = factors
        self.layers = layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.epochs = epochs
        self.n_negatives = n_negatives
        self.loss = loss
        self.threshold = threshold
        self.random_state = random_state
        self.n_threads = n_threads

    @property
    def rating_model(self) -> bool:  # type: ignore[override]
        """True with ``loss="mse"``: the output is a predicted rating."""
        return self.loss == "mse"

    # -- training -------------------------------------------------------------------------
    def _validate(self) -> None:
        self._check(self.loss in LOSSES, f"loss must be one of {LOSSES}, got {self.loss!r}")
        self._check(int(self.factors) >= 1, "factors must be >= 1")
        self._check(
            len(self.layers) >= 1 and all(int(x) >= 1 for x in self.layers),
            "layers must be a non-empty list of positive sizes, e.g. [128, 64, 32]",
        )
        self._check(0 <= self.dropout < 1, "dropout must lie in [0, 1)")
        self._check(self.lr > 0 and self.weight_decay >= 0, "lr must be > 0, weight_decay >= 0")
        self._check(int(self.batch_size) >= 1 and int(self.epochs) >= 1, "batch_size, epochs >= 1")
        self._check(int(self.n_negatives) >= 1, "n_negatives must be >= 1")

    def _network(self, torch: Any, n_users: int, n_items: int) -> Any:
        nn = torch.nn
        f, sizes = int(self.factors), [int(x) for x in self.layers]
        drop = float(self.dropout)

        class NeuMF(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.ug, self.ig = nn.Embedding(n_users, f), nn.Embedding(n_items, f)
                self.um, self.im = nn.Embedding(n_users, f), nn.Embedding(n_items, f)
                for e in (self.ug, self.ig, self.um, self.im):
                    nn.init.normal_(e.weight, std=0.01)
                mods, d = [], 2 * f
                for h in sizes:
                    mods += [nn.Linear(d, h), nn.ReLU(), nn.Dropout(drop)]
                    d = h
                self.mlp = nn.Sequential(*mods)
                self.out = nn.Linear(f + d, 1)

            def forward(self, u: Any, i: Any) -> Any:
                g = self.ug(u) * self.ig(i)
                m = self.mlp(torch.cat([self.um(u), self.im(i)], dim=1))
                return self.out(torch.cat([g, m], dim=1)).squeeze(1)

        return NeuMF()

    def _negatives(
        self, rng: np.random.Generator, users: np.ndarray, pos_keys: np.ndarray
    ) -> np.ndarray:
        """``n_negatives`` items per entry of ``users``, resampled (a few times) off positives."""
        n_i = self.n_items_
        neg = rng.integers(0, n_i, size=(users.size, int(self.n_negatives)))
        for _ in range(10):
            keys = users[:, None].astype(np.int64) * n_i + neg
            hit = in_sorted(keys, pos_keys)
            if not hit.any():
                break
            neg[hit] = rng.integers(0, n_i, size=int(hit.sum()))
        return neg

    def _fit(self, train: Dataset) -> None:
        self._validate()
        self._check(
            self.n_threads is None or int(self.n_threads) >= 1, "n_threads must be >= 1 or None"
        )
        torch = _torch()
        old = torch.get_num_threads()
        if self.n_threads is not None:
            torch.set_num_threads(int(self.n_threads))
        try:
            self._train(torch, train)
        finally:
            torch.set_num_threads(old)

    def _train(self, torch: Any, train: Dataset) -> None:
        torch.manual_seed(int(self.random_state))
        rng = np.random.default_rng(int(self.random_state))
        mse = self.loss == "mse"
        if mse:
            u, i, y = train.users, train.items, train.ratings.astype(np.float32)
        else:
            keep = train.ratings >= self.threshold
            u, i = train.users[keep], train.items[keep]
            y = np.ones(u.size, np.float32)
            self._check(u.size > 0, f"no training rating is >= threshold={self.threshold}")
        pos_keys = np.unique(u.astype(np.int64) * self.n_items_ + i)
        net = self._network(torch, self.n_users_, self.n_items_)
        if mse:
            with torch.no_grad():
                net.out.bias.fill_(float(train.ratings.mean()))
        opt = torch.optim.Adam(
            net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay)
        )
        bs = int(self.batch_size)
        tu = torch.from_numpy(u.astype(np.int64))
        ti = torch.from_numpy(i.astype(np.int64))
        ty = torch.from_numpy(y)
        self.loss_history_ = []
        for epoch in range(int(self.epochs)):
            net.train()
            perm = torch.from_numpy(rng.permutation(u.size))
            neg = (
                None
                if mse
                else torch.from_numpy(self._negatives(rng, u, pos_keys).astype(np.int64))
            )
            total = 0.0
            for a in range(0, u.size, bs):
                idx = perm[a : a + bs]
                bu, bi = tu[idx], ti[idx]
                pred = net(bu, bi)
                if mse:
                    loss = torch.mean((pred - ty[idx]) ** 2)
                else:
                    nj = neg[idx]
                    k = nj.shape[1]
                    pn = net(bu.repeat_interleave(k), nj.reshape(-1)).reshape(-1, k)
                    if self.loss == "bpr":
                        loss = -torch.nn.functional.logsigmoid(pred[:, None] - pn).mean()
                    else:
                        logits = torch.cat([pred[:, None], pn], dim=1)
                        labels = torch.zeros_like(logits)
                        labels[:, 0] = 1.0
                        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            self.loss_history_.append(total / u.size)
            self._export(net)
            if self._epoch_done(epoch):
                break

    def _export(self, net: Any) -> None:
        """Copy the network's weights into numpy attributes (float32)."""

        def a(t: Any) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32).copy()

        self.user_gmf_, self.item_gmf_ = a(net.ug.weight), a(net.ig.weight)
        self.user_mlp_, self.item_mlp_ = a(net.um.weight), a(net.im.weight)
        linears = [m for m in net.mlp if hasattr(m, "weight")]
        for k, lin in enumerate(linears):
            setattr(self, f"mlp{k}_w_", a(lin.weight))
            setattr(self, f"mlp{k}_b_", a(lin.bias))
        self.out_w_ = a(net.out.weight)[0]
        self.out_b_ = float(net.out.bias.detach()[0])

    # -- scoring (numpy) ----------------------------------------------------------------------
    def _forward(self, u: np.ndarray, items: np.ndarray | None) -> np.ndarray:
        """Outputs for users x items (``items`` None: all) or for pairs (same-length u, items).

        The first MLP layer is split into its user and item halves so each side is
        projected once; only the per-pair ReLU layers run on every (user, item) pair.
        """
        f = int(self.factors)
        n_layers = len(self.layers)
        w0 = self.mlp0_w_
        go, mo = self.out_w_[:f], self.out_w_[f:]
        it = np.arange(self.n_items_) if items is None else np.asarray(items)
        iu_part = self.item_mlp_[it] @ w0[:, f:].T  # (n_items, h1)
        ig = self.item_gmf_[it]
        uu_part = self.user_mlp_[u] @ w0[:, :f].T + self.mlp0_b_  # (n_users, h1)
        ug = self.user_gmf_[u] * go  # GMF term is linear in q_i: (p_u * w_g) . q_i
        if items is not None:
            h = np.maximum(uu_part + iu_part, 0.0)
            for k in range(1, n_layers):
                h = np.maximum(h @ getattr(self, f"mlp{k}_w_").T + getattr(self, f"mlp{k}_b_"), 0)
            return (ug * ig).sum(1) + h @ mo + self.out_b_
        out = np.empty((u.size, it.size), dtype=np.float32)
        h1 = w0.shape[0]
        step = max(1, 4_000_000 // max(it.size * h1, 1))
        for a in range(0, u.size, step):
            b = min(u.size, a + step)
            h = np.maximum(uu_part[a:b, None, :] + iu_part[None, :, :], 0.0)
            h = h.reshape(-1, h1)
            for k in range(1, n_layers):
                h = np.maximum(h @ getattr(self, f"mlp{k}_w_").T + getattr(self, f"mlp{k}_b_"), 0)
            out[a:b] = (h @ mo).reshape(b - a, it.size) + ug[a:b] @ ig.T + self.out_b_
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self._forward(users, None).astype(np.float32)

    def _predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self._forward(users, items).astype(np.float64)

    def item_vectors(self) -> np.ndarray:
        """GMF and MLP item embeddings side by side."""
        return np.hstack([self.item_gmf_, self.item_mlp_])
