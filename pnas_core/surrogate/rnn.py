"""RNN ensemble predictor (docs/method.md, "Surrogate predictors"): an LSTM over the 4·b tokens, final hidden state -> linear -> sigmoid."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pnas_core.space import MAX_BLOCKS, OPS, shifted_tail
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

    @torch.inference_mode()
    @one_thread()
    def predict_insertions(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: per insertion position t, the LSTM state after each parent's first t blocks is
        computed once, then the trie of the new blocks' first three tokens, and only the new block's
        last token and the parent's (shifted) remaining blocks are run per child."""
        self._require_fitted()
        b = parents.shape[1] // 4
        preds = np.empty((len(self.members), len(blocks)), np.float32)
        order = np.lexsort((parent_index, positions))  # by position, then parent
        for t in range(b + 1):
            rows = order[positions[order] == t]
            if not len(rows):
                continue
            used, local = np.unique(parent_index[rows], return_inverse=True)
            unique_blocks, block_of = np.unique(blocks[rows], axis=0, return_inverse=True)
            trie = BlockTrie(unique_blocks)
            node = trie.leaf[block_of.ravel()] // len(OPS)
            op2 = unique_blocks[block_of.ravel(), 3]
            prefix = parents[used, : 4 * t]
            tail = shifted_tail(parents[used], t)
            for start in range(0, len(used), PARENT_CHUNK):
                sel = slice(*np.searchsorted(local, [start, start + PARENT_CHUNK]))
                args = [
                    torch.as_tensor(a, dtype=torch.long, device=self.device)
                    for a in (
                        prefix[start : start + PARENT_CHUNK],
                        tail[start : start + PARENT_CHUNK],
                        node[sel],
                        op2[sel],
                        local[sel] - start,
                    )
                ]
                for i, model in enumerate(self.members):
                    out = _insert(model, args[0], args[1], trie, *args[2:])
                    preds[i, rows[sel]] = out.float().cpu().numpy()
        return preds.mean(axis=0), preds.std(axis=0)


def _input_tables(model: LSTMModel) -> tuple[torch.Tensor, torch.Tensor]:
    """The LSTM's input term (x·W_ih + biases) of every input token and every op token, (·, 4H)."""
    lstm = model.lstm
    bias = lstm.bias_ih_l0 + lstm.bias_hh_l0
    return (
        model.in_embed.weight @ lstm.weight_ih_l0.T + bias,
        model.op_embed.weight @ lstm.weight_ih_l0.T + bias,
    )


def _step(
    h: torch.Tensor, c: torch.Tensor, xproj: torch.Tensor, w_hh: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step (gate order i, f, g, o) for states (..., H) and input terms (..., 4H), in place
    on the gate array (scoring is bound by this step)."""
    gates = (h @ w_hh.T).add_(xproj)
    hidden = h.shape[-1]
    gates[..., : 2 * hidden].sigmoid_()
    gates[..., 3 * hidden :].sigmoid_()
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.addcmul(f * c, i, g.tanh_())
    return o.mul_(torch.tanh(c)), c


def _trie_states(
    model: LSTMModel, h: torch.Tensor, c: torch.Tensor, trie: BlockTrie
) -> tuple[torch.Tensor, torch.Tensor]:
    """States (P, n3, H) after states (P, H) read the first three tokens of every depth-3 trie node."""
    w_hh = model.lstm.weight_hh_l0
    xproj_in, xproj_op = _input_tables(model)
    h, c = h[:, None, :], c[:, None, :]  # (P, 1 node, H)
    dev = h.device
    for d in range(1, 4):
        up = torch.as_tensor(trie.up[d], device=dev)
        xproj = (xproj_in if d <= 2 else xproj_op)[torch.as_tensor(trie.token[d], device=dev)]
        h, c = _step(h[:, up], c[:, up], xproj, w_hh)
    return h, c


def _continue(model: LSTMModel, parents: torch.Tensor, trie: BlockTrie) -> torch.Tensor:
    """Predictions (P, m) for parent tokens (P, 4·b) extended by every block of the trie."""
    w_hh = model.lstm.weight_hh_l0
    h, c = _trie_states(model, *model.state(parents), trie)
    # last token (op2): every depth-3 node with every op, broadcast instead of gathered
    hh = (h @ w_hh.T)[:, :, None, :]  # (P, n3, 1, 4H)
    hh_i, hh_f, hh_g, hh_o = hh.chunk(4, dim=-1)
    x_i, x_f, x_g, x_o = _input_tables(model)[1].chunk(4, dim=-1)  # (ops, H)
    c = torch.sigmoid(hh_f + x_f).mul_(c[:, :, None, :])
    c.add_(torch.sigmoid(hh_i + x_i).mul_(torch.tanh(hh_g + x_g)))
    h = torch.sigmoid(hh_o + x_o).mul_(c.tanh_())
    out = torch.sigmoid(h @ model.head.weight[0] + model.head.bias[0])  # (P, n3, ops)
    return out.flatten(1)[:, torch.as_tensor(trie.leaf, device=parents.device)]


def _insert(
    model: LSTMModel,
    prefix: torch.Tensor,
    tail: torch.Tensor,
    trie: BlockTrie,
    node: torch.Tensor,
    op2: torch.Tensor,
    local: torch.Tensor,
) -> torch.Tensor:
    """Predictions for children ``prefix[local] + block + tail[local]``: parents' prefixes (P, 4·t)
    and shifted tails (P, L) are shared; child i's block is depth-3 trie node ``node[i]`` then op ``op2[i]``."""
    w_hh = model.lstm.weight_hh_l0
    xproj_in, xproj_op = _input_tables(model)
    if prefix.shape[1]:
        h, c = model.state(prefix)
    else:
        h = c = torch.zeros(len(prefix), w_hh.shape[1], device=prefix.device)
    h, c = _trie_states(model, h, c, trie)
    h, c = _step(h[local, node], c[local, node], xproj_op[op2], w_hh)
    tokens = tail[local]
    for k in range(tail.shape[1]):
        h, c = _step(h, c, (xproj_in if k % 4 < 2 else xproj_op)[tokens[:, k]], w_hh)
    return torch.sigmoid(h @ model.head.weight[0] + model.head.bias[0])
