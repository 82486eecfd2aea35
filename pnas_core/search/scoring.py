"""Expand + score, the beam step between fitting and selection (docs/method.md, "The progressive
search"): every distinct child of the parents scored by every predictor, as a *scored* table
(:mod:`pnas_core.search.beam`). Separate from :mod:`pnas_core.search.beam` because it runs the predictors (torch)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pnas_core.errors import PnasError
from pnas_core.search import beam
from pnas_core.space.cells import (
    Space,
    canonical_tokens,
    cell_id,
    first_rows,
    insertion_positions,
    tokens_to_texts,
    unique_rows,
)
from pnas_core.surrogate.base import Predictor
from pnas_core.surrogate.jobs import one_job, run_jobs


def expand_and_score(
    parents: np.ndarray,
    predictors: dict[str, Predictor],
    space: Space,
    costs: beam.CostColumns | None = None,
    workers: int = 1,
) -> pa.Table:
    """Every distinct child of the parents, scored by every predictor: a scored table, with the
    children's ``params`` and ``mult_adds`` columns when ``costs`` is given.

    Children are canonicalised and deduplicated (also across parents), rows in order of first
    appearance (parents in canonical, deduplicated order, blocks in block-table order). Each child is
    scored on its canonical tokens, so its score does not depend on the parent that produced it.
    A canonical child is its canonical parent with the new block inserted at some position (the end
    for 54% of them at b = 4), so the predictors score it on their shared-prefix fast path
    (:meth:`Predictor.predict_insertions`); the rare child whose other blocks are not in the parent's
    order (ties) is scored in full.
    """
    if not predictors:
        raise PnasError("no predictors to score with")
    parents = unique_rows(canonical_tokens(np.asarray(parents, np.int8)))
    b = parents.shape[1] // 4
    if b + 1 > space.max_blocks:
        raise PnasError(f"cannot expand {b}-block cells: this space allows {space.max_blocks} blocks")
    children, parent_index, _ = space.canonical_children(parents)
    keep = first_rows(children)
    children, parent_index = children[keep], parent_index[keep]

    def cell_columns() -> dict[str, pa.Array]:
        """The children's cell, cell_id, num_blocks and parent columns, and their costs if asked."""
        texts = np.array(tokens_to_texts(children, canonical=True), dtype=object)
        parent_texts = np.array(tokens_to_texts(parents, canonical=True), dtype=object)
        columns = {
            "cell": pa.array(texts, pa.string()),
            "cell_id": pa.array([cell_id(t) for t in texts], pa.string()),
            "num_blocks": pa.array(np.full(len(children), b + 1, np.int32)),
            "parent": pa.array(parent_texts[parent_index], pa.string()),
        }
        if costs is not None:
            columns.update({name: pa.array(values) for name, values in costs(children).items()})
        return columns

    positions = insertion_positions(children, parents[parent_index])
    fast, full = np.flatnonzero(positions >= 0), np.flatnonzero(positions < 0)
    blocks = children.reshape(len(children), b + 1, 4)[fast, positions[fast]]
    jobs = [
        p.insertion_jobs(parents, blocks, positions[fast], parent_index[fast]) for p in predictors.values()
    ]
    *scores, columns = run_jobs([*jobs, one_job(cell_columns)], workers)  # the columns beside the scoring
    means = []
    for (name, predictor), (mean_fast, std_fast) in zip(predictors.items(), scores, strict=True):
        mean, std = np.empty(len(children), np.float32), np.empty(len(children), np.float32)
        mean[fast], std[fast] = mean_fast, std_fast
        if len(full):
            mean[full], std[full] = predictor.predict(children[full])
        columns[f"pred_{name}"] = pa.array(mean)
        columns[f"std_{name}"] = pa.array(std)
        means.append(mean)
    columns["pred_mean"] = pa.array(np.mean(means, axis=0, dtype=np.float32))
    return pa.Table.from_pydict(columns, schema=beam.scored_schema(list(predictors), costs is not None))
