"""MLP ensemble predictor (docs/method.md, "Surrogate predictors"): per-block concatenated token embeddings, averaged over blocks,
two hidden layers, sigmoid."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import nn

from pnas_core.space.cells import MAX_BLOCKS, OPS, distinct_blocks, shifted_tail
from pnas_core.surrogate.base import register
from pnas_core.surrogate.jobs import Jobs, one_thread
from pnas_core.surrogate.train_loop import TokenModel, TorchEnsemble, ensemble_scores

PARENT_CHUNK = 64
"""Parents scored together on the fast path (bounds memory)."""
CHILD_CHUNK = 16384
"""Children scored together on the insertion fast path (bounds memory)."""


class MLPModel(TokenModel):
    """Block vector = [emb(in1), emb(in2), emb(op1), emb(op2)]; cell vector = mean of block vectors."""

    def __init__(self, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.in_embed = nn.Embedding(MAX_BLOCKS + 1, embed_dim)
        self.op_embed = nn.Embedding(len(OPS), embed_dim)
        self.hidden1 = nn.Linear(4 * embed_dim, hidden_dim)
        self.hidden2 = nn.Linear(hidden_dim, hidden_dim)
        self.head = nn.Linear(hidden_dim, 1)

    def block_vectors(self, tokens: torch.Tensor) -> torch.Tensor:
        """(n, 4·b) long -> (n, b, 4·embed)."""
        n, length = tokens.shape
        t = tokens.view(n, length // 4, 4)
        e = torch.cat([self.in_embed(t[..., :2]), self.op_embed(t[..., 2:])], dim=2)
        return e.view(n, length // 4, -1)

    def top(self, pre1: torch.Tensor) -> torch.Tensor:
        """Everything after the first linear map: ``pre1`` is hidden1's pre-activation."""
        h = torch.relu(self.hidden2(torch.relu(pre1)))
        return torch.sigmoid(self.head(h).squeeze(-1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.top(self.hidden1(self.block_vectors(tokens).mean(dim=1)))


@register("mlp")
class MLPPredictor(TorchEnsemble):
    """Ensemble of MLP predictors; a parent's block sum goes through the first layer once."""

    def build_model(self) -> MLPModel:
        return MLPModel(self.settings.embed_dim, self.settings.hidden_dim)

    @torch.inference_mode()
    @one_thread()
    def predict_children(self, parents: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: hidden1(mean) = (W·sum(parent blocks) + W·new block) / (b+1) + bias, with the
        parent term computed once per parent and the block term once per block."""
        self._require_fitted()
        p, m = len(parents), len(table)
        n_blocks = parents.shape[1] // 4 + 1
        blocks = torch.as_tensor(np.array(table, dtype=np.int64), device=self.device)
        preds = np.empty((len(self.members), p * m), np.float32)
        for i, model in enumerate(self.members):
            w, bias = model.hidden1.weight, model.hidden1.bias
            block_term = model.block_vectors(blocks)[:, 0] @ w.T  # (m, H)
            for start in range(0, p, PARENT_CHUNK):
                t = torch.as_tensor(
                    parents[start : start + PARENT_CHUNK], dtype=torch.long, device=self.device
                )
                parent_term = model.block_vectors(t).sum(dim=1) @ w.T  # (P, H)
                pre1 = (parent_term[:, None, :] + block_term[None]) / n_blocks + bias
                out = model.top(pre1)
                preds[i, start * m : (start + len(t)) * m] = out.reshape(-1).float().cpu().numpy()
        return ensemble_scores(preds)

    def predict_insertions(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: the block sum of each parent as it reads after an insertion at each position
        goes through the first layer once, each distinct new block once; per child only the sum."""
        return self.insertion_jobs(parents, blocks, positions, parent_index).run()

    def insertion_jobs(
        self, parents: np.ndarray, blocks: np.ndarray, positions: np.ndarray, parent_index: np.ndarray
    ) -> Jobs[tuple[np.ndarray, np.ndarray]]:
        """:meth:`predict_insertions` as one part per member."""
        self._require_fitted()
        p, b = len(parents), parents.shape[1] // 4
        shifted = np.concatenate(
            [np.concatenate([parents[:, : 4 * t], shifted_tail(parents, t)], axis=1) for t in range(b + 1)]
        )  # row t·P + p: parent p ready for an insertion at t
        unique_blocks, block_of = distinct_blocks(blocks)
        dev = self.device
        tensors = (
            torch.as_tensor(shifted, dtype=torch.long, device=dev),
            torch.as_tensor(unique_blocks, dtype=torch.long, device=dev),
            torch.as_tensor(positions * p + parent_index, device=dev),
            torch.as_tensor(block_of, device=dev),
        )
        return Jobs(
            [partial(_member_insertions, model, *tensors, b) for model in self.members], ensemble_scores
        )


@torch.inference_mode()
def _member_insertions(
    model: MLPModel,
    shifted: torch.Tensor,
    blocks: torch.Tensor,
    key: torch.Tensor,
    block_of: torch.Tensor,
    b: int,
) -> np.ndarray:
    """One member's predictions for children ``shifted[key[i]]`` with block ``blocks[block_of[i]]``
    added (:meth:`MLPPredictor.predict_insertions`), on one torch thread."""
    out = np.empty(len(key), np.float32)
    with one_thread():
        w, bias = model.hidden1.weight, model.hidden1.bias
        parent_term = model.block_vectors(shifted).sum(dim=1) @ w.T  # ((b+1)·P, H)
        block_term = model.block_vectors(blocks)[:, 0] @ w.T  # (distinct blocks, H)
        for start in range(0, len(key), CHILD_CHUNK):
            sel = slice(start, start + CHILD_CHUNK)
            pre1 = (parent_term[key[sel]] + block_term[block_of[sel]]) / (b + 1) + bias
            out[sel] = model.top(pre1).float().cpu().numpy()
    return out
