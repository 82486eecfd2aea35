"""The network builder (docs/method.md, "From cell to network"): shapes, every op, presets against timm and the paper, training."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from pnas_core.errors import PnasError
from pnas_core.space.cells import (
    OPS,
    PNASNET5,
    PNASNET5_PAPER_ORDER,
    Cell,
    Space,
    WrittenCell,
    parse,
    tokens_to_cells,
)
from pnas_core.training.complexity import count_mult_adds, count_params
from pnas_core.training.network import (
    PRESETS,
    NetworkSettings,
    SkippedCell,
    build_network,
    live_cells,
    network_plan,
    pnasnet5_cifar,
    pnasnet5_large,
    pnasnet5_mobile,
)
from pnas_core.training.ops import make_op

TINY = NetworkSettings(num_classes=5, cells_per_stack=1, filters=4)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny networks run fastest on one thread (and a shared machine stays responsive)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_forward_backward(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = net(x)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    return out


# --------------------------------------------------------------------------- ops


@pytest.mark.parametrize("op", range(len(OPS)), ids=OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_op_output_size_rounds_up(op: int, stride: int) -> None:
    for c_in in (4, 6):  # 6 -> 4: the channel change of the first ImageNet stem cell
        module = make_op(op, c_in, 4, stride)
        for side in (1, 2, 3, 8, 9):
            y = module(torch.randn(2, c_in, side, side + 1))
            assert y.shape == (2, 4, math.ceil(side / stride), math.ceil((side + 1) / stride))


def test_identity_is_free_only_at_stride_1_without_channel_change() -> None:
    identity = OPS.index("identity")
    assert isinstance(make_op(identity, 4, 4, 1), nn.Identity)
    assert count_params(make_op(identity, 4, 4, 2)) == 4 * 4 + 2 * 4  # 1x1 conv + BN
    assert count_params(make_op(identity, 6, 4, 1)) == 6 * 4 + 2 * 4


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
def test_every_op_in_normal_and_reduction_cells(op: str, stem: str) -> None:
    """Block 1 reads both cell inputs (strided in reduction cells), block 2 reads block 1 (never strided)."""
    cell = parse(f"0:{op},1:{op};2:{op},1:{op}")
    net = build_network(cell, NetworkSettings(num_classes=3, cells_per_stack=1, filters=4, stem=stem))
    side = 8 if stem == "cifar" else 16
    out = run_forward_backward(net, torch.randn(2, 3, side, side))
    assert out.shape == (2, 3)


# --------------------------------------------------------------------------- layout and shapes


@pytest.mark.parametrize(
    ("stem", "in_channels", "side", "reductions"),
    [
        ("cifar", 1, 8, 2),  # 8x8 grey digits: 2x2 maps after two reductions
        ("cifar", 3, 32, 2),
        ("cifar", 3, 9, 3),  # odd sizes round up, down to a 1x1 map
        ("cifar", 2, 8, 0),
        ("imagenet", 3, 8, 2),
        ("imagenet", 4, 33, 1),
    ],
)
def test_output_shapes(stem: str, in_channels: int, side: int, reductions: int) -> None:
    s = NetworkSettings(
        num_classes=7,
        in_channels=in_channels,
        cells_per_stack=1,
        filters=4,
        stem=stem,
        num_reductions=reductions,
    )
    net = build_network(parse(PNASNET5), s)
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(3, in_channels, side, side)).shape == (3, 7)


def test_layout_cell_counts_and_filters() -> None:
    spec = network_plan(NetworkSettings(cells_per_stack=3, filters=8))
    assert len(spec) == 3 * 3 + 2
    assert [p.reduction for p in spec].count(True) == 2
    assert [p.filters for p in spec] == [8] * 3 + [16] * 4 + [32] * 4
    large = network_plan(PRESETS["pnasnet5_large"][1])
    assert len(large) == 2 + 12
    assert [i for i, p in enumerate(large) if p.reduction] == [0, 1, 2 + 4, 2 + 8]
    assert [p.filters for p in large[:3]] == [54, 108, 216]


def test_cell_output_concatenates_all_blocks() -> None:
    # Block 2 feeds block 3, and still appears in the output.
    net = build_network(parse("0:sep3x3,1:max3x3;2:avg3x3,1:identity;3:sep3x3,2:identity"), TINY)
    assert [c.out_channels for c in net.cells] == [12, 24, 24, 48, 48]
    assert net.classifier.in_features == 48


# --------------------------------------------------------------------------- presets


def timm_name_to_ours(name: str) -> str:
    """timm PNASNet5Large state-dict key -> our key (blocks 3 and 4 list their halves the other way)."""
    name = re.sub(r"^conv_0\.", "stem.", name)
    name = re.sub(r"^last_linear\.", "classifier.", name)
    name = re.sub(r"^cell_stem_(\d)\.", lambda m: f"cells.{m[1]}.", name)
    name = re.sub(r"^cell_(\d+)\.", lambda m: f"cells.{int(m[1]) + 2}.", name)
    name = name.replace(".conv_prev_1x1.", ".pre0.").replace(".conv_1x1.", ".pre1.")
    name = name.replace(".max_pool.", ".pool.")

    def block(m: re.Match[str]) -> str:
        first = (m[2] == "left") != (int(m[1]) in (2, 3))
        return f".blocks.{m[1]}.op{1 if first else 2}."

    return re.sub(r"\.comb_iter_(\d)_(left|right)\.", block, name)


def test_large_preset_has_exactly_timms_parameters() -> None:
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        ours = pnasnet5_large()
        ref = timm.create_model("pnasnet5large", pretrained=False)
    assert count_params(ours) == count_params(ref) == 86_057_668


def test_large_preset_computes_timms_function() -> None:
    """Same random weights (every state-dict key maps, shapes match) -> bitwise the same logits.

    timm's released model pads TF-"same" (asymmetric at stride 2); we compare against its symmetric
    padding variant, which has the same structure and parameters."""
    pnasnet = pytest.importorskip("timm.models.pnasnet")
    with torch.device("meta"):
        ref = pnasnet.PNASNet5Large(pad_type="")
        ours = pnasnet5_large()
    ref, ours = ref.to_empty(device="cpu").eval(), ours.to_empty(device="cpu").eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, t in ref.state_dict().items():
            if not t.dtype.is_floating_point:
                t.zero_()
            elif key.endswith("running_var"):
                t.uniform_(0.5, 1.5, generator=gen)
            else:
                t.normal_(0.0, 0.1, generator=gen)
    ours.load_state_dict({timm_name_to_ours(k): v for k, v in ref.state_dict().items()}, strict=True)
    x = torch.randn(1, 3, 48, 48, generator=gen)
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert expected.abs().max() > 1.0
    assert torch.equal(got, expected)


def test_mobile_and_cifar_presets_match_the_paper() -> None:
    with torch.device("meta"):
        mobile, cifar = pnasnet5_mobile(), pnasnet5_cifar()
        assert count_params(mobile) == 5_064_487  # paper: 5.1M
        assert count_mult_adds(mobile, (3, 224, 224)) == 587_293_200  # paper: 588M
        assert count_params(cifar) == 3_176_602  # paper: 3.2M
        assert pnasnet5_cifar(num_classes=100).classifier.out_features == 100


# --------------------------------------------------------------------------- random cells, training


def random_cells(n: int, seed: int) -> list[Cell]:
    return tokens_to_cells(Space().sample_tokens(5, n, np.random.default_rng(seed)))


@pytest.mark.parametrize("cell", random_cells(4, seed=1), ids=lambda c: c.id)
def test_random_five_block_cells_channels_last(cell: Cell) -> None:
    torch.manual_seed(0)
    net = build_network(cell, TINY).to(memory_format=torch.channels_last)
    x = torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last)
    out = run_forward_backward(net, x)
    assert out.shape == (2, 5)
    net.eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(x.contiguous()))


@settings(max_examples=5, deadline=None)
@given(
    ops=st.sets(st.sampled_from(range(len(OPS))), min_size=1),
    blocks=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_any_cell_over_any_op_subset(ops: set[int], blocks: int, seed: int) -> None:
    (cell,) = tokens_to_cells(Space(tuple(ops)).sample_tokens(blocks, 1, np.random.default_rng(seed)))
    net = build_network(cell, TINY).to(memory_format=torch.channels_last)
    run_forward_backward(net, torch.randn(2, 3, 8, 8).to(memory_format=torch.channels_last))


def test_one_training_step_is_finite_and_deterministic() -> None:
    cell = random_cells(1, seed=7)[0]

    def train_step() -> tuple[float, list[torch.Tensor]]:
        torch.manual_seed(3)
        net = build_network(cell, NetworkSettings(num_classes=4, cells_per_stack=1, filters=4, drop_path=0.3))
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 4, (4,))
        loss = nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item(), [p.detach().clone() for p in net.parameters()]

    loss, params = train_step()
    assert math.isfinite(loss)
    loss2, params2 = train_step()
    assert loss == loss2 and all(torch.equal(a, b) for a, b in zip(params, params2, strict=True))


# --------------------------------------------------------------------------- drop path, aux head


def test_drop_path_active_in_training_only() -> None:
    torch.manual_seed(0)
    s = NetworkSettings(num_classes=5, cells_per_stack=1, filters=4, drop_path=0.9)
    net = build_network(parse(PNASNET5), s)
    x = torch.randn(4, 3, 8, 8)
    assert not torch.equal(net(x), net(x))  # random paths dropped
    net.drop_path_scale = 0.0
    assert torch.equal(net(x), net(x))
    net.drop_path_scale = 1.0
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    assert [round(c.drop_prob, 6) for c in net.cells] == [round(0.9 * (i + 1) / 5, 6) for i in range(5)]


def test_aux_head_in_training_only() -> None:
    net = build_network(
        parse(PNASNET5), NetworkSettings(num_classes=5, cells_per_stack=2, filters=4, aux_head=True)
    )
    assert net.aux_index == 4  # the cell before the last reduction
    x = torch.randn(2, 3, 8, 8)
    logits, aux = net.forward_with_aux(x)
    assert logits.shape == aux.shape == (2, 5)
    (logits.sum() + aux.sum()).backward()
    net.eval()
    with torch.no_grad():
        logits, aux = net.forward_with_aux(x)
        assert aux is None and torch.equal(logits, net(x))
    plain = build_network(parse(PNASNET5), TINY)
    assert plain.train().forward_with_aux(x)[1] is None


def test_torchscript() -> None:
    net = build_network(
        parse("0:sep3x3,1:identity;2:max3x3,0:dil3x3"), NetworkSettings(filters=4, aux_head=True)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.script(net)
    x = torch.randn(2, 3, 8, 8)
    net.eval(), scripted.eval()
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), net(x))


# --------------------------------------------------------------------------- complexity, settings


def test_mult_adds_scale_with_image_area_and_restore_mode() -> None:
    net = build_network(parse(PNASNET5), TINY)
    small, big = count_mult_adds(net, (3, 16, 16)), count_mult_adds(net, (3, 32, 32))
    assert small > 0 and 3.5 < big / small < 4.5
    assert net.training
    net.eval()
    count_mult_adds(net, (3, 16, 16))
    assert not net.training
    with pytest.raises(PnasError, match="input_shape"):
        count_mult_adds(net, (16, 16))


def test_build_is_deterministic_under_a_seed() -> None:
    nets = []
    for _ in range(2):
        torch.manual_seed(5)
        nets.append(build_network(parse(PNASNET5), TINY))
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("filters", 2),
        ("stem", "mnist"),
        ("num_classes", 0),
        ("cells_per_stack", 0),
        ("drop_path", 1.0),
        ("dropout", -0.1),
        ("stem_filters", 0),
        ("num_reductions", -1),
    ],
)
def test_bad_settings_name_the_key(key: str, value: object) -> None:
    with pytest.raises(PnasError, match=key):
        NetworkSettings(**{key: value})


def test_aux_head_needs_a_reduction() -> None:
    with pytest.raises(PnasError, match="aux_head"):
        NetworkSettings(aux_head=True, num_reductions=0)


def test_build_network_needs_a_cell() -> None:
    with pytest.raises(PnasError, match="Cell"):
        build_network(PNASNET5, TINY)  # type: ignore[arg-type]


def test_cells_nobody_reads_are_not_built() -> None:
    """A cell that never reads H^{c-1} leaves every other cell unread: those are skipped, so every
    parameter shapes the output (and counts are honest), and the output is still right-sized."""
    only_c2 = parse("0:sep5x5,0:avg3x3")
    net = build_network(only_c2, TINY)
    skipped = [i for i, c in enumerate(net.cells) if isinstance(c, SkippedCell)]
    assert skipped == [1, 3]  # 5 cells (N=1, two reductions): the last reads cell 2, which reads cell 0
    assert live_cells(only_c2, 5) == {0, 2, 4}
    run_forward_backward(net, torch.randn(2, 3, 8, 8))
    both = build_network(parse("0:sep5x5,1:avg3x3"), TINY)
    assert not any(isinstance(c, SkippedCell) for c in both.cells)
    assert count_params(net) < count_params(both)
    with_aux = build_network(only_c2, replace(TINY, aux_head=True))  # the aux head keeps its cell alive
    assert with_aux.aux_index not in [i for i, c in enumerate(with_aux.cells) if isinstance(c, SkippedCell)]


def test_written_order_is_the_canonical_network_with_other_channel_order() -> None:
    written = WrittenCell.parse(PNASNET5_PAPER_ORDER)
    assert written.text == PNASNET5 and written.cell == parse(PNASNET5)
    assert [b.text for b in written.blocks] == PNASNET5_PAPER_ORDER.split(";")
    settings = NetworkSettings(num_classes=10, cells_per_stack=1, filters=8)
    a, b = build_network(written, settings), build_network(parse(PNASNET5), settings)
    assert count_params(a) == count_params(b) and a.cell_text == b.cell_text == PNASNET5
