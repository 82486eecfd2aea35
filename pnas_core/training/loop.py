"""The one training loop of search and final training: schedule, augmentation, divergence, autocast.

:func:`run_epoch` trains a model for one epoch on uint8 images held on the training device: each
batch is gathered, augmented (random crop with zero padding, horizontal flip where the dataset
allows it, cutout if asked), normalised, and run in channels_last (with bf16 autocast on CUDA). The
learning rate follows :func:`lr_factor` per step; an auxiliary head's loss is added with its weight;
drop path can ramp from 0 to 1 over the training steps. :func:`is_diverged` is the one divergence
rule. Search training (:mod:`pnas_core.training.train`) and final training (:mod:`pnas_core.training.final`) both call
these functions; only what they do between epochs (learning curves, checkpoints) differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pnas_core.training.data import augment_batch, crop_padding, cutout_batch, normalize
from pnas_core.training.network import PNASNetwork

LR_SCHEDULES = ("cosine", "constant")
OPTIMIZERS = ("sgd", "adam")
DIVERGED_LOSS = 100.0
"""An epoch whose mean training loss is above this (or not finite) has diverged: cross-entropy over
k classes starts near ln(k) (2.3 for 10), so a mean above 100 means the weights have blown up."""
EVAL_BATCH = 1000


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """Multiplier of the initial learning rate at ``step``: cosine decay to 0 over ``total_steps``
    (``0.5 (1 + cos(pi step / total))``) or 1 for ``constant``."""
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))


def is_diverged(mean_loss: float) -> bool:
    """The divergence rule: the epoch's mean training loss is not finite or above :data:`DIVERGED_LOSS`."""
    return not math.isfinite(mean_loss) or mean_loss > DIVERGED_LOSS


@dataclass(frozen=True)
class EpochPlan:
    """How every epoch of one training run goes (fixed for the run)."""

    batch_size: int
    steps: int
    """Batches per epoch: the last partial batch is dropped."""
    epochs: int
    lr: float
    lr_schedule: str
    padding: int
    """Random-crop padding in pixels; 0 turns crops off."""
    flip: bool
    cutout: int = 0
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    aux_weight: float = 0.0
    drop_path_ramp: bool = False

    @property
    def total_steps(self) -> int:
        return self.steps * self.epochs

    def lr_at(self, step: int) -> float:
        """The learning rate of (0-based) training step ``step``."""
        return self.lr * lr_factor(self.lr_schedule, step, self.total_steps)


def seed_run(seed: int, device: torch.device) -> torch.Generator:
    """Seed torch's global generator (weight initialisation) with ``seed`` and return a generator on
    ``device`` seeded alike for batch order and augmentation. On CUDA, cuDNN picks the fastest
    algorithms for the run's fixed shapes."""
    torch.manual_seed(seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return torch.Generator(device=device).manual_seed(seed)


def augmentation(image_shape: tuple[int, ...], allow_flip: bool, augment: bool) -> tuple[int, bool]:
    """(crop padding, flip) for images of ``image_shape`` (C, H, W): both off unless ``augment``."""
    padding = crop_padding(min(image_shape[1:])) if augment else 0
    return padding, augment and allow_flip


@dataclass
class DeviceSplit:
    """uint8 images, labels and the normalisation statistics, all on the training device."""

    x: torch.Tensor
    y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


@dataclass(frozen=True)
class EpochResult:
    """Mean training loss (including the weighted auxiliary loss) and training accuracy of one epoch."""

    loss: float
    train_acc: float

    @property
    def diverged(self) -> bool:
        return is_diverged(self.loss)


def make_optimizer(
    model: torch.nn.Module, name: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """``sgd`` (with ``momentum``) or ``adam``, weight decay on all weights."""
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def run_epoch(
    model: PNASNetwork,
    opt: torch.optim.Optimizer,
    split: DeviceSplit,
    gen: torch.Generator,
    plan: EpochPlan,
    epoch: int,
) -> EpochResult:
    """Train ``model`` for (1-based) ``epoch`` of ``plan``; batches and augmentation draw on ``gen``."""
    device = split.x.device
    cuda = device.type == "cuda"
    model.train()
    perm = torch.randperm(len(split.y), generator=gen, device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for i in range(plan.steps):
        step = (epoch - 1) * plan.steps + i
        for group in opt.param_groups:
            group["lr"] = plan.lr_at(step)
        model.drop_path_scale = step / plan.total_steps if plan.drop_path_ramp else 1.0
        idx = perm[i * plan.batch_size : (i + 1) * plan.batch_size]
        xb = normalize(augment_batch(split.x[idx], gen, plan.padding, plan.flip), split.mean, split.std)
        xb = cutout_batch(xb, gen, plan.cutout).contiguous(memory_format=torch.channels_last)
        yb = split.y[idx]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            logits, aux = model.forward_with_aux(xb)
        loss = F.cross_entropy(logits.float(), yb, label_smoothing=plan.label_smoothing)
        if aux is not None:
            aux_loss = F.cross_entropy(aux.float(), yb, label_smoothing=plan.label_smoothing)
            loss = loss + plan.aux_weight * aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if plan.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), plan.grad_clip)
        opt.step()
        loss_sum += loss.detach() * len(yb)
        correct += (logits.detach().argmax(1) == yb).sum()
    seen = plan.steps * plan.batch_size
    return EpochResult(loss_sum.item() / seen, correct.item() / seen)


@torch.no_grad()
def accuracy(model: torch.nn.Module, split: DeviceSplit) -> tuple[float, bool]:
    """Accuracy of ``model`` on ``split`` (in eval mode, batches of :data:`EVAL_BATCH`), and whether
    all logits were finite."""
    model.eval()
    x, y = split.x, split.y
    cuda = x.device.type == "cuda"
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    finite = torch.ones((), device=x.device, dtype=torch.bool)
    for i in range(0, len(y), EVAL_BATCH):
        xb = normalize(x[i : i + EVAL_BATCH], split.mean, split.std).contiguous(
            memory_format=torch.channels_last
        )
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(xb).float()
        finite &= torch.isfinite(logits).all()
        correct += (logits.argmax(1) == y[i : i + EVAL_BATCH]).sum()
    return correct.item() / max(1, len(y)), bool(finite.item())
