"""RNN ensemble predictor (docs/method.md, "Surrogate predictors"): an LSTM over the 4·b tokens, final hidden state -> linear -> sigmoid."""

from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
import torch
from torch import nn

from pnas_core.space.cells import MAX_BLOCKS, OPS, distinct_blocks, shifted_tail
from pnas_core.surrogate.base import register
from pnas_core.surrogate.jobs import Jobs, one_thread
from pnas_core.surrogate.train_loop import TokenModel, TorchEnsemble, ensemble_scores

PARENT_CHUNK = 8
"""Parents scored together on the fast paths: small enough that the gate arrays of their children
stay in cache (on the insertion path 8 measured 7% faster than 16, and faster than 4, 32 or 64)."""


class LSTMModel(TokenModel):
    """Tokens (in1, in2, op1, op2 per block): inputs share one embedding, ops another.

    The LSTM reads each token's embedding. Since an embedding times W_ih is a row of the product of
    the two, the LSTM is run on one-hot tokens with that product as its input weights (autograd
    reaches both factors): the same model and gradients, with 14 input columns instead of 100.
    """

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.in_embed = nn.Embedding(MAX_BLOCKS + 1, embed_dim)
        self.op_embed = nn.Embedding(len(OPS), embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        self.head = nn.Linear(hidden_dim, 1)

    def token_weights(self) -> torch.Tensor:
        """(4H, inputs + ops): W_ih times the embedding of input token j (column j) and of op token
        j (column inputs + j)."""
        return self.lstm.weight_ih_l0 @ torch.cat([self.in_embed.weight, self.op_embed.weight]).T

    def joint_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token rows (n, 4·k) as ids of :meth:`token_weights`' columns: input tokens as they are, op
        tokens after the inputs."""
        n_in = self.in_embed.num_embeddings
        return tokens + torch.tensor([0, 0, n_in, n_in], device=tokens.device).repeat(tokens.shape[1] // 4)

    def state(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final (h, c), each (n, hidden), after reading tokens (n, 4·b)."""
        lstm = self.lstm
        vocabulary = self.in_embed.num_embeddings + self.op_embed.num_embeddings
        one_hot = nn.functional.one_hot(self.joint_ids(tokens), vocabulary)
        zeros = torch.zeros(1, len(tokens), lstm.hidden_size, device=tokens.device)
        weights = [self.token_weights(), lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0]
        _, h, c = torch.lstm(
            one_hot.to(zeros.dtype), (zeros, zeros), weights, True, 1, 0.0, self.training, False, True
        )
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
        return ensemble_scores(preds)

    def predict_insertions(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: per insertion position t, the LSTM state after each parent's first t blocks is
        computed once, then the trie of the new blocks' first three tokens, and only the new block's
        last token and the parent's (shifted) remaining blocks are run per child."""
        return self.insertion_jobs(parents, blocks, positions, parent_index).run()

    def insertion_jobs(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> Jobs[tuple[np.ndarray, np.ndarray]]:
        """:meth:`predict_insertions` as one part per member and insertion position, sharing the
        plan of the insertions (parts of about equal size keep the threads evenly busy)."""
        self._require_fitted()
        plan = _insertion_plan(parents, positions, blocks, parent_index)
        parts = [partial(_group_insertions, m, group, self.device) for m in self.members for group in plan]

        def combine(results: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            preds = np.empty((len(self.members), len(blocks)), np.float32)
            for k, result in enumerate(results):
                preds[k // len(plan), plan[k % len(plan)].rows] = result
            return ensemble_scores(preds)

        return Jobs(parts, combine)


@dataclasses.dataclass(frozen=True)
class _Insertions:
    """The children inserting at one position t, for PARENT_CHUNK parents at a time."""

    rows: np.ndarray
    """Their rows in the caller's order."""
    trie: BlockTrie
    """Trie of their distinct new blocks."""
    chunks: list[tuple[np.ndarray, ...]]
    """Per parent chunk: parents' first t blocks' tokens, their shifted tails, then per child its
    depth-3 trie node, its block's op2, its parent within the chunk, and its slice of ``rows``."""


def _insertion_plan(
    parents: np.ndarray, positions: np.ndarray, blocks: np.ndarray, parent_index: np.ndarray
) -> list[_Insertions]:
    """The children grouped by insertion position and parent chunk, with their tries."""
    b = parents.shape[1] // 4
    order = np.lexsort((parent_index, positions))  # by position, then parent
    plan = []
    for t in range(b + 1):
        rows = order[positions[order] == t]
        if not len(rows):
            continue
        used, local = np.unique(parent_index[rows], return_inverse=True)
        unique_blocks, block_of = distinct_blocks(blocks[rows])
        trie = BlockTrie(unique_blocks)
        node = trie.leaf[block_of] // len(OPS)
        op2 = unique_blocks[block_of, 3]
        prefix = parents[used, : 4 * t]
        tail = shifted_tail(parents[used], t)
        chunks = []
        for start in range(0, len(used), PARENT_CHUNK):
            lo, hi = np.searchsorted(local, [start, start + PARENT_CHUNK])
            chunks.append(
                (
                    prefix[start : start + PARENT_CHUNK],
                    tail[start : start + PARENT_CHUNK],
                    node[lo:hi],
                    op2[lo:hi],
                    local[lo:hi] - start,
                    np.arange(lo, hi),
                )
            )
        plan.append(_Insertions(rows, trie, chunks))
    return plan


@torch.inference_mode()
def _group_insertions(model: LSTMModel, group: _Insertions, device: torch.device) -> np.ndarray:
    """One member's predictions for one insertion position's children (in ``group.rows`` order),
    on one torch thread."""
    out = np.empty(len(group.rows), np.float32)
    with one_thread():
        for *arrays, sel in group.chunks:
            args = [torch.as_tensor(a, dtype=torch.long, device=device) for a in arrays]
            out[sel] = _insert(model, args[0], args[1], group.trie, *args[2:]).float().cpu().numpy()
    return out


def _input_tables(model: LSTMModel) -> tuple[torch.Tensor, torch.Tensor]:
    """The LSTM's input term (x·W_ih + biases) of every input token and every op token, (·, 4H)."""
    lstm = model.lstm
    table = model.token_weights().T + lstm.bias_ih_l0 + lstm.bias_hh_l0
    return table[: model.in_embed.num_embeddings], table[model.in_embed.num_embeddings :]


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
    hidden = model.lstm.weight_hh_l0.shape[1]
    if prefix.shape[1]:
        h, c = model.state(prefix)
    else:
        h = c = torch.zeros(len(prefix), hidden, device=prefix.device)
    h, c = _trie_states(model, h, c, trie)
    tokens = torch.cat([op2[:, None] + model.in_embed.num_embeddings, model.joint_ids(tail[local])], dim=1)
    h = _run_tokens(model, h[local, node], c[local, node], tokens)
    return torch.sigmoid(h @ model.head.weight[0] + model.head.bias[0])


def _run_tokens(model: LSTMModel, h: torch.Tensor, c: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Final hidden state after states (n, H) read tokens (n, L) (``c`` is updated in place): input tokens as 0..inputs-1, op
    tokens as inputs + op. Each step is one matmul of [h, one-hot(token)] with the recurrent weights
    stacked on every token's input term, gates ordered i, f, o, g, then in-place updates of
    preallocated buffers (scoring is bound by this loop)."""
    hidden = h.shape[1]
    w = _stacked_weights(model)
    state = torch.zeros(len(h), w.shape[0], device=h.device)  # [h, one-hot]
    state[:, :hidden] = h
    one_hot = state[:, hidden:]
    gates = torch.empty(len(h), 4 * hidden, device=h.device)
    i, f, o, g = gates.split(hidden, dim=1)
    tanh_c = torch.empty_like(c)
    for k in range(tokens.shape[1]):
        one_hot.zero_().scatter_(1, tokens[:, k : k + 1], 1.0)
        torch.mm(state, w, out=gates)
        gates[:, : 3 * hidden].sigmoid_()
        g.tanh_()
        c.mul_(f).addcmul_(i, g)
        torch.mul(o, torch.tanh(c, out=tanh_c), out=state[:, :hidden])
    return state[:, :hidden]


def _stacked_weights(model: LSTMModel) -> torch.Tensor:
    """(H + inputs + ops, 4H): W_hh^T over every input token's and every op token's input term
    (:func:`_input_tables`), gate columns reordered from PyTorch's i, f, g, o to i, f, o, g."""
    hidden = model.lstm.weight_hh_l0.shape[1]
    order = torch.cat(
        [torch.arange(2 * hidden), torch.arange(3 * hidden, 4 * hidden), torch.arange(2 * hidden, 3 * hidden)]
    )
    return torch.cat([model.lstm.weight_hh_l0.T, *_input_tables(model)])[
        :, order.to(model.lstm.weight_hh_l0.device)
    ].contiguous()
