"""Edge grouping: the mixed ops of all edges that leave one node, computed as one.

In a cell, every edge leaving node ``j`` reads the same tensor. The per-edge supernet runs
each edge's candidate ops separately (:class:`~mimdarts.spaces.mixing.mixed_op.MixedOp`);
the grouped one runs them once per *source node*, with the same mathematics:

- parameter-free ops (pools, identity) give the same output on every edge: computed once
  (DARTS's BN without affine after a pool too: same input, same statistics);
- an op with weights on ``m`` edges becomes one op with ``m`` times the output channels:
  a dense conv stacks its edges' filters, a depthwise conv runs on the input repeated ``m``
  times with ``groups = m * C``, a pointwise conv after it uses ``groups = m``, and the
  BatchNorm (affine=False) of ``m * C`` channels is the ``m`` per-edge BatchNorms side by side.

Each edge keeps its own weights and BN statistics; only the layout differs (``[m * C, ...]``
stacks, edge ``e`` in channels ``[e*C, (e+1)*C)``). Far fewer, larger kernels: about 2.5x
fewer ops per DARTS cell, which is what a GPU needs at C=16, and pools run 5 times instead
of 14 per cell. An op's grouped form (:mod:`mimdarts.spaces.grouped_ops`) is registered with
the op (:mod:`mimdarts.spaces.candidates`); an op without one runs per edge (:class:`PerEdge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from ..grouped_ops import GroupedOp
from .fused import grad_in_layout
from .mixed_op import Wrap

if TYPE_CHECKING:  # the registries are built from the grouped ops below
    from ..candidates import OpRegistry

class PerEdge(GroupedOp):
    """Fallback for an op with no grouped form: its ``m`` per-edge modules, one after another."""

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.m = len(ops)
        self.edges = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([op(x) for op in self.edges], dim=1)


def build_group(registry: OpRegistry, name: str, C: int, stride: int, m: int,
                wrap: Wrap | None = None) -> nn.Module:
    """Op ``name`` on ``m`` edges: its registered grouped form, else :class:`PerEdge` (each
    edge's module decorated by ``wrap`` as :class:`MixedOp` would)."""
    factory = registry.group_factory(name)
    if factory is None:
        ops = [registry.build(name, C, stride, affine=False) for _ in range(m)]
        return PerEdge([wrap(name, op) if wrap else op for op in ops])
    return factory(C, stride, m)


# ---------------------------------------------------------------- one source node's edges


class EdgeGroup(nn.Module):
    """The mixed ops of the ``m`` edges leaving one node.

    ``forward(x [B, C, H, W], weights [m, K]) -> [B, m * C, H', W']``: per edge, the sum of its
    candidate ops weighted by its row of softmax(α). `none` is never computed (exact).
    ``wrap(name, op)`` decorates a shared (parameter-free) op, as in :class:`MixedOp`;
    ``fold_weights``: grouped ops apply their weights in their last BN, as in :class:`MixedOp`.
    """

    def __init__(self, registry: OpRegistry, C: int, stride: int, m: int,
                 wrap: Wrap | None = None, fold_weights: bool = True) -> None:
        super().__init__()
        self.m, self.C, self.fold_weights = m, C, fold_weights
        self.ops = nn.ModuleDict()  # op name -> GroupedOp, or a shared module for all edges
        self.op_index: list[int] = []  # column of α for each entry of self.ops
        for k, name in enumerate(registry.names):
            if name == "none":
                continue
            op = build_group(registry, name, C, stride, m, wrap)
            self.ops[name] = op if isinstance(op, GroupedOp) or wrap is None else wrap(name, op)
            self.op_index.append(k)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # Everything stays 4-D, [B, m * C, H', W'], so channels_last layouts carry through the
        # forward and the backward (5-D views made BN's backward fall off its fast CPU path).
        r = F.relu(x)  # shared by every op that starts with a ReLU
        # r repeated m times, shared by the depthwise convs (cat keeps channels_last)
        r_m = (torch.cat([r] * self.m, dim=1)
               if any(getattr(op, "uses_r_m", False) for op in self.ops.values()) else None)
        # per-channel weights [K, m * C]: edge e's weight repeated over its C channels, in the
        # activations' dtype (under bf16 autocast fp32 weights would promote every product)
        # (BN scales stay fp32: BN computes in fp32 and takes an fp32 weight for bf16 input)
        dev = x.device.type
        dtype = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
        scales = weights.t().repeat_interleave(self.C, dim=1)
        w = scales.to(dtype)
        out = None
        for k, op in zip(self.op_index, self.ops.values()):
            if isinstance(op, GroupedOp) and op.folds_weight and self.fold_weights:
                y = op(x, r, r_m, scales[k])  # already weighted
                out = y if out is None else out + y
                continue
            if isinstance(op, GroupedOp):
                y = op(x, r, r_m)
            else:  # parameter-free: one output serves every edge
                y = op(x)
                y = torch.cat([y] * self.m, dim=1) if self.m > 1 else y
            wk = w[k].view(1, -1, 1, 1)
            out = wk * y if out is None else torch.addcmul(out, wk, y)
        assert out is not None, "an edge group needs at least one op besides `none`"
        return grad_in_layout(out)
