"""The input domain of a trained model: what its training images look like, and whether an image does.

Three statistics describe an image as the network sees it (uint8 pixels after conversion to the
model's channels and size, over all channels, in 0..255 units): ``brightness`` (mean pixel value),
``contrast`` (standard deviation of the pixel values) and ``border`` (mean of the outermost ring of
pixels). :func:`training_stats` records, for the images a model was trained on, each statistic's
range, mean and standard deviation, and the ink polarity where the data has one: ``light-on-dark``
when at least :data:`POLARITY_SHARE` of the images have a border darker than their mean (digits: light
strokes on black), ``dark-on-light`` when as many have it lighter (ink on paper), else none.

An image is far from the training data when one of its statistics lies outside the training range
widened on each side by :data:`FAR_MARGIN` of the range's width (at least :data:`MIN_MARGIN`): inverted
digits (dark ink on white) are far in brightness and border; the digits of the held-out test split are
not. The check looks at pixel statistics only: an image inside every range can still be foreign.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch

from pnas_core.errors import PnasError

STATISTICS = ("brightness", "contrast", "border")
"""The per-image statistics, in the column order of :func:`image_stats`."""
FAR_MARGIN = 0.5
"""Share of a training range's width added on each side before an image's statistic counts as far."""
MIN_MARGIN = 16.0
"""The least margin, in 0..255 units (a statistic that barely varies in training, such as a black
border, still tolerates some noise)."""
POLARITY_SHARE = 0.95
"""Share of training images whose border is darker (lighter) than their mean for a polarity to hold."""
INK_POLARITIES = {
    "light-on-dark": "light ink on a dark background",
    "dark-on-light": "dark ink on a light background",
}
"""The ink polarities a training set can have, with the words that describe them."""
STATS_CHUNK = 4096
"""Images :func:`training_stats` reads at a time (an image folder's memory-mapped arrays stay on disk)."""


@dataclass(frozen=True)
class StatRange:
    """One statistic over the training images: its least and largest value, mean and std."""

    low: float
    high: float
    mean: float
    std: float

    def bounds(self) -> tuple[float, float]:
        """The values an image may take before it counts as far (see the module docstring)."""
        margin = max(FAR_MARGIN * (self.high - self.low), MIN_MARGIN)
        return self.low - margin, self.high + margin


@dataclass(frozen=True)
class PixelStats:
    """The pixel statistics of a model's training images (stored in the model file and the ONNX export)."""

    images: int
    ranges: dict[str, StatRange]
    ink: str | None

    def to_dict(self) -> dict[str, Any]:
        """Plain numbers and strings (a model file loads without unpickling; JSON for ONNX metadata)."""
        return {
            "images": self.images,
            "ink": self.ink,
            "ranges": {k: asdict(v) for k, v in self.ranges.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> PixelStats:
        """Read :meth:`to_dict`'s form back; PnasError naming ``source`` when it is malformed."""
        try:
            ranges = {
                name: StatRange(**{k: float(v) for k, v in d["ranges"][name].items()}) for name in STATISTICS
            }
            ink = d["ink"]
            images = int(d["images"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PnasError(
                f"{source}: training pixel statistics are malformed ({type(exc).__name__}: {exc})"
            ) from exc
        values = [v for r in ranges.values() for v in asdict(r).values()]
        if ink not in (None, *INK_POLARITIES) or images < 1 or not all(math.isfinite(v) for v in values):
            raise PnasError(
                f"{source}: training pixel statistics are malformed (ink {ink!r}, {images} images)"
            )
        return cls(images, ranges, ink)

    def far(self, stats: Mapping[str, float]) -> list[str]:
        """How an image with ``stats`` (one value per statistic) is far from the training images:
        one phrase per statistic outside its bounds, e.g. ``brightness 180 (training 56..108)``."""
        notes = []
        for name in STATISTICS:
            low, high = self.ranges[name].bounds()
            if not low <= stats[name] <= high:
                r = self.ranges[name]
                notes.append(f"{name} {stats[name]:.0f} (training {r.low:.0f}..{r.high:.0f})")
        return notes

    def describe(self) -> str:
        """One phrase for a header: the ink polarity and the training brightness."""
        r = self.ranges["brightness"]
        ink = INK_POLARITIES[self.ink] if self.ink else "no ink polarity"
        return f"{ink}, brightness {r.low:.0f}..{r.high:.0f} (mean {r.mean:.0f}) over {self.images} images"


def image_stats(x: torch.Tensor) -> torch.Tensor:
    """The :data:`STATISTICS` of uint8 images (N, C, H, W): float64 (N, 3), in 0..255 units."""
    x = x.to(torch.float64)
    flat = x.flatten(1)
    ring = torch.cat(
        [
            x[:, :, 0, :].flatten(1),
            x[:, :, -1, :].flatten(1),
            x[:, :, 1:-1, 0].flatten(1),
            x[:, :, 1:-1, -1].flatten(1),
        ],
        dim=1,
    )
    return torch.stack([flat.mean(1), flat.std(1, correction=0), ring.mean(1)], dim=1)


def training_stats(batches: Iterable[torch.Tensor]) -> PixelStats:
    """The :class:`PixelStats` of uint8 image ``batches`` (each (N, C, H, W)), read in
    :data:`STATS_CHUNK`-image chunks."""
    parts = [image_stats(b[i : i + STATS_CHUNK]) for b in batches for i in range(0, len(b), STATS_CHUNK)]
    stats = torch.cat(parts) if parts else torch.empty(0, len(STATISTICS), dtype=torch.float64)
    if len(stats) == 0:
        raise PnasError("training pixel statistics need at least one image")
    ranges = {
        name: StatRange(
            low=float(col.min()),
            high=float(col.max()),
            mean=float(col.mean()),
            std=float(col.std(correction=0)),
        )
        for name, col in zip(STATISTICS, stats.T, strict=True)
    }
    brightness, border = stats[:, 0], stats[:, 2]
    ink = None
    if float((border < brightness).double().mean()) >= POLARITY_SHARE:
        ink = "light-on-dark"
    elif float((border > brightness).double().mean()) >= POLARITY_SHARE:
        ink = "dark-on-light"
    return PixelStats(len(stats), ranges, ink)


def far_notes(stats: PixelStats, images: torch.Tensor) -> list[list[str]]:
    """For each uint8 image (N, C, H, W), :meth:`PixelStats.far`'s phrases (empty: inside the domain)."""
    return [stats.far(dict(zip(STATISTICS, row.tolist(), strict=True))) for row in image_stats(images)]
