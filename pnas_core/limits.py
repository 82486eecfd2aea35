"""The bounds every number and file a user hands over must keep, defined once: the settings checks
(:mod:`pnas_core.io.settings_io` and the settings dataclasses), the command line's argument types
(:mod:`pnas_core.cli.arg_types`) and the workflow's config schemas (a test checks them) all read them
here, and the workflow's config check at parse time. Standard library only, so ``pnas --help`` and the
workflow's parse stay fast."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MAX_COUNT = 10**6
"""Largest count a key or option takes (cells, epochs, repeats, batch size): more than any experiment uses."""

MAX_THREADS = 1000
"""Largest number of threads or worker processes; a training job runs ``train_threads`` x
``workers`` threads, so their product stays within :data:`MAX_COUNT`."""

MAX_SEED = 2**31 - 1
"""Largest seed of a config (``seed``, ``benchmark.seeds``, ``split_seed``) and of the training
settings made from it, so that the seeds derived from it (``seed + 1000 b`` of the quality samples,
``seed + t`` of the quality repeats, ``split_seed + 1`` of the validation split) stay within
:data:`MAX_DERIVED_SEED`."""

MAX_DERIVED_SEED = 2**32 - 1
"""Largest seed a command's ``--seed`` and the predictors' settings take: the range numpy,
scikit-learn and XGBoost accept; torch's seeds made from it (``seed * 1009 + member``) stay below 2**64."""

MAX_IMAGE_SIZE = 1024
"""Largest ``image_size`` (and cutout side). The memory estimate behind it: a 3 x 1024 x 1024 image
decodes to 3 MiB (CIFAR-10's 60,000 images to 180 GiB), and one float32 activation of the search
network's first stack (F = 24 filters) takes 96 MiB per image, so one batch of a few images fills a
GPU; a larger size cannot train."""

MAX_WIDTH = 4096
"""Largest layer width (``filters``, the predictors' ``embed_dim`` and ``hidden_dim``): PNASNet-5
Large has F = 216; the parameters grow with the square of the width."""

MAX_DEPTH = 64
"""Largest ``cells_per_stack`` (N): PNASNet-5 Large has N = 4, NASNet-A N = 6."""

MAX_ENSEMBLE = 1000
"""Largest ``ensemble_size`` of a predictor ensemble (the paper uses 5)."""

MAX_BUDGET = 2**53
"""Largest cost budget (``max_params``, ``max_mult_adds``): the largest integer a float64 holds exactly."""

XGB_MAX_FLOAT = 1e38
"""Largest value of an XGBoost float parameter: XGBoost reads them as 32-bit floats (3.4e38 at most)."""

MAX_TEXT_FILE_BYTES = 1 << 20
"""Largest settings or cell file read (1 MiB); a settings file is a few hundred bytes."""

MAX_YAML_VALUES = 10_000
"""Most values (mappings, lists and scalars, each alias counted as often as it is used) in a config
or settings file: a few hundred in any real one, so an alias bomb is refused at once."""

MAX_YAML_DEPTH = 20
"""Deepest nesting of a config or settings file (a real one nests three levels)."""

MAX_MESSAGE = 500
"""Longest error message shown: longer ones are cut, so an error stays one readable line."""


def size_problem(data: Any) -> str | None:
    """What ``data`` (loaded YAML or JSON) holds beyond :data:`MAX_YAML_VALUES` values,
    :data:`MAX_YAML_DEPTH` levels or :data:`MAX_TEXT_FILE_BYTES` characters of text ("more than 10,000
    values"), else None. An alias counts as often as it is used, and the walk stops after that many
    steps: a YAML alias bomb (a few hundred bytes that expand to billions of values) is refused before
    anything walks it whole. Settings files and the workflow's config share this one rule."""
    count, chars, todo = 0, 0, [(data, 1)]
    while todo:
        value, depth = todo.pop()
        count += 1
        chars += len(value) if isinstance(value, str) else 0
        if count > MAX_YAML_VALUES:
            return f"more than {MAX_YAML_VALUES:,} values"
        if depth > MAX_YAML_DEPTH:
            return "nested too deeply"
        if chars > MAX_TEXT_FILE_BYTES:
            return f"more than {MAX_TEXT_FILE_BYTES:,} characters of text"
        if isinstance(value, Mapping):
            todo += [(v, depth + 1) for v in (*value.keys(), *value.values())]
        elif isinstance(value, list | tuple):
            todo += [(v, depth + 1) for v in value]
    return None
