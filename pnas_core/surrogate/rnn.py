"""RNN ensemble predictor (SPEC §4): an LSTM over the 4·b tokens, final hidden state -> linear -> sigmoid."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pnas_core.space import MAX_BLOCKS, OPS
from pnas_core.surrogate.base import register
from pnas_core.surrogate.train_loop import TokenModel, TorchEnsemble

PARENT_CHUNK = 64
"""Parents scored together on the fast path (bounds memory: ~2 MB per parent at b=5)."""


class LSTMModel(TokenModel):
    """Tokens (in1, in2, op1, op2 per block): inputs share one embedding, ops another."""

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.in_embed = nn.Embedding(MAX_BLOCKS + 1, embed_dim)
        self.op_embed = nn.Embedding(len(OPS), embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, 1)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(n, 4·b) long -> (n, 4·b, embed)."""
        n, length = tokens.shape
        t = tokens.view(n, length // 4, 4)
        e = torch.cat([self.in_embed(t[..., :2]), self.op_embed(t[..., 2:])], dim=2)
        return e.view(n, length, -1)

    def state(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (h, c), each (n, hidden)."""
        _, (h, c) = self.lstm(self.embed(tokens))
        return h[0], c[0]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.state(tokens)[0]).squeeze(-1))


class BlockTrie:
    """The prefixes of the new block's 4 tokens: node arrays per depth, shared by all parents.

    Depth d (1..4) has nodes = distinct ``table[:, :d]``; ``up[d]`` maps each node to its depth d-1
    node, ``token[d]`` is its d-th token, and ``leaf`` maps table rows to depth-4 nodes.
    """

    def __init__(self, table: np.ndarray) -> None:
        self.up: list[np.ndarray] = [np.zeros(0, np.int64)]
        self.token: list[np.ndarray] = [np.zeros(0, np.int64)]
        prev_inverse = np.zeros(len(table), np.int64)
        for d in range(1, 5):
            _, first, inverse = np.unique(table[:, :d], axis=0, return_index=True, return_inverse=True)
            inverse = inverse.ravel()
            self.up.append(prev_inverse[first])
            self.token.append(table[first, d - 1].astype(np.int64))
            prev_inverse = inverse
        self.leaf = prev_inverse


@register("rnn")
class RNNPredictor(TorchEnsemble):
    """Ensemble of LSTM predictors; children are scored by continuing each parent's LSTM state."""

    def build_model(self) -> LSTMModel:
        return LSTMModel(self.settings.embed_dim, self.settings.hidden_dim)

    @torch.inference_mode()
    def predict_children(self, parents: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: the LSTM runs over each parent once, then over the trie of the new block's
        token prefixes, so the recurrent matmul is done once per distinct prefix, not per child."""
        self._require_fitted()
        trie = BlockTrie(np.asarray(table))
        p, m = len(parents), len(table)
        preds = np.empty((len(self.members), p * m), np.float32)
        for i, model in enumerate(self.members):
            for start in range(0, p, PARENT_CHUNK):
                t = torch.as_tensor(
                    parents[start : start + PARENT_CHUNK], dtype=torch.long, device=self.device
                )
                out = _continue(model, t, trie)
                preds[i, start * m : (start + len(t)) * m] = out.reshape(-1).float().cpu().numpy()
        return preds.mean(axis=0), preds.std(axis=0)


def _continue(model: LSTMModel, parents: torch.Tensor, trie: BlockTrie) -> torch.Tensor:
    """Predictions (P, m) for parent tokens (P, 4·b) extended by every block of the trie."""
    lstm = model.lstm
    w_ih, w_hh = lstm.weight_ih_l0, lstm.weight_hh_l0
    bias = lstm.bias_ih_l0 + lstm.bias_hh_l0
    xproj_in = model.in_embed.weight @ w_ih.T + bias  # (inputs, 4H)
    xproj_op = model.op_embed.weight @ w_ih.T + bias  # (ops, 4H)
    h, c = model.state(parents)
    h, c = h[:, None, :], c[:, None, :]  # (P, 1 node, H)
    dev = parents.device
    for d in range(1, 5):
        up = torch.as_tensor(trie.up[d], device=dev)
        tok = torch.as_tensor(trie.token[d], device=dev)
        xproj = (xproj_in if d <= 2 else xproj_op)[tok]  # (n_d, 4H)
        gates = (h @ w_hh.T)[:, up] + xproj
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c[:, up] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    out = torch.sigmoid(h @ model.head.weight[0] + model.head.bias[0])  # (P, leaves)
    return out[:, torch.as_tensor(trie.leaf, device=dev)]
