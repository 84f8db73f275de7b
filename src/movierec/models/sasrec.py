"""SASRec (Kang & McAuley 2018): self-attentive next-item ranking, trained with PyTorch.

PyTorch is imported only inside :meth:`SASRec._fit`. After training each user's final
hidden state and the item embeddings are kept as numpy arrays, so scoring (and a saved
model) needs no PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.data.dataset import Dataset
from movierec.models.base import Recommender
from movierec.models.ncf import _torch


class SASRec(Recommender):
    r"""Self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

    Each user's training interactions (ratings >= ``threshold``) in (timestamp, item)
    order, the latest ``max_len`` of them, pass through item + learned position embeddings
    and ``n_blocks`` causal Transformer blocks (pre-norm, ``n_heads`` heads, dropout); the
    hidden state at step t scores the item at t + 1 by a dot product with the (shared)
    item embeddings. Training: binary cross-entropy of the true next item against one
    uniformly sampled negative per step, Adam with ``lr``, ``epochs`` passes over the users
    in minibatches of ``batch_size``; ``random_state`` seeds PyTorch and the sampler.

    A user's scores are her final hidden state (after her whole training sequence) times
    the item embeddings: ``user_state_`` (n_users x factors) and ``item_factors_``. A new
    user would need the network, which is not kept: ``fold_in`` is not offered.
    ``n_threads`` sets PyTorch's intra-op threads during fit (None: PyTorch's own).
    """

    name = "sasrec"
    search_space = {
        "factors": {"type": "categorical", "choices": [32, 50, 64]},
        "n_blocks": {"type": "int", "low": 1, "high": 3, "grid": [1, 2]},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "grid": [0.2, 0.5]},
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True, "grid": [1e-3, 3e-3]},
        "epochs": {"type": "int", "low": 20, "high": 300, "log": True, "grid": [50, 100, 200]},
    }

    def __init__(
        self,
        factors: int = 50,
        n_blocks: int = 2,
        n_heads: int = 1,
        max_len: int = 200,
        dropout: float = 0.2,
        lr: float = 1e-3,
        epochs: int = 100,
        batch_size: int = 128,
        threshold: float = 0.0,
        random_state: int = 0,
        n_threads: int | None = 1,
    ) -> None:
        self.factors = factors
        self.n_blocks = n_blocks
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.threshold = threshold
        self.random_state = random_state
        self.n_threads = n_threads

    def _sequences(self, train: Dataset) -> np.ndarray:
        """(n_users, max_len + 1) int64 of item index + 1, left-padded with 0, latest last."""
        keep = train.ratings >= self.threshold
        u, i, ts = train.users[keep], train.items[keep], train.timestamps[keep]
        order = np.lexsort((i, ts, u))
        u, i = u[order], i[order]
        n = np.bincount(u, minlength=self.n_users_)
        ends = np.cumsum(n)
        back = np.repeat(ends, n) - 1 - np.arange(u.size)  # 0 for each user's latest
        width = int(self.max_len) + 1
        seq = np.zeros((self.n_users_, width), dtype=np.int64)
        ok = back < width
        seq[u[ok], width - 1 - back[ok]] = i[ok] + 1
        return seq

    def _fit(self, train: Dataset) -> None:
        for name in ("factors", "n_blocks", "n_heads", "max_len", "epochs", "batch_size"):
            v = getattr(self, name)
            self._check(int(v) >= 1, f"{name} must be >= 1, got {v}")
        self._check(int(self.factors) % int(self.n_heads) == 0, "n_heads must divide factors")
        self._check(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        self._check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        nt = self.n_threads
        self._check(nt is None or int(nt) >= 1, "n_threads must be >= 1 or None")
        self._check(
            bool((train.ratings >= self.threshold).any()),
            f"no training rating is >= threshold={self.threshold}",
        )
        torch = _torch()
        old = torch.get_num_threads()
        if nt is not None:
            torch.set_num_threads(int(nt))
        try:
            self._train(torch, self._sequences(train))
        finally:
            torch.set_num_threads(old)

    def _network(self, torch: Any) -> Any:
        nn = torch.nn
        d, length, n_items = int(self.factors), int(self.max_len), self.n_items_
        drop, heads, blocks = float(self.dropout), int(self.n_heads), int(self.n_blocks)

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.items = nn.Embedding(n_items + 1, d, padding_idx=0)
                self.pos = nn.Embedding(length, d)
                self.drop = nn.Dropout(drop)
                layer = nn.TransformerEncoderLayer(
                    d, heads, d, drop, batch_first=True, norm_first=True
                )
                self.blocks = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
                self.norm = nn.LayerNorm(d)
                for emb in (self.items, self.pos):
                    nn.init.normal_(emb.weight, std=d**-0.5)
                with torch.no_grad():
                    self.items.weight[0].zero_()
                self.register_buffer(
                    "causal", torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
                )

            def forward(self, seq: Any) -> Any:
                pad = (seq > 0).unsqueeze(-1).float()
                pos = torch.arange(seq.shape[1], device=seq.device)
                h = self.drop(self.items(seq) + self.pos(pos)[None]) * pad
                n = seq.shape[1]
                # padded steps attend to themselves only (causal), so no row is all-masked
                h = self.blocks(h, mask=self.causal[:n, :n])
                return self.norm(h) * pad

        return Net()

    def _train(self, torch: Any, seq: np.ndarray) -> None:
        torch.manual_seed(int(self.random_state))
        rng = np.random.default_rng(int(self.random_state))
        net = self._network(torch)
        opt = torch.optim.Adam(net.parameters(), lr=float(self.lr), betas=(0.9, 0.98))
        users = np.flatnonzero((seq > 0).sum(axis=1) >= 2)
        x_all = torch.from_numpy(seq[:, :-1])
        y_all = torch.from_numpy(seq[:, 1:])
        bs = int(self.batch_size)
        self.loss_history_ = []
        for epoch in range(int(self.epochs)):
            net.train()
            total, count = 0.0, 0
            order = rng.permutation(users)
            for a in range(0, users.size, bs):
                b = order[a : a + bs]
                x, y = x_all[b], y_all[b]
                neg = torch.from_numpy(rng.integers(1, self.n_items_ + 1, size=tuple(y.shape)))
                h = net(x)
                pos_logit = (h * net.items(y)).sum(-1)
                neg_logit = (h * net.items(neg)).sum(-1)
                mask = (y > 0).float()
                bce = torch.nn.functional.binary_cross_entropy_with_logits
                loss = (
                    bce(pos_logit, torch.ones_like(pos_logit), weight=mask, reduction="sum")
                    + bce(neg_logit, torch.zeros_like(neg_logit), weight=mask, reduction="sum")
                ) / mask.sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * float(mask.sum())
                count += int(mask.sum())
            self.loss_history_.append(total / max(count, 1))
            if self._epoch_done(epoch):
                break
        net.eval()
        state = np.zeros((self.n_users_, int(self.factors)), dtype=np.float32)
        with torch.no_grad():
            x_last = torch.from_numpy(seq[:, 1:])
            has = np.flatnonzero(seq[:, -1] > 0)
            for a in range(0, has.size, 512):
                b = has[a : a + 512]
                state[b] = net(x_last[b])[:, -1].numpy()
            self.item_factors_ = net.items.weight[1:].detach().numpy().astype(np.float32).copy()
        self.user_state_ = state

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_state_[users] @ self.item_factors_.T
