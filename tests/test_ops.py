import pytest
import torch

from mimdarts.spaces.ops import DARTS_OPS, DARTS_PRIMITIVES, FactorizedReduce


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
    with pytest.raises(ValueError, match="unknown op 'conv_9x9'.*known ops: none"):
        DARTS_OPS.build("conv_9x9", 4, 1, False)
