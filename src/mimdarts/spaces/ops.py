"""Candidate operations and their registries.

An op factory has the signature ``factory(C, stride, affine) -> nn.Module`` and maps
``[B, C, H, W]`` to ``[B, C, H/stride, W/stride]``. Each search space has its own ordered
registry; the order is the order of α's columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenotypeError

OpFactory = Callable[[int, int, bool], nn.Module]
# (C, stride, m) -> the op on m edges sharing their input (see mimdarts.spaces.grouped)
GroupFactory = Callable[[int, int, int], nn.Module]


class OpRegistry:
    """An ordered name -> factory map; the order defines α's columns."""

    def __init__(self, space: str) -> None:
        self.space = space
        self._ops: dict[str, OpFactory] = {}
        self._groups: dict[str, GroupFactory] = {}

    def register(self, name: str) -> Callable[[OpFactory], OpFactory]:
        def deco(factory: OpFactory) -> OpFactory:
            if name in self._ops:
                raise ValueError(f"op {name!r} registered twice in {self.space}")
            self._ops[name] = factory
            return factory
        return deco

    def register_group(self, name: str) -> Callable[[GroupFactory], GroupFactory]:
        """Register the grouped form of op ``name`` (optional: ops without one run per edge)."""
        self.check(name)

        def deco(factory: GroupFactory) -> GroupFactory:
            self._groups[name] = factory
            return factory
        return deco

    def group_factory(self, name: str) -> GroupFactory | None:
        self.check(name)
        return self._groups.get(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._ops)

    def index(self, name: str) -> int:
        self.check(name)
        return self.names.index(name)

    def check(self, name: str) -> None:
        if name not in self._ops:
            raise GenotypeError(f"unknown op {name!r} for the {self.space} space; "
                                f"known ops: {', '.join(self._ops)}")

    def build(self, name: str, C: int, stride: int, affine: bool) -> nn.Module:
        self.check(name)
        return self._ops[name](C, stride, affine)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ops)

    def __len__(self) -> int:
        return len(self._ops)


# ---------------------------------------------------------------- building blocks


def mix_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, scale: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """``bn(x)``, times ``scale [C]`` per channel when given (the op's mixing weight).

    For an affine-free ``bn`` the scale becomes BN's own weight: the product costs no extra
    pass over memory, and its gradient, ``sum(grad * x_hat)``, is a sum BN's backward
    computes anyway (``addcmul(out, w, bn(x))`` reads the gradient and BN's output once more
    for it, and once more to scale the gradient). Exact. Any other BN (its own weight, a
    cumulative average, a subclass such as SyncBatchNorm) falls back to ``bn(x) * scale``.
    The folded call bypasses ``bn``'s forward hooks.
    """
    if scale is None:
        return bn(x)
    if bn.affine or bn.momentum is None or type(bn) is not nn.BatchNorm2d:
        y = bn(x)
        return y * scale.to(y.dtype).view(1, -1, 1, 1)
    # what nn.BatchNorm2d.forward does, with ``scale`` as the weight
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    keep = not bn.training or bn.track_running_stats  # update / use the running statistics
    return F.batch_norm(x, bn.running_mean if keep else None, bn.running_var if keep else None,
                        scale, None, batch_stats, bn.momentum, bn.eps)


