"""Shared torch machinery for the neural ensembles: k-fold members, the fitting loop, persistence."""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pnas_core.devices import pick_device
from pnas_core.errors import PnasError
from pnas_core.io.atomic import write_serialized
from pnas_core.surrogate.base import CellsLike, Predictor, check_targets, group_by_size
from pnas_core.surrogate.jobs import Jobs, one_thread
from pnas_core.surrogate.settings import SurrogateSettings

MEMBERS_FILE = "members.pt"
PREDICT_CHUNK = 65536
RANK_SCALE = 0.01
"""τ of :func:`pairwise_rank_loss`: predicted accuracy gaps well beyond 1 point count as ordered."""


def fold_train_indices(n: int, k: int, seed: int) -> list[np.ndarray]:
    """Training rows of each of ``k`` members: all rows but one of k seeded folds (all rows if k == 1)."""
    if k == 1:
        return [np.arange(n)]
    perm = np.random.default_rng(seed).permutation(n)
    folds = np.array_split(perm, k)
    return [np.sort(np.concatenate([f for j, f in enumerate(folds) if j != i])) for i in range(k)]


def logit(p: float) -> float:
    """log(p / (1-p)), p clipped to [1e-4, 1-1e-4]."""
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


class TokenModel(nn.Module):
    """A network mapping token rows (n, 4·b) to accuracies in (0, 1); ``head`` is its last Linear."""

    head: nn.Linear


