"""Exact cost of cells without building them: equal to counting the built network, for every size,
both layouts, cells that skip cells, and the search network training builds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_network import one_thread  # noqa: F401  (autouse: tiny networks on one thread)

from pnas_core.errors import PnasError
from pnas_core.space.cells import Space, cells_to_tokens, parse, tokens_to_cells
from pnas_core.training.complexity import count_mult_adds, count_params
from pnas_core.training.cost import cost_table, dataset_shape, search_costs, search_network
from pnas_core.training.network import NetworkSettings, SkippedCell, build_network
from pnas_core.training.train import TrainSettings, build_model

SEARCH = NetworkSettings(num_classes=10, in_channels=1, cells_per_stack=1, filters=4)
IN_STACK = NetworkSettings(
    num_classes=7, in_channels=3, cells_per_stack=2, filters=6, reduction_in_stack=True
)
# Cells that read only input 0 (every other cell skipped), only input 1, or both through block outputs.
EDGE_CELLS = ("0:sep5x5,0:avg3x3", "1:identity,1:max3x3", "0:identity,0:dil3x3;1:conv7x1,2:identity")


def counted(cell_tokens: np.ndarray, settings: NetworkSettings, shape: tuple[int, int, int]) -> np.ndarray:
    """(params, mult_adds) of each cell's built network: the oracle."""
    out = []
    for cell in tokens_to_cells(cell_tokens):
        net = build_network(cell, settings)
        out.append((count_params(net), count_mult_adds(net, shape)))
    return np.array(out, dtype=np.int64).reshape(-1, 2)


@pytest.mark.parametrize(
    "settings, shape",
    [(SEARCH, (1, 8, 8)), (IN_STACK, (3, 9, 11))],
    ids=["search-layout", "reduction_in_stack"],
)
@pytest.mark.parametrize("b", [1, 2, 3, 4, 5])
def test_cost_equals_counting_the_built_network(settings: NetworkSettings, shape: tuple, b: int) -> None:
    tokens = Space().sample_tokens(b, 5, np.random.default_rng(b))
    params, mult_adds = cost_table(settings, shape, b).costs(tokens)
    assert params.dtype == mult_adds.dtype == np.int64
    np.testing.assert_array_equal(np.stack([params, mult_adds], 1), counted(tokens, settings, shape))


@pytest.mark.parametrize(
    "settings",
    [SEARCH, IN_STACK, NetworkSettings(filters=8, stem="imagenet", aux_head=True, cells_per_stack=1)],
    ids=["search-layout", "reduction_in_stack", "imagenet-stem-aux-head"],
)
def test_cells_that_skip_cells_are_costed_exactly(settings: NetworkSettings) -> None:
    shape = (settings.in_channels, 12, 12)
    for text in EDGE_CELLS:
        cell = parse(text)
        tokens = cell.tokens()[None, :]
        params, mult_adds = cost_table(settings, shape, cell.num_blocks).costs(tokens)
        assert (params[0], mult_adds[0]) == tuple(counted(tokens, settings, shape)[0]), text
    skipping = build_network(parse(EDGE_CELLS[0]), settings)
    assert settings.aux_head or any(isinstance(c, SkippedCell) for c in skipping.cells)


def test_search_costs_equal_what_training_measures() -> None:
    settings = TrainSettings(dataset="digits", cells_per_stack=1, filters=5, num_reductions=2)
    data = settings.load_data()
    assert dataset_shape(settings) == (data.image_shape, data.num_classes)
    tokens = cells_to_tokens(
        [parse("0:sep3x3,1:max3x3;2:sep7x7,0:identity"), parse("1:avg3x3,1:dil3x3;0:conv7x1,2:sep5x5")]
    )
    columns = search_costs(settings)(tokens)
    for i, cell in enumerate(tokens_to_cells(tokens)):
        model = build_model(cell, settings, data)
        assert columns["params"][i] == count_params(model)
        assert columns["mult_adds"][i] == count_mult_adds(model, data.image_shape)
    net, shape = search_network(replace(settings, image_size=16))
    assert shape == (1, 16, 16) and net.filters == 5 and not net.reduction_in_stack


def test_dataset_shape_without_loading(tmp_path: Path) -> None:
    assert dataset_shape(TrainSettings(dataset="cifar10", data_root=str(tmp_path))) == ((3, 32, 32), 10)
    assert dataset_shape(TrainSettings(dataset="digits", image_size=16)) == ((1, 16, 16), 10)
    for name in ("cat", "dog", "eel"):
        (tmp_path / "train" / name).mkdir(parents=True)
    Image.new("L", (7, 5)).save(tmp_path / "train" / "cat" / "a.png")
    Image.new("L", (7, 5)).save(tmp_path / "train" / "dog" / "b.png")
    folder = TrainSettings(dataset="imagefolder", data_root=str(tmp_path))
    # an empty class folder is refused, as in training
    with pytest.raises(PnasError, match=r"class folder.*eel"):
        dataset_shape(folder)
    (tmp_path / "train" / "eel").rmdir()
    assert dataset_shape(folder) == ((3, 5, 7), 2)  # RGB, (height, width) of the first image
    assert dataset_shape(replace(folder, image_size=9)) == ((3, 9, 9), 2)
    with pytest.raises(PnasError, match="train not found"):
        dataset_shape(replace(folder, data_root=str(tmp_path / "nowhere")))


def test_tokens_of_another_size_are_an_error() -> None:
    with pytest.raises(PnasError, match="2-block cells got a token array of shape"):
        cost_table(SEARCH, (1, 8, 8), 2).costs(np.zeros((3, 12), np.int8))
