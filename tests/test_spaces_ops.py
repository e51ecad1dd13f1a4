import pytest
import torch

from mimdarts.errors import GenotypeError
from mimdarts.spaces.candidates import DARTS_OPS, DARTS_PRIMITIVES
from mimdarts.spaces.ops import FactorizedReduce


def test_darts_op_order_is_the_papers():
    assert DARTS_PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                                "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


@pytest.mark.parametrize("name", DARTS_PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("affine", [False, True])
def test_every_op_shape(name, stride, affine):
    op = DARTS_OPS.build(name, 6, stride, affine)
    x = torch.randn(2, 6, 8, 8)
    assert op(x).shape == (2, 6, 8 // stride, 8 // stride)


@pytest.mark.parametrize("stride", [1, 2])
def test_none_is_zero(stride):
    y = DARTS_OPS.build("none", 4, stride, False)(torch.randn(2, 4, 8, 8))
    assert torch.count_nonzero(y) == 0


def test_factorized_reduce_sees_odd_pixels():
    fr = FactorizedReduce(2, 4, affine=False).eval()
    x = torch.zeros(1, 2, 4, 4)
    x[..., 1, 1] = 1.0  # only an odd pixel set: conv_1 (even pixels) cannot see it
    y1 = fr(x)
    y0 = fr(torch.zeros_like(x))
    assert not torch.allclose(y0, y1)


def test_unknown_op_is_a_clear_error():
    with pytest.raises(GenotypeError, match="^unknown op 'conv_9x9'; choose one of none, max_pool_3x3"):
        DARTS_OPS.build("conv_9x9", 4, 1, False)


def test_plain_ops_know_nothing_of_the_supernet():
    # the evaluation networks use these modules; the mixing code builds on them, not the reverse
    import ast
    from pathlib import Path

    import mimdarts.spaces.ops as ops

    imported = {n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(ast.parse(Path(ops.__file__).read_text()))
                if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    # (batchnorm: torch's BatchNorm with exact CPU sums, itself importing torch and the
    # standard library alone)
    assert imported == {"__future__", "typing", "torch", "torch.nn.functional", "batchnorm"}
    import mimdarts.spaces.batchnorm as bn
    assert {n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(ast.parse(Path(bn.__file__).read_text()))
            if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names} <= \
        {"__future__", "functools", "collections.abc", "torch", "torch.nn.functional", "typing"}


def test_the_op_registries_follow_the_name_tuples():
    # the architecture parsers validate against the tuples (no torch), α's columns follow the
    # registries: both must list the same names in the same order
    from mimdarts.spaces import primitives
    from mimdarts.spaces.candidates import NB201_OPS

    assert DARTS_OPS.names == primitives.DARTS_PRIMITIVES == DARTS_PRIMITIVES
    assert NB201_OPS.names == primitives.NB201_PRIMITIVES


@pytest.mark.parametrize("hw", [8, 9])
@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_dilated_conv_computes_torchs_conv(hw, kernel, layout):
    # a reduction cell's dil_conv (stride 2 = dilation 2) run at stride 1 on every other row
    # and column: the same output and gradients (float64), also for an odd input size
    from torch import nn

    from mimdarts.spaces.ops import DilatedConv2d

    plain = nn.Conv2d(6, 6, kernel, 2, kernel - 1, dilation=2, groups=6, bias=False).double()
    ours = DilatedConv2d(6, 6, kernel, 2, kernel - 1, dilation=2, groups=6, bias=False).double()
    ours.load_state_dict(plain.state_dict())
    x = torch.randn(3, 6, hw, hw, dtype=torch.float64).contiguous(memory_format=layout)
    outs = []
    for conv in (plain, ours):
        xi = x.clone().requires_grad_()
        y = conv(xi)
        gx, gw = torch.autograd.grad(y, (xi, conv.weight), torch.ones_like(y))
        outs.append((y, gx, gw))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # a conv the identity does not cover (stride 1) is torch's own call
    same = DilatedConv2d(6, 6, 3, 1, 2, dilation=2, groups=6, bias=False).double()
    torch.testing.assert_close(same(x), torch.nn.functional.conv2d(x, same.weight, None, 1, 2, 2, 6))


def test_dilated_conv_twice_differentiable_and_unbatched():
    # second-order search and the curvature monitor differentiate the undilated form twice
    from mimdarts.spaces.ops import DilatedConv2d

    conv = DilatedConv2d(2, 2, 3, 2, 2, dilation=2, groups=2, bias=True).double()
    x = torch.randn(2, 2, 7, 7, dtype=torch.float64, requires_grad=True)
    w = conv.weight.detach().clone().requires_grad_()
    b = conv.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradgradcheck(
        lambda a, w_, b_: torch.func.functional_call(conv, {"weight": w_, "bias": b_}, (a,)),
        (x, w, b))
    # an unbatched [C, H, W] input is torch's own call, as for nn.Conv2d
    torch.testing.assert_close(conv(x[0].detach()), super(DilatedConv2d, conv).forward(x[0].detach()))


def test_grouped_dil_conv_matches_torchs_dilated_conv(monkeypatch):
    # the grouped form (m edges as one depthwise conv) takes the undilated form as well
    from mimdarts.spaces.grouped_ops import GroupedDilConv
    from mimdarts.spaces.ops import DilatedConv2d

    torch.manual_seed(0)
    op = GroupedDilConv(3, 5, 2, 4, 2, m=2).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    r = x.relu()

    def run():
        op.zero_grad()
        y = op(x, r, r.repeat(1, 2, 1, 1))
        y.square().sum().backward()
        return y.detach(), [p.grad.clone() for p in op.parameters()]

    ours = run()
    monkeypatch.setattr(DilatedConv2d, "devices", ())  # torch's dilated conv
    plain = run()
    torch.testing.assert_close(ours[0], plain[0], rtol=1e-12, atol=1e-12)
    for a, b in zip(ours[1], plain[1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
