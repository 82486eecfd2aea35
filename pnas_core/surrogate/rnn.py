"""RNN ensemble predictor (docs/method.md, "Surrogate predictors"): an LSTM over the 4·b tokens, final hidden state -> linear -> sigmoid."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pnas_core.space import MAX_BLOCKS, OPS
from pnas_core.surrogate.base import register
from pnas_core.surrogate.train_loop import TokenModel, TorchEnsemble, one_thread

PARENT_CHUNK = 16
"""Parents scored together on the fast path: small enough that the (parents x prefixes x ops x H)
gate arrays stay in cache (16 measured faster than 4 or 64)."""


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
    """The prefixes of the new block's tokens (in1, in2, op1, op2), shared by all parents.

    Depth d (1..3) has nodes = distinct ``table[:, :d]``; ``up[d]`` maps each node to its depth d-1
    node and ``token[d]`` is its d-th token. The last token (op2) is handled densely: ``leaf`` maps
    table row j to ``node3(j) * len(OPS) + op2(j)`` in a (depth-3 nodes x all ops) grid.
    """

    def __init__(self, table: np.ndarray) -> None:
        self.up: list[np.ndarray] = [np.zeros(0, np.int64)]
        self.token: list[np.ndarray] = [np.zeros(0, np.int64)]
        prev_inverse = np.zeros(len(table), np.int64)
        for d in range(1, 4):
            _, first, inverse = np.unique(table[:, :d], axis=0, return_index=True, return_inverse=True)
            self.up.append(prev_inverse[first])
            self.token.append(table[first, d - 1].astype(np.int64))
            prev_inverse = inverse.ravel()
        self.leaf = prev_inverse * len(OPS) + table[:, 3].astype(np.int64)


@register("rnn")
class RNNPredictor(TorchEnsemble):
    """Ensemble of LSTM predictors; children are scored by continuing each parent's LSTM state."""

    def build_model(self) -> LSTMModel:
        return LSTMModel(self.settings.embed_dim, self.settings.hidden_dim)

    @torch.inference_mode()
    @one_thread()
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
    for d in range(1, 4):
        up = torch.as_tensor(trie.up[d], device=dev)
        xproj = (xproj_in if d <= 2 else xproj_op)[torch.as_tensor(trie.token[d], device=dev)]
        gates = (h @ w_hh.T)[:, up] + xproj  # (P, n_d, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c[:, up] + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    # last token (op2): every depth-3 node with every op, broadcast instead of gathered
    hh = (h @ w_hh.T)[:, :, None, :]  # (P, n3, 1, 4H)
    hh_i, hh_f, hh_g, hh_o = hh.chunk(4, dim=-1)
    x_i, x_f, x_g, x_o = xproj_op.chunk(4, dim=-1)  # (ops, H)
    c = torch.sigmoid(hh_f + x_f).mul_(c[:, :, None, :])
    c.add_(torch.sigmoid(hh_i + x_i).mul_(torch.tanh(hh_g + x_g)))
    h = torch.sigmoid(hh_o + x_o).mul_(c.tanh_())
    out = torch.sigmoid(h @ model.head.weight[0] + model.head.bias[0])  # (P, n3, ops)
    return out.flatten(1)[:, torch.as_tensor(trie.leaf, device=dev)]