class Zero(nn.Module):
    """The `none` op: zeros of the output shape (strided at stride 2)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Identity(nn.Module):
    """skip_connect at stride 1. A class of its own so drop-path can recognise it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class ReLUConvBN(nn.Sequential):
    """ReLU -> Conv(k, stride, no bias) -> BN."""

    folds_weight = True  # forward_activated takes a scale (mix_batch_norm)

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int,
                 affine: bool, dilation: int = 1) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel, stride, padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward_activated(self, r: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Forward for an input that already went through ReLU (shared across ops), times
        ``scale [C_out]`` if given (see :func:`mix_batch_norm`)."""
        return mix_batch_norm(self[2], self[1](r), scale)


class DilConv(nn.Sequential):
    """ReLU -> depthwise kxk (dilated) -> pointwise 1x1 -> BN."""

    folds_weight = True  # forward_activated takes a scale (mix_batch_norm)

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int,
                 dilation: int, affine: bool) -> None:
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel, stride, padding, dilation=dilation, groups=C_in,
                      bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine),
        )

    def forward_activated(self, r: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Forward for an input that already went through ReLU (shared across ops), times
        ``scale [C_out]`` if given (see :func:`mix_batch_norm`)."""
        return mix_batch_norm(self[3], self[2](self[1](r)), scale)


class SepConv(nn.Sequential):
    """Two DilConv(dilation=1) blocks; only the first one is strided."""

    folds_weight = True  # forward_activated takes a scale (mix_batch_norm)

    def __init__(self, C_in: int, C_out: int, kernel: int, stride: int, padding: int,
                 affine: bool) -> None:
        super().__init__(
            DilConv(C_in, C_in, kernel, stride, padding, 1, affine),
            DilConv(C_in, C_out, kernel, 1, padding, 1, affine),
        )

    def forward_activated(self, r: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Forward for an input that already went through ReLU (shared across ops), times
        ``scale [C_out]`` if given (see :func:`mix_batch_norm`)."""
        return self[1].forward_activated(F.relu(self[0].forward_activated(r)), scale)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two 1x1 stride-2 convs on
    inputs offset by one pixel, concatenated, then BN. ``[B, C_in, H, W] -> [B, C_out, H/2, W/2]``.
    """

    folds_weight = True  # forward_activated takes a scale (mix_batch_norm)

    def __init__(self, C_in: int, C_out: int, affine: bool) -> None:
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_activated(self.relu(x))

    def forward_activated(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Forward for an input that already went through ReLU (shared across ops), times
        ``scale [C_out]`` if given (see :func:`mix_batch_norm`)."""
        # The second conv sees the input shifted by one pixel, so odd pixels are used too.
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return mix_batch_norm(self.bn, torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1),
                              scale)


class _GradChannelsLast(torch.autograd.Function):
    """Identity whose backward hands the gradient on as a channels_last tensor.

    A gradient that reaches a group through a channel slice of a concatenation arrives in
    NCHW order; BatchNorm's and the convolutions' backward kernels are several times slower
    on such a gradient for channels_last activations than on a channels_last one.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


def grad_in_layout(x: torch.Tensor) -> torch.Tensor:
    """``x``, whose gradient will be handed on channels_last if ``x`` is channels_last."""
    if torch.is_grad_enabled() and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return _GradChannelsLast.apply(x)
    return x


class MixedOp(nn.Module):
    """Sum of all candidate ops of one edge weighted by softmax(α): the supernet's edge.

    ``forward(x [B, C, H, W], weights [K]) -> [B, C, H/stride, W/stride]``. Search-time
    shortcuts, all exact:
    - ``skip_none``: the `none` op is not computed (its output is zero; its α still gets a
      gradient through the softmax normalisation of the others);
    - ``share_relu``: the ops that start with ReLU of the input (the convs, FactorizedReduce)
      share one ReLU instead of computing it, and its backward, each; with a ``shared`` dict
      passed by the cell (one per source node), the ReLU and the parameter-free ops (pools,
      identity) are computed once for all the edges that read the same input;
    - ``fold_weights``: an op ending in an affine-free BN (``folds_weight``) takes its
      weight as that BN's weight (:func:`mix_batch_norm`) instead of a separate product.
    ``wrap(name, op)`` may decorate an op (DARTS adds BN after the pools of its search net).
    """

    def __init__(self, registry: OpRegistry, C: int, stride: int, skip_none: bool = True,
                 share_relu: bool = True,
                 wrap: Callable[[str, nn.Module], nn.Module] | None = None,
                 fold_weights: bool = True) -> None:
        super().__init__()
        self.C = C
        self.ops = nn.ModuleDict()  # keyed by op name: checkpoints do not depend on skip_none
        self.op_index: list[int] = []  # column of α for each entry of self.ops
        for k, name in enumerate(registry.names):
            if skip_none and name == "none":
                continue
            op = registry.build(name, C, stride, affine=False)
            self.ops[name] = wrap(name, op) if wrap else op
            self.op_index.append(k)
        self.takes_activated = [share_relu and hasattr(op, "forward_activated")
                                for op in self.ops.values()]
        self.folds = [fold_weights and getattr(op, "folds_weight", False) for op in self.ops.values()]
        # parameter-free ops: the same output on every edge that reads the same input
        self.shareable = [share_relu and not any(True for _ in op.parameters())
                          for op in self.ops.values()]

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                shared: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``shared``: outputs already computed on ``x`` by another edge (ReLU, pools...),
        filled in here; the cell passes one dict per source node (modules tied, so exact)."""
        if shared is None:
            shared = {}
        activated = None
        if any(self.takes_activated):
            activated = shared.get("relu")
            if activated is None:
                activated = shared["relu"] = F.relu(x)
        # per-channel weights [K, C] for the folding ops (a contiguous row each: BN's fast path)
        scales = weights.unsqueeze(1).expand(-1, self.C).contiguous() if any(self.folds) else None
        out = None
        for k, (name, op), pre, share, fold in zip(self.op_index, self.ops.items(),
                                                   self.takes_activated, self.shareable, self.folds):
            if fold:
                assert scales is not None
                r = activated if pre else F.relu(x)
                y = op.forward_activated(r, scales[k])  # already weighted
                out = y if out is None else out + y
                continue
            if share:
                y = shared.get(name)
                if y is None:
                    y = shared[name] = op(x)
            else:
                y = op.forward_activated(activated) if pre else op(x)
            # addcmul: out + w_k * y in one pass over memory instead of a product and a sum
            out = weights[k] * y if out is None else torch.addcmul(out, weights[k], y)
        assert out is not None
        return grad_in_layout(out)


# ---------------------------------------------------------------- DARTS space (order matters)

DARTS_OPS = OpRegistry("darts")
DARTS_OPS.register("none")(lambda C, stride, affine: Zero(stride))
DARTS_OPS.register("max_pool_3x3")(lambda C, stride, affine: nn.MaxPool2d(3, stride, padding=1))
DARTS_OPS.register("avg_pool_3x3")(
    lambda C, stride, affine: nn.AvgPool2d(3, stride, padding=1, count_include_pad=False))
DARTS_OPS.register("skip_connect")(
    lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine))
DARTS_OPS.register("sep_conv_3x3")(lambda C, stride, affine: SepConv(C, C, 3, stride, 1, affine))
DARTS_OPS.register("sep_conv_5x5")(lambda C, stride, affine: SepConv(C, C, 5, stride, 2, affine))
DARTS_OPS.register("dil_conv_3x3")(lambda C, stride, affine: DilConv(C, C, 3, stride, 2, 2, affine))
DARTS_OPS.register("dil_conv_5x5")(lambda C, stride, affine: DilConv(C, C, 5, stride, 4, 2, affine))

DARTS_PRIMITIVES: tuple[str, ...] = DARTS_OPS.names


# ---------------------------------------------------------------- NAS-Bench-201 space (order matters)
# nor_conv = ReLU -> Conv(no bias) -> BN; the pool has no BN after it (unlike DARTS's search net).
# Cells of the benchmark only use stride 1; stride 2 is supported so every op keeps the
# factory contract (skip_connect reduces with FactorizedReduce, as in the DARTS registry).

NB201_OPS = OpRegistry("nb201")
NB201_OPS.register("none")(lambda C, stride, affine: Zero(stride))
NB201_OPS.register("skip_connect")(
    lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine))
NB201_OPS.register("nor_conv_1x1")(lambda C, stride, affine: ReLUConvBN(C, C, 1, stride, 0, affine))
NB201_OPS.register("nor_conv_3x3")(lambda C, stride, affine: ReLUConvBN(C, C, 3, stride, 1, affine))
NB201_OPS.register("avg_pool_3x3")(
    lambda C, stride, affine: nn.AvgPool2d(3, stride, padding=1, count_include_pad=False))

NB201_PRIMITIVES: tuple[str, ...] = NB201_OPS.names
