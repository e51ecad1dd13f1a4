"""The grouped forms of the candidate ops: one module for an op on the ``m`` edges that leave
one node (they read the same tensor), with the per-edge mathematics.

An op with weights on ``m`` edges becomes one op with ``m`` times the output channels: a
dense conv stacks its edges' filters, a depthwise conv runs on the input repeated ``m`` times
with ``groups = m * C``, a pointwise conv after it uses ``groups = m``, and the BatchNorm
(affine=False) of ``m * C`` channels is the ``m`` per-edge BatchNorms side by side. Each edge
keeps its own weights and BN statistics; edge ``e`` is in channels ``[e*C, (e+1)*C)``.
Registered with their plain forms in :mod:`mimdarts.spaces.candidates`; the mixing that
runs them is :mod:`mimdarts.spaces.mixing.grouped`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .batchnorm import BatchNorm2d, conv_batch_norm, mix_batch_norm
from .ops import DilatedConv2d


class GroupedOp(nn.Module):
    """One op on ``m`` edges that share their input.

    ``forward(x [B, C, H, W], r = relu(x), r_m, scale) -> [B, m * C, H', W']``, edge ``e`` in
    channels ``[e*C, (e+1)*C)``; ``r_m`` is ``r`` repeated ``m`` times along channels (made
    once per group, only when some op sets ``uses_r_m``); ``scale [m * C]``, for ops that set
    ``folds_weight``: the edges' mixing weights, applied by the last BN (``mix_batch_norm``).
    """

    m: int
    uses_r_m: bool = False
    folds_weight: bool = False  # forward takes a scale (applied by mix_batch_norm): opt in


class GroupedDilConv(GroupedOp):
    """``m`` DilConvs (depthwise kxk, pointwise 1x1, BN) as one.

    ``shared_input=True``: all edges read the same ``r [B, C, H, W]`` (the first stage of an
    edge); otherwise ``r`` is already per edge, ``[B, m * C, H, W]`` (SepConv's second stage).
    """

    folds_weight = True

    def __init__(self, C: int, kernel: int, stride: int, padding: int, dilation: int, m: int,
                 shared_input: bool = True) -> None:
        super().__init__()
        self.m, self.shared_input = m, shared_input
        self.uses_r_m = shared_input and m > 1
        # Conv2d's default init draws each edge's filters from the same distribution as the
        # per-edge convs (fan_in = k*k for depthwise, C for the grouped pointwise).
        self.depthwise = DilatedConv2d(m * C, m * C, kernel, stride, padding,
                                       dilation=dilation, groups=m * C, bias=False)
        self.pointwise = nn.Conv2d(m * C, m * C, 1, groups=m, bias=False)
        self.bn = BatchNorm2d(m * C, affine=False)

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        # the depthwise conv of edge e reads copy e of the shared input
        z = r_m if self.uses_r_m else r
        return conv_batch_norm(self.pointwise, self.bn, self.depthwise(z), scale)


class GroupedSepConv(GroupedOp):
    """``m`` SepConvs: a shared-input GroupedDilConv, ReLU, a per-edge GroupedDilConv."""

    folds_weight = True

    def __init__(self, C: int, kernel: int, stride: int, padding: int, m: int) -> None:
        super().__init__()
        self.m = m
        self.first = GroupedDilConv(C, kernel, stride, padding, 1, m, shared_input=True)
        self.second = GroupedDilConv(C, kernel, 1, padding, 1, m, shared_input=False)
        self.uses_r_m = self.first.uses_r_m

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        return self.second(x, F.relu(self.first(x, r, r_m)), scale=scale)


class GroupedReLUConvBN(GroupedOp):
    """``m`` ReLUConvBNs: one dense conv with the edges' filters stacked, BN of ``m * C``."""

    folds_weight = True

    def __init__(self, C: int, kernel: int, stride: int, padding: int, m: int) -> None:
        super().__init__()
        self.m = m
        self.conv = nn.Conv2d(C, m * C, kernel, stride, padding, bias=False)
        self.bn = BatchNorm2d(m * C, affine=False)

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        return conv_batch_norm(self.conv, self.bn, r, scale)


class GroupedFactorizedReduce(GroupedOp):
    """``m`` FactorizedReduces (stride 2): two dense 1x1 convs of ``m * C/2`` outputs."""

    folds_weight = True

    def __init__(self, C: int, m: int) -> None:
        super().__init__()
        if C % 2:
            raise ValueError(f"FactorizedReduce needs an even C, got {C}")
        self.m, self.half = m, C // 2
        self.conv_1 = nn.Conv2d(C, m * self.half, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C, m * self.half, 1, stride=2, bias=False)
        self.bn = BatchNorm2d(m * C, affine=False)

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        shifted = F.pad(r[:, :, 1:, 1:], (0, 1, 0, 1))
        a = self.conv_1(r).unflatten(1, (self.m, self.half))
        b = self.conv_2(shifted).unflatten(1, (self.m, self.half))
        # per edge: its conv_1 half, then its conv_2 half (as FactorizedReduce concatenates)
        return mix_batch_norm(self.bn, torch.cat([a, b], dim=2).flatten(1, 2), scale)