class TorchEnsemble(Predictor):
    """An ensemble of token models, member i fit on all but fold i of the data (docs/method.md, "Surrogate predictors")."""

    warm_startable = True

    def __init__(self, settings: SurrogateSettings | None = None) -> None:
        super().__init__(settings)
        self.members: list[TokenModel] = []
        self.device = pick_device(self.settings.device)

    @abc.abstractmethod
    def build_model(self) -> TokenModel:
        """A freshly initialised member network."""

    def fit(
        self, cells: CellsLike, accuracies: Sequence[float], warm_from: Predictor | None = None
    ) -> TorchEnsemble:
        """Fit every member with Adam and the configured loss; seeded, so repeatable on CPU.

        With ``warm_from`` (a fitted ensemble of the same kind, shape and member count, e.g. the
        previous level's) member i starts from its member i's weights instead of a fresh init.
        """
        return self.fit_jobs(cells, accuracies, warm_from).run()

    def fit_jobs(
        self, cells: CellsLike, accuracies: Sequence[float], warm_from: Predictor | None = None
    ) -> Jobs[TorchEnsemble]:
        """:meth:`fit` as one part per member: the members are built and initialised here, in
        order, and each part trains one with its own seeded batch order."""
        s = self.settings
        groups = group_by_size(cells)
        y = check_targets(groups, accuracies)
        sizes = np.empty(len(y), dtype=np.int64)
        rows: list[np.ndarray | None] = [None] * len(y)
        for idx, tokens in groups:
            sizes[idx] = tokens.shape[1] // 4
            for i, r in zip(idx, tokens, strict=True):
                rows[i] = r
        max_b = int(sizes.max())
        k = min(s.ensemble_size, len(y)) if s.ensemble_size > 1 else 1
        warm = self._warm_states(warm_from, k)
        parts = []
        for member, train_idx in enumerate(fold_train_indices(len(y), k, s.seed)):
            with torch.random.fork_rng(devices=[]), one_thread():
                torch.manual_seed(s.seed * 1009 + member)
                model = self.build_model().to(self.device)
                if warm:
                    model.load_state_dict(warm[member])
                else:
                    with torch.no_grad():  # first prediction ~ mean accuracy: bias = its logit, small weights
                        model.head.bias.fill_(logit(float(y[train_idx].mean())))
                        model.head.weight.mul_(0.1)
            batches = _size_buckets(train_idx, sizes, rows, y, self.device)
            parts.append(partial(_fit_member, model, batches, s.lr_for(max_b), s, s.seed * 1009 + member))
        meta = {"n_fit": len(y), "max_blocks_fit": max_b, "mean_acc": float(y.mean()), "members": k}
        if warm_from is not None:
            meta["warm_from_n_fit"] = warm_from.meta["n_fit"]

        def combine(members: list[TokenModel]) -> TorchEnsemble:
            self.members, self.meta = members, meta
            return self

        return Jobs(parts, combine)

    def _warm_states(self, warm_from: Predictor | None, k: int) -> list[dict[str, torch.Tensor]]:
        """The member weights to start from (none without ``warm_from``), checked to fit."""
        if warm_from is None:
            return []
        if type(warm_from) is not type(self) or not warm_from.fitted:
            raise PnasError(
                f"cannot warm-start a {self.name} predictor from a {warm_from.name or 'unfitted'} one"
            )
        if len(warm_from.members) != k:
            raise PnasError(
                f"cannot warm-start {k} {self.name} members from {len(warm_from.members)} (ensemble_size or "
                "the number of records differs)"
            )
        dims = ("embed_dim", "hidden_dim")
        if any(getattr(warm_from.settings, d) != getattr(self.settings, d) for d in dims):
            raise PnasError(f"cannot warm-start the {self.name} predictor: embed_dim or hidden_dim differs")
        return [{key: v.to(self.device) for key, v in m.state_dict().items()} for m in warm_from.members]

    @torch.inference_mode()
    @one_thread()
    def _predict_tokens(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.empty((len(self.members), len(tokens)), np.float32)
        for start in range(0, len(tokens), PREDICT_CHUNK):
            t = torch.as_tensor(tokens[start : start + PREDICT_CHUNK], dtype=torch.long, device=self.device)
            for i, model in enumerate(self.members):
                preds[i, start : start + len(t)] = model(t).float().cpu().numpy()
        return ensemble_scores(preds)

    def _save_state(self, folder: Path) -> None:
        states = [{k: v.cpu() for k, v in m.state_dict().items()} for m in self.members]
        write_serialized(folder / MEMBERS_FILE, lambda fh: torch.save(states, fh))

    def _load_state(self, folder: Path) -> None:
        states = torch.load(folder / MEMBERS_FILE, map_location="cpu", weights_only=True)
        self.members = []
        for state in states:
            model = self.build_model()
            model.load_state_dict(state)
            self.members.append(model.to(self.device).eval())


def ensemble_scores(member_preds: Sequence[np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ensemble's (mean, std) over members' float32 predictions (a list, or rows of an array)."""
    preds = np.asarray(member_preds)
    return preds.mean(axis=0), preds.std(axis=0)


def _size_buckets(
    train_idx: np.ndarray,
    sizes: np.ndarray,
    rows: list[np.ndarray | None],
    y: np.ndarray,
    device: torch.device,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The training rows as one (tokens, targets) tensor pair per cell size."""
    out = []
    for b in np.unique(sizes[train_idx]):
        idx = train_idx[sizes[train_idx] == b]
        tokens = torch.as_tensor(np.stack([rows[i] for i in idx]), dtype=torch.long, device=device)
        out.append((tokens, torch.as_tensor(y[idx], dtype=torch.float32, device=device)))
    return out


def _fit_member(
    model: TokenModel,
    buckets: list[tuple[torch.Tensor, torch.Tensor]],
    lr: float,
    s: SurrogateSettings,
    seed: int,
) -> TokenModel:
    """One member trained on one torch thread (:func:`_train`), then in eval mode."""
    with one_thread():
        _train(model, buckets, lr, s, seed)
    return model.eval()


def _train(
    model: TokenModel,
    buckets: list[tuple[torch.Tensor, torch.Tensor]],
    lr: float,
    s: SurrogateSettings,
    seed: int,
) -> None:
    """Minibatch training; each batch holds cells of one size, batch order shuffled every epoch.

    The loss is the configured pointwise loss plus ``rank_weight`` times :func:`pairwise_rank_loss`.
    """
    pointwise = nn.functional.l1_loss if s.loss == "l1" else nn.functional.mse_loss

    def loss_fn(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = pointwise(pred, target)
        return loss + s.rank_weight * pairwise_rank_loss(pred, target) if s.rank_weight else loss

    # fused: one kernel over all parameters (bench/score.py: the MLP fits 40% faster)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=s.weight_decay, fused=True)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(s.epochs):
        batches = []
        for tokens, target in buckets:
            perm = torch.randperm(len(tokens), generator=gen).to(tokens.device)
            batches += [(tokens[j], target[j]) for j in perm.split(s.batch_size)]
        for i in torch.randperm(len(batches), generator=gen).tolist():
            tokens, target = batches[i]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(tokens), target).backward()
            opt.step()


def pairwise_rank_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Smooth hinge on the minibatch's mis-ordered pairs: the mean over pairs with target_i > target_j
    of τ·softplus((pred_j - pred_i)/τ), τ = :data:`RANK_SCALE`. In accuracy units like the L1 loss, it
    tends to max(0, pred_j - pred_i) as τ → 0; 0 when all targets are equal."""
    above = target[:, None] > target[None, :]
    if not bool(above.any()):
        return pred.sum() * 0.0
    diff = (pred[None, :] - pred[:, None])[above]  # pred_j - pred_i for target_i > target_j
    return RANK_SCALE * nn.functional.softplus(diff / RANK_SCALE).mean()
