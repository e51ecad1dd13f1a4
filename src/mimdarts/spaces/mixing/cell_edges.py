"""A cell's mixed edges behind one interface, in two layouts: per edge, or grouped by source.

``edges[e] = (target, source)`` indexes states: the cell's inputs first, then its nodes;
edges go from a lower state to a node. Either layout maps the inputs and the mixing weights
``[E, K]`` (row ``e`` for edge ``e``) to every state, a node being the sum of its edges'
outputs in the order of their sources, so a cell has one forward whatever the layout.
"""

from __future__ import annotations

import functools
import operator
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from .grouped import EdgeGroup
from .mixed_op import MixedOp, Wrap

if TYPE_CHECKING:  # the registries are built from this package's grouped ops
    from ..candidates import OpRegistry

Edges = Sequence[tuple[int, int]]  # (target state, source state) per edge


class CellEdges(nn.Module, metaclass=ABCMeta):
    """All mixed edges of a cell: ``forward(inputs, weights [E, K]) -> states`` (inputs first).

    ``key``: the attribute a cell keeps its edges under, so the layouts' checkpoint keys
    (``edges.{e}...`` per edge, ``grouped.groups.{g}...`` grouped) stay as they always were.
    """

    key: ClassVar[str]

    @abstractmethod
    def forward(self, inputs: Sequence[torch.Tensor], weights: torch.Tensor) -> list[torch.Tensor]:
        ...


def _count_states(edges: Edges, n_inputs: int) -> int:
    """The number of states (inputs + nodes) of a cell with these edges."""
    if any(t <= s or t < n_inputs for t, s in edges):
        raise ValueError(f"edges must go from a lower state to a node, got {list(edges)}")
    n_states = max(t for t, _ in edges) + 1
    if {t for t, _ in edges} != set(range(n_inputs, n_states)):
        raise ValueError(f"every node needs an edge, got {list(edges)}")
    return n_states


class MixedEdges(nn.ModuleList, CellEdges):
    """The per-edge (reference) layout: one :class:`MixedOp` per edge, in the order of
    ``edges``; ``make_edge(edge index, source)`` builds one.

    ``share_sources``: the edges leaving one state share their ReLU and parameter-free ops
    (computed once; modules tied, so a BN after a pool updates its statistics once, as
    computed); without it each edge computes its own.
    """

    key = "edges"

    def __init__(self, edges: Edges, n_inputs: int, make_edge: Callable[[int, int], MixedOp],
                 share_sources: bool = True) -> None:
        super().__init__()
        self.n_inputs, self.n_states = n_inputs, _count_states(edges, n_inputs)
        self.share_sources = share_sources
        # per node: its (edge, source) pairs, sources ascending as in ``edges``
        self.into = [[(e, s) for e, (t, s) in enumerate(edges) if t == node]
                     for node in range(n_inputs, self.n_states)]
        # (source, op name) -> the module of the first edge from that source holding the op
        # (edges of one source may hold different ops: RobustDARTS's S1)
        first: dict[tuple[int, str], nn.Module] = {}
        for e, (_, j) in enumerate(edges):
            edge = make_edge(e, j)
            for name, share in zip(list(edge.ops), edge.shareable):
                if share and share_sources:
                    edge.ops[name] = first.setdefault((j, name), edge.ops[name])
            self.append(edge)

    def forward(self, inputs: Sequence[torch.Tensor], weights: torch.Tensor) -> list[torch.Tensor]:
        states = [*inputs]
        # outputs computed once per source (ReLU, pools...), filled in by its first edge
        shared = [{} if self.share_sources else None for _ in range(self.n_states)]
        for into in self.into:
            # reduce, not sum(): sum() starts from 0, and 0 + tensor is a full copy
            states.append(functools.reduce(operator.add, (self[e](states[j], weights[e], shared[j])
                                                          for e, j in into)))
        return states


def group_plan(edges: Edges, keys: Sequence[Hashable] | None = None) -> list[tuple[int, list[int]]]:
    """Edges ``(target, source)`` grouped by source: ``[(source, [edge index, ...]), ...]``,
    sources ascending, edges in their original order within a group. With ``keys`` (one per
    edge: its op names), the edges of one source with different keys form separate groups,
    in the order of their first edge.

    >>> group_plan([(1, 0), (2, 0), (2, 1)])
    [(0, [0, 1]), (1, [2])]
    >>> group_plan([(1, 0), (2, 0), (2, 1)], keys=["a", "b", "a"])
    [(0, [0]), (0, [1]), (1, [2])]
    """
    groups: dict[tuple[int, Hashable], list[int]] = {}
    for e in sorted(range(len(edges)), key=lambda e: edges[e][1]):  # stable: edge order kept
        groups.setdefault((edges[e][1], None if keys is None else keys[e]), []).append(e)
    return [(s, idx) for (s, _), idx in groups.items()]


class GroupedEdges(CellEdges):
    """The grouped layout: one :class:`EdgeGroup` per source state (per source and op set
    when ``keys`` tell the edges' op sets apart, see :func:`group_plan`), built by
    ``make_group(source, its edge indices)`` (exact; see :mod:`mimdarts.spaces.mixing.grouped`)."""

    key = "grouped"

    def __init__(self, edges: Edges, n_inputs: int,
                 make_group: Callable[[int, list[int]], EdgeGroup],
                 keys: Sequence[Hashable] | None = None) -> None:
        super().__init__()
        self.n_inputs, self.n_states = n_inputs, _count_states(edges, n_inputs)
        plan = group_plan(edges, keys)
        self.plan = [(s, [edges[e][0] for e in idx]) for s, idx in plan]  # (source, targets)
        self.edge_index = [idx for _, idx in plan]  # per group: its edges (rows of weights)
        # weights rows sorted by source, so each group's rows are one slice
        self.register_buffer("order", torch.tensor([e for idx in self.edge_index for e in idx]),
                             persistent=False)
        self.groups = nn.ModuleList(make_group(s, idx) for s, idx in plan)

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


def cell_edges(registry: OpRegistry | Sequence[OpRegistry], edges: Edges, n_inputs: int, C: int,
               stride: Callable[[int], int], *, group_edges: bool, skip_none: bool,
               share_relu: bool, fold_weights: bool, wrap: Wrap | None = None,
               share_sources: bool = True) -> CellEdges:
    """A cell's edges at ``C`` channels, grouped by source (``group_edges``) or per edge;
    ``stride(source)`` is the stride of the edges leaving state ``source``. ``registry``:
    the candidate ops of every edge, or one registry per edge (the same number of ops on
    each: α's columns; grouped, the edges of one source with the same op names form a group).
    The switches are :class:`MixedOp`'s (a group never computes `none`); ``share_sources``:
    :class:`MixedEdges`'s."""
    # an OpRegistry is a Mapping, never a Sequence
    regs = list(registry) if isinstance(registry, Sequence) else [registry] * len(edges)
    if len(regs) != len(edges) or len({len(r) for r in regs}) != 1:
        raise ValueError(f"need one registry per edge ({len(edges)}), all with as many ops, got "
                         f"{len(regs)} of {sorted({len(r) for r in regs})} ops")
    if group_edges:
        return GroupedEdges(edges, n_inputs, lambda j, idx: EdgeGroup(
            regs[idx[0]], C, stride(j), len(idx), wrap, fold_weights),
            keys=[r.names for r in regs])
    return MixedEdges(edges, n_inputs, lambda e, j: MixedOp(
        regs[e], C, stride(j), skip_none, share_relu, wrap, fold_weights), share_sources)
