"""Copy per-edge supernet weights into the grouped layout, to compare both on the same weights.

Test-only: the library never converts between layouts. Grouped ops stack their edges'
weights along the output channels (edge ``e`` in ``[e*C, (e+1)*C)``), so each copy is a
concatenation of the per-edge tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mimdarts.spaces.grouped_ops import (
    GroupedDilConv,
    GroupedFactorizedReduce,
    GroupedReLUConvBN,
    GroupedSepConv,
)
from mimdarts.spaces.mixing import EdgeGroup, GroupedEdges, GroupedOp, MixedEdges, MixedOp
from mimdarts.spaces.mixing.grouped import PerEdge


def _stack_into(dst: torch.Tensor, srcs: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        dst.copy_(torch.cat([s.detach() for s in srcs]).view_as(dst))


def _load_bn(bn: nn.BatchNorm2d, bns: Sequence[nn.BatchNorm2d]) -> None:
    _stack_into(bn.running_mean, [b.running_mean for b in bns])
    _stack_into(bn.running_var, [b.running_var for b in bns])
    with torch.no_grad():
        bn.num_batches_tracked.copy_(bns[0].num_batches_tracked)


def load_edges(op: GroupedOp, ops: Sequence[nn.Module]) -> None:
    """Copy the weights and BN statistics of ``m`` per-edge modules into grouped ``op``."""
    if isinstance(op, GroupedDilConv):  # ops: DilConvs (ReLU, depthwise, pointwise, BN)
        _stack_into(op.depthwise.weight, [o[1].weight for o in ops])
        _stack_into(op.pointwise.weight, [o[2].weight for o in ops])
        _load_bn(op.bn, [o[3] for o in ops])
    elif isinstance(op, GroupedSepConv):  # ops: SepConvs (two DilConvs)
        load_edges(op.first, [o[0] for o in ops])
        load_edges(op.second, [o[1] for o in ops])
    elif isinstance(op, GroupedReLUConvBN):  # ops: ReLUConvBNs (ReLU, conv, BN)
        _stack_into(op.conv.weight, [o[1].weight for o in ops])
        _load_bn(op.bn, [o[2] for o in ops])
    elif isinstance(op, GroupedFactorizedReduce):
        _stack_into(op.conv_1.weight, [o.conv_1.weight for o in ops])
        _stack_into(op.conv_2.weight, [o.conv_2.weight for o in ops])
        _load_bn(op.bn, [o.bn for o in ops])
    elif isinstance(op, PerEdge):
        for mine, theirs in zip(op.edges, ops):
            mine.load_state_dict(theirs.state_dict())
    else:
        raise TypeError(f"no loader for {type(op).__name__}")


def load_group(group: EdgeGroup, mixed: Sequence[MixedOp]) -> None:
    """Copy the weights and BN statistics of ``m`` per-edge mixed ops (same registry)."""
    for name, op in group.ops.items():
        edge_ops = [mo.ops[name] for mo in mixed]
        if isinstance(op, GroupedOp):
            load_edges(op, edge_ops)
        else:  # shared: parameter-free, its BN statistics are the same on every edge
            op.load_state_dict(edge_ops[0].state_dict())


def load_cell_edges(grouped: GroupedEdges, per_edge: MixedEdges) -> None:
    """Copy a cell's per-edge mixed ops (in the order of its edges) into its grouped layout."""
    for group, idx in zip(grouped.groups, grouped.edge_index):
        load_group(group, [per_edge[e] for e in idx])


def load_per_edge_state(model: nn.Module, ref: nn.Module) -> None:
    """Load per-edge supernet ``ref``'s weights into ``model`` of the same shape, whose
    cells may be grouped."""
    state = ref.state_dict()
    model.load_state_dict(state, strict=False)  # everything but the edges when grouped
    grouped = [m for m in model.modules() if isinstance(m, GroupedEdges)]
    per_edge = [m for m in ref.modules() if isinstance(m, MixedEdges)]
    if grouped:
        assert len(grouped) == len(per_edge)
        for g, p in zip(grouped, per_edge):
            load_cell_edges(g, p)
