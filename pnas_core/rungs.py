"""The rules of early stopping's rungs and of the epoch a training run may stop at, defined once: the
search (:class:`pnas_core.search.early_stop.EarlyStop`), the training
(:func:`pnas_core.training.train.check_stop`) and the workflow's config check
(``workflow/scripts/config_check.py``) all call these. Standard library only, so the workflow reads
it at parse time at no cost."""

from __future__ import annotations

from collections.abc import Sequence


def is_evaluated(epoch: int, epochs: int, eval_every: int) -> bool:
    """Whether a run of ``epochs`` epochs, evaluated every ``eval_every``, evaluates after ``epoch``
    (1..epochs, a multiple of ``eval_every`` or the last): the epochs a run can stop at."""
    return 1 <= epoch <= epochs and (epoch % eval_every == 0 or epoch == epochs)


def rungs_problem(rungs: Sequence[int], epochs: int | None = None, eval_every: int = 1) -> str | None:
    """Why ``rungs`` are not the rungs of a training of ``epochs`` epochs evaluated every
    ``eval_every``, else None. Rungs are increasing positive epochs, each below ``epochs`` and an
    evaluated epoch (a multiple of ``eval_every``); without ``epochs`` only their order is checked."""
    rungs = list(rungs)
    if not rungs or any(r < 1 for r in rungs) or rungs != sorted(set(rungs)):
        return f"{rungs} must be increasing positive epochs"
    bad = [
        r for r in rungs if epochs is not None and not (r < epochs and is_evaluated(r, epochs, eval_every))
    ]
    if bad:
        return (
            f"{rungs}: each must be below train.epochs ({epochs}) and a multiple of train.eval_every "
            f"({eval_every}); {bad} are not"
        )
    return None
