"""Graph-encoder ensemble predictor (docs/method.md, "Surrogate predictors"): the cell read as a DAG,
in the spirit of the GCN/GIN predictors of POPNAS and NASLib.

Nodes are the two cell inputs (learned vectors) and the blocks. A half ``(input node, op)`` is
``relu(W [h_input, emb(op)] + w)``; a block's state is ``relu(V (half1 + half2) + v)``, computed in
block order, which is a topological order. The cell vector is the mean and the max of the block
states (plus the scaled cost features with ``cost_features``), then one hidden layer and a sigmoid.
A block's state depends only on what it computes, never on its position, and the readout is
symmetric, so every valid block order of a cell (and either order of a block's halves) gets the same
prediction, up to float rounding.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pnas_core.space.cells import OPS
from pnas_core.surrogate.base import register
from pnas_core.surrogate.cost_features import NAMES, scaled_features
from pnas_core.surrogate.jobs import one_thread
from pnas_core.surrogate.train_loop import TokenModel, TorchEnsemble, ensemble_scores

PARENT_CHUNK = 64
"""Parents scored together on the fast path (bounds memory: chunk x blocks x hidden floats)."""


class GraphModel(TokenModel):
    """Message passing over the cell DAG in block order, then a mean-and-max readout."""

    def __init__(self, embed_dim: int, hidden_dim: int, cost_features: bool) -> None:
        super().__init__()
        self.cell_inputs = nn.Parameter(torch.randn(2, hidden_dim) * 0.1)
        self.op_embed = nn.Embedding(len(OPS), embed_dim)
        self.half_map = nn.Linear(hidden_dim + embed_dim, hidden_dim)
        self.block = nn.Linear(hidden_dim, hidden_dim)
        self.n_cost = len(NAMES) if cost_features else 0
        self.readout = nn.Linear(2 * hidden_dim + self.n_cost, hidden_dim)
        self.head = nn.Linear(hidden_dim, 1)

    def block_states(self, tokens: torch.Tensor) -> torch.Tensor:
        """(n, 4·b) long -> node states (n, 2 + b, hidden): the cell inputs, then the blocks."""
        n, length = tokens.shape
        t = tokens.view(n, length // 4, 4)
        ops = self.op_embed(t[..., 2:])  # (n, b, 2, embed)
        nodes = self.cell_inputs.expand(n, 2, -1)
        for j in range(length // 4):
            picked = torch.gather(nodes, 1, t[:, j, :2, None].expand(-1, -1, nodes.shape[2]))
            halves = torch.relu(self.half_map(torch.cat([picked, ops[:, j]], dim=2)))  # (n, 2, hidden)
            state = torch.relu(self.block(halves[:, 0] + halves[:, 1]))
            nodes = torch.cat([nodes, state[:, None]], dim=1)
        return nodes

    def top(self, mean: torch.Tensor, peak: torch.Tensor, tokens: np.ndarray | None) -> torch.Tensor:
        """Readout of the block states' ``mean`` and ``peak`` (max) for cells ``tokens`` (read only
        with cost features)."""
        parts = [mean, peak]
        if self.n_cost:
            parts.append(torch.as_tensor(scaled_features(tokens), device=mean.device))
        h = torch.relu(self.readout(torch.cat(parts, dim=-1)))
        return torch.sigmoid(self.head(h).squeeze(-1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        blocks = self.block_states(tokens)[:, 2:]
        cells = tokens.cpu().numpy() if self.n_cost else None
        return self.top(blocks.mean(dim=1), blocks.amax(dim=1), cells)


@register("gnn")
class GraphPredictor(TorchEnsemble):
    """Ensemble of graph encoders; a parent's node states are computed once for all its children."""

    def build_model(self) -> GraphModel:
        s = self.settings
        return GraphModel(s.embed_dim, s.hidden_dim, s.cost_features)

    @torch.inference_mode()
    @one_thread()
    def predict_children(self, parents: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: the parent's node states and every (node, op) half once per parent, the new
        block's state from two of those halves, the readout updated by the new block."""
        self._require_fitted()
        p, m = len(parents), len(table)
        b = parents.shape[1] // 4
        t = torch.as_tensor(np.array(table, dtype=np.int64), device=self.device)
        preds = np.empty((len(self.members), p * m), np.float32)
        for start in range(0, p, PARENT_CHUNK):
            chunk = parents[start : start + PARENT_CHUNK]
            children = None
            if self.settings.cost_features:
                children = np.concatenate([np.repeat(chunk, m, axis=0), np.tile(table, (len(chunk), 1))], 1)
            tokens = torch.as_tensor(chunk, dtype=torch.long, device=self.device)
            for i, model in enumerate(self.members):
                preds[i, start * m : (start + len(chunk)) * m] = (
                    _children(model, tokens, t, b, children).reshape(-1).float().cpu().numpy()
                )
        return ensemble_scores(preds)

    def predict_insertions(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """A block inserted at position t reads only blocks before t, so the child is the same graph
        as the parent with the block appended: scored by :meth:`predict_children` over the distinct
        blocks, then gathered."""
        self._require_fitted()
        distinct, which = np.unique(blocks, axis=0, return_inverse=True)
        used, parent_rows = np.unique(parent_index, return_inverse=True)
        mean, std = self.predict_children(parents[used], distinct)
        rows = parent_rows * len(distinct) + which.ravel()
        return mean[rows], std[rows]


def _children(
    model: GraphModel, parents: torch.Tensor, table: torch.Tensor, b: int, children: np.ndarray | None
) -> torch.Tensor:
    """(P, m) predictions of every parent extended by every block of ``table`` (m, 4); ``children``
    are their tokens (needed with cost features only)."""
    nodes = model.block_states(parents)  # (P, 2 + b, H)
    hidden = nodes.shape[2]
    w_node, w_op = model.half_map.weight[:, :hidden], model.half_map.weight[:, hidden:]
    op_term = model.op_embed.weight @ w_op.T + model.half_map.bias  # (ops, H)
    halves = torch.relu((nodes @ w_node.T)[:, :, None, :] + op_term)  # (P, 2 + b, ops, H)
    flat = halves.flatten(1, 2)  # (P, (2 + b)·ops, H)
    n_ops = op_term.shape[0]
    first = flat[:, table[:, 0] * n_ops + table[:, 2]]  # (P, m, H)
    second = flat[:, table[:, 1] * n_ops + table[:, 3]]
    state = torch.relu(model.block(first + second))
    blocks = nodes[:, 2:]
    mean = (blocks.sum(dim=1)[:, None] + state) / (b + 1)
    peak = torch.maximum(blocks.amax(dim=1)[:, None], state)
    out = model.top(mean.flatten(0, 1), peak.flatten(0, 1), children)
    return out.view(len(parents), len(table))
