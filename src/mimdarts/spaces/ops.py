"""The candidate operations, as plain modules.

Each maps ``[B, C, H, W]`` to ``[B, C, H/stride, W/stride]``. The evaluation networks build
them directly; the supernet builds them through each space's registry
(:mod:`mimdarts.spaces.candidates`) and mixes them (:mod:`mimdarts.spaces.mixing`, which also
knows how to run them from a shared ReLU with the mixing weight folded into their last BN).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .batchnorm import BatchNorm2d, conv_batch_norm


class Zero(nn.Module):
    """The `none` op: zeros of the output shape (strided at stride 2)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Noise(nn.Module):
    """The `noise` op of RobustDARTS's space S4: fresh N(0, 1) samples of the output shape
    (the input subsampled by the stride); the input's values are ignored, and it has no
    parameters and passes no gradient.

    The samples come from torch's global generator on the input's device (``torch.randn``),
    so a run that uses it depends on the global RNG (which checkpoints save). ``sample``,
    when set (a search cell sets it, :mod:`mimdarts.spaces.noise`), supplies the samples
    instead: ``sample(like, channels_last) -> tensor of like's shape``.
    """

    stochastic = True  # a fresh draw on every call: never computed once for several edges

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride
        # (like, channels_last) -> samples of like's shape; None: torch.randn (this module
        # imports torch only, so the hook's type stays in words)
        self.sample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        like = x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]
        # drawn in NCHW order whatever x's layout, so channels_last changes no value
        channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
            and not x.is_contiguous()
        if self.sample is not None:
            return self.sample(like, channels_last)
        noise = torch.randn(like.shape, dtype=like.dtype, device=like.device)
        return noise.contiguous(memory_format=torch.channels_last) if channels_last else noise


class Identity(nn.Module):
    """skip_connect at stride 1. A class of its own so drop-path can recognise it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class DilatedConv2d(nn.Conv2d):
    """:class:`torch.nn.Conv2d` (the same parameters and state dict) that runs a conv whose
    stride equals its dilation ``d > 1`` (padding a multiple of ``d``; a reduction cell's
    dil_conv: stride 2, dilation 2) as the same filter at stride 1, dilation 1 and padding
    ``p / d`` on the input's every ``d``-th row and column, on the CPU.

    The same products (output ``i`` reads input ``d*i + d*a - p = d*(i + a - p/d)`` for tap
    ``a``: only rows and columns that are multiples of ``d``): the fp32 forward is the same,
    the gradients' sums run in another order (1e-7 to 2e-6 relative). Why: torch's CPU
    kernels for strided dilated depthwise convs are slow, in channels_last most: forward +
    backward at 64x32x32x32, 3x3, channels_last, about 19-22 ms, this form 1.6-4.4 ms (NCHW:
    about 7 and 2.3-3.0; ``benchmarks/dilated_conv.py``, several runs). GPUs keep the plain
    call (not measured there: the benchmark sets ``devices`` on its instance to time both).
    Unbatched ``[C, H, W]`` inputs take torch's call. Not scriptable (``torch.jit``).
    """

    devices: tuple[str, ...] = ("cpu",)  # device types that run the stride-1 form

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, s, p = self.dilation, self.stride, self.padding
        if (x.device.type not in self.devices or x.dim() != 4 or isinstance(p, str)
                or self.padding_mode != "zeros" or d != s or min(d) < 2 or p[0] % d[0] or p[1] % d[1]):
            return super().forward(x)
        return F.conv2d(x[:, :, ::d[0], ::d[1]], self.weight, self.bias, 1,
                        (p[0] // d[0], p[1] // d[1]), 1, self.groups)


def _pair(v: int | tuple[int, ...] | list[int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (v[0], v[1])


class _MaxPoolFunction(torch.autograd.Function):
    """``F.max_pool2d`` (dilation 1, floor mode) whose backward finds the maxima again
    instead of keeping them. ``kernel``, ``stride``, ``padding``: pairs of ints."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int]) -> torch.Tensor:
        return F.max_pool2d(x, kernel, stride, padding)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.args = inputs[1:]

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, ...]:
        x, = ctx.saved_tensors
        if torch.is_grad_enabled():  # a gradient of this gradient will be asked: through ops
            return torch.autograd.grad(F.max_pool2d(x, *ctx.args), x, g, create_graph=True)[0], \
                None, None, None
        k, s, p = ctx.args
        _, where = F.max_pool2d(x, k, s, p, return_indices=True)
        return (torch.ops.aten.max_pool2d_with_indices_backward(g, x, k, s, p, (1, 1), False, where),
                None, None, None)


class MaxPool2d(nn.MaxPool2d):
    """:class:`torch.nn.MaxPool2d` whose backward, on the CPU, finds each window's maximum
    again instead of keeping where it was.

    Why: torch keeps the maxima's indices for the backward, int64, twice the size of the fp32
    output, on top of the input it keeps anyway; finding them again costs one pooling pass.
    The same gradient bit for bit (the same ATen backward on the same indices). Only for
    dilation 1, floor mode and no returned indices; elsewhere torch's call.
    """

    devices: tuple[str, ...] = ("cpu",)  # device types that find the maxima again

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type not in self.devices or not (torch.is_grad_enabled() and x.requires_grad)
                or x.dim() != 4 or self.return_indices or self.ceil_mode
                or _pair(self.dilation) != (1, 1)):
            return super().forward(x)
        return _MaxPoolFunction.apply(x, _pair(self.kernel_size), _pair(self.stride),
                                      _pair(self.padding))


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv(k, stride, no bias) -> BN."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int,
                 affine: bool, dilation: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride, padding, dilation=dilation, bias=False),
            BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (a 1x1 conv's output is computed again in BN's backward: conv_batch_norm)
        return conv_batch_norm(self[1], self[2], self[0](x))


class DilConv(nn.Sequential):
    """ReLU -> depthwise kxk (dilated) -> pointwise 1x1 -> BN."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int,
                 dilation: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            DilatedConv2d(C_in, C_in, kernel, stride, padding, dilation=dilation, groups=C_in,
                          bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            BatchNorm2d(C_out, affine=affine),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (the pointwise conv's output is computed again in BN's backward: conv_batch_norm)
        return conv_batch_norm(self[2], self[3], self[1](self[0](x)))


class SepConv(nn.Sequential):
    """Two DilConv(dilation=1) blocks; only the first one is strided."""

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int,
                 affine: bool) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two 1x1 stride-2 convs on
    inputs offset by one pixel, concatenated, then BN. ``[B, C_in, H, W] -> [B, C_out, H/2, W/2]``.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.convs(self.relu(x)))

    def convs(self, r: torch.Tensor) -> torch.Tensor:
        """Both convs on ``r = relu(x)``, concatenated (before BN): ``[B, C_out, H/2, W/2]``."""
        # The second conv sees the input shifted by one pixel, so odd pixels are used too.
        shifted = nn.functional.pad(r[:, :, 1:, 1:], (0, 1, 0, 1))
        return torch.cat([self.conv_1(r), self.conv_2(shifted)], dim=1)
