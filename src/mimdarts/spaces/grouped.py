"""Edge grouping: the mixed ops of all edges that leave one node, computed as one.

In a cell, every edge leaving node ``j`` reads the same tensor. The reference supernet runs
each edge's candidate ops separately; the grouped supernet (``model.group_edges``) runs
them once per *source node*, with the same mathematics:

- parameter-free ops (pools, identity) give the same output on every edge: computed once
  (DARTS's BN without affine after a pool too: same input, same statistics);
- an op with weights on ``m`` edges becomes one op with ``m`` times the output channels:
  a dense conv stacks its edges' filters, a depthwise conv runs on the input repeated ``m``
  times with ``groups = m * C``, a pointwise conv after it uses ``groups = m``, and the
  BatchNorm (affine=False) of ``m * C`` channels is the ``m`` per-edge BatchNorms side by side.

Each edge keeps its own weights and BN statistics; only the layout differs (``[m * C, ...]``
stacks, edge ``e`` in channels ``[e*C, (e+1)*C)``). Far fewer, larger kernels: about 2.5x
fewer ops per DARTS cell, which is what a GPU needs at C=16, and pools run 5 times instead
of 14 per cell. :meth:`GroupedEdges.load_mixed` copies weights from per-edge mixed ops
(tests compare both layouts on the same weights).
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .ops import (
    DARTS_OPS,
    NB201_OPS,
    DilConv,
    FactorizedReduce,
    Identity,
    MixedOp,
    OpRegistry,
    ReLUConvBN,
    SepConv,
    grad_in_layout,
    mix_batch_norm,
)

# ---------------------------------------------------------------- grouped ops


class GroupedOp(nn.Module, metaclass=ABCMeta):
    """One op on ``m`` edges that share their input.

    ``forward(x [B, C, H, W], r = relu(x), r_m, scale) -> [B, m * C, H', W']``, edge ``e`` in
    channels ``[e*C, (e+1)*C)``; ``r_m`` is ``r`` repeated ``m`` times along channels (made
    once per group, only when some op sets ``uses_r_m``); ``scale [m * C]``, for ops that set
    ``folds_weight``: the edges' mixing weights, applied by the last BN (``mix_batch_norm``).
    ``load_edges`` copies the weights of ``m`` per-edge modules.
    """

    m: int
    uses_r_m: bool = False
    folds_weight: bool = False  # forward takes a scale (applied by mix_batch_norm): opt in

    @abstractmethod
    def load_edges(self, ops: Sequence[nn.Module]) -> None:
        """Copy the weights and BN statistics of ``m`` per-edge modules into this op."""


def _stack_into(dst: torch.Tensor, srcs: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        dst.copy_(torch.cat([s.detach() for s in srcs]).view_as(dst))


def _load_bn(bn: nn.BatchNorm2d, bns: Sequence[nn.BatchNorm2d]) -> None:
    _stack_into(bn.running_mean, [b.running_mean for b in bns])
    _stack_into(bn.running_var, [b.running_var for b in bns])
    with torch.no_grad():
        bn.num_batches_tracked.copy_(bns[0].num_batches_tracked)


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
        self.depthwise = nn.Conv2d(m * C, m * C, kernel, stride, padding, dilation=dilation,
                                   groups=m * C, bias=False)
        self.pointwise = nn.Conv2d(m * C, m * C, 1, groups=m, bias=False)
        self.bn = nn.BatchNorm2d(m * C, affine=False)

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        # the depthwise conv of edge e reads copy e of the shared input
        z = r_m if self.uses_r_m else r
        return mix_batch_norm(self.bn, self.pointwise(self.depthwise(z)), scale)

    def load_edges(self, ops: Sequence[nn.Module]) -> None:
        convs: Sequence[DilConv] = ops  # type: ignore[assignment]
        _stack_into(self.depthwise.weight, [op[1].weight for op in convs])
        _stack_into(self.pointwise.weight, [op[2].weight for op in convs])
        _load_bn(self.bn, [op[3] for op in convs])


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

    def load_edges(self, ops: Sequence[nn.Module]) -> None:
        seps: Sequence[SepConv] = ops  # type: ignore[assignment]
        self.first.load_edges([op[0] for op in seps])
        self.second.load_edges([op[1] for op in seps])


class GroupedReLUConvBN(GroupedOp):
    """``m`` ReLUConvBNs: one dense conv with the edges' filters stacked, BN of ``m * C``."""

    folds_weight = True

    def __init__(self, C: int, kernel: int, stride: int, padding: int, m: int) -> None:
        super().__init__()
        self.m = m
        self.conv = nn.Conv2d(C, m * C, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(m * C, affine=False)

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        return mix_batch_norm(self.bn, self.conv(r), scale)

    def load_edges(self, ops: Sequence[nn.Module]) -> None:
        rcbs: Sequence[ReLUConvBN] = ops  # type: ignore[assignment]
        _stack_into(self.conv.weight, [op[1].weight for op in rcbs])
        _load_bn(self.bn, [op[2] for op in rcbs])


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
        self.bn = nn.BatchNorm2d(m * C, affine=False)

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        shifted = F.pad(r[:, :, 1:, 1:], (0, 1, 0, 1))
        a = self.conv_1(r).unflatten(1, (self.m, self.half))
        b = self.conv_2(shifted).unflatten(1, (self.m, self.half))
        # per edge: its conv_1 half, then its conv_2 half (as FactorizedReduce concatenates)
        return mix_batch_norm(self.bn, torch.cat([a, b], dim=2).flatten(1, 2), scale)

    def load_edges(self, ops: Sequence[nn.Module]) -> None:
        frs: Sequence[FactorizedReduce] = ops  # type: ignore[assignment]
        _stack_into(self.conv_1.weight, [op.conv_1.weight for op in frs])
        _stack_into(self.conv_2.weight, [op.conv_2.weight for op in frs])
        _load_bn(self.bn, [op.bn for op in frs])


class PerEdge(GroupedOp):
    """Fallback for an op with no grouped form: its ``m`` per-edge modules, one after another."""

    def __init__(self, ops: Sequence[nn.Module]) -> None:
        super().__init__()
        self.m = len(ops)
        self.edges = nn.ModuleList(ops)

    def forward(self, x: torch.Tensor, r: torch.Tensor, r_m: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([op(x) for op in self.edges], dim=1)

    def load_edges(self, ops: Sequence[nn.Module]) -> None:
        for mine, theirs in zip(self.edges, ops):
            mine.load_state_dict(theirs.state_dict())


def build_group(registry: OpRegistry, name: str, C: int, stride: int, m: int,
                wrap: Callable[[str, nn.Module], nn.Module] | None = None) -> nn.Module:
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
                 wrap: Callable[[str, nn.Module], nn.Module] | None = None,
                 fold_weights: bool = True) -> None:
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

    def load_mixed(self, mixed: Sequence[MixedOp]) -> None:
        """Copy the weights and BN statistics of ``m`` per-edge mixed ops (same registry)."""
        for name, op in self.ops.items():
            edge_ops = [mo.ops[name] for mo in mixed]
            if isinstance(op, GroupedOp):
                op.load_edges(edge_ops)
            else:  # shared: parameter-free, its BN statistics are the same on every edge
                op.load_state_dict(edge_ops[0].state_dict())


def group_plan(edges: Sequence[tuple[int, int]]) -> list[tuple[int, list[int]]]:
    """Edges ``(target, source)`` grouped by source: ``[(source, [edge index, ...]), ...]``,
    sources ascending, edges in their original order within a group.

    >>> group_plan([(1, 0), (2, 0), (2, 1)])
    [(0, [0, 1]), (1, [2])]
    """
    sources = sorted({s for _, s in edges})
    return [(s, [e for e, (_, src) in enumerate(edges) if src == s]) for s in sources]


class GroupedEdges(nn.Module):
    """All edges of a cell, one :class:`EdgeGroup` per source node.

    ``edges[e] = (target, source)`` indexes states: the cell's inputs first, then its nodes;
    edges go from lower to higher states. ``make_group(source, m)`` builds a source's group.
    ``forward(inputs, weights [E, K])`` returns every state; a node is the sum of its edges'
    outputs in the order of their sources (the reference cell's order).
    """

    def __init__(self, edges: Sequence[tuple[int, int]], n_inputs: int,
                 make_group: Callable[[int, int], EdgeGroup]) -> None:
        super().__init__()
        if any(t <= s or t < n_inputs for t, s in edges):
            raise ValueError(f"edges must go from a lower state to a node, got {list(edges)}")
        self.n_inputs = n_inputs
        self.n_states = max(t for t, _ in edges) + 1
        plan = group_plan(edges)
        self.plan = [(s, [edges[e][0] for e in idx]) for s, idx in plan]  # (source, targets)
        self._edge_rows = [idx for _, idx in plan]
        # weights rows sorted by source, so each group's rows are one slice
        self.register_buffer("order", torch.tensor([e for idx in self._edge_rows for e in idx]),
                             persistent=False)
        self.groups = nn.ModuleList(make_group(s, len(t)) for s, t in self.plan)

    def forward(self, inputs: Sequence[torch.Tensor], weights: torch.Tensor) -> list[torch.Tensor]:
        w = weights.index_select(0, self.order)
        states: list[torch.Tensor | None] = [*inputs] + [None] * (self.n_states - self.n_inputs)
        row = 0
        for (source, targets), group in zip(self.plan, self.groups):
            x = states[source]
            assert x is not None
            out = group(x, w[row:row + len(targets)])
            row += len(targets)
            # chunk: its backward is one cat (select's would be m zero-filled full tensors)
            for t, y in zip(targets, out.chunk(len(targets), dim=1)):
                prev = states[t]
                states[t] = y if prev is None else prev + y
        return states  # type: ignore[return-value]

    def load_mixed(self, mixed: Sequence[MixedOp]) -> None:
        """Copy weights from per-edge mixed ops listed in the order of ``edges``."""
        for group, idx in zip(self.groups, self._edge_rows):
            group.load_mixed([mixed[e] for e in idx])


# ---------------------------------------------------------------- grouped forms of the ops
# A factory returns a GroupedOp, or a parameter-free module whose output serves all m edges.


def _skip(C: int, stride: int, m: int) -> nn.Module:
    return Identity() if stride == 1 else GroupedFactorizedReduce(C, m)


for _registry in (DARTS_OPS, NB201_OPS):
    _registry.register_group("skip_connect")(_skip)
    _registry.register_group("avg_pool_3x3")(
        lambda C, stride, m: nn.AvgPool2d(3, stride, padding=1, count_include_pad=False))
DARTS_OPS.register_group("max_pool_3x3")(lambda C, stride, m: nn.MaxPool2d(3, stride, padding=1))
DARTS_OPS.register_group("sep_conv_3x3")(lambda C, stride, m: GroupedSepConv(C, 3, stride, 1, m))
DARTS_OPS.register_group("sep_conv_5x5")(lambda C, stride, m: GroupedSepConv(C, 5, stride, 2, m))
DARTS_OPS.register_group("dil_conv_3x3")(lambda C, stride, m: GroupedDilConv(C, 3, stride, 2, 2, m))
DARTS_OPS.register_group("dil_conv_5x5")(lambda C, stride, m: GroupedDilConv(C, 5, stride, 4, 2, m))
NB201_OPS.register_group("nor_conv_1x1")(lambda C, stride, m: GroupedReLUConvBN(C, 1, stride, 0, m))
NB201_OPS.register_group("nor_conv_3x3")(lambda C, stride, m: GroupedReLUConvBN(C, 3, stride, 1, m))
