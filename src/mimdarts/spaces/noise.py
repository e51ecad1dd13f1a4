"""Where a search cell's `noise` ops (RobustDARTS's S4) get their samples: one draw per cell.

RobustDARTS's noise op calls ``normal_()`` on every forward, edge after edge. Drawn that way,
the samples an edge sees would depend on the order in which the edges run, and the grouped
layout runs them by source node, not node by node: the fast paths would search on other
noise than the reference path. So a search cell draws the noise of all its noise edges at
once, ``torch.randn([n_noise_edges, B, C, H', W'])`` from torch's global generator on the
device of the cell's input, when its first noise op runs, and each op takes its edge's slice:
every layout and every fast-path switch sees the same samples (the same distribution as
RobustDARTS's, i.i.d. N(0, 1), drawn in one call instead of one per edge). The draw is
dropped when the cell's forward ends. A search with noise ops therefore consumes the global
torch RNG once per cell forward (and the second-order step's extra forwards draw too); its
trajectory depends on that generator, which a checkpoint saves and restores
(``mimdarts.resume.capture_rng``), so resuming stays exact.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from .mixing import GroupedEdges, MixedEdges, PerEdge
from .ops import Noise


class CellNoise:
    """The noise of one cell forward: ``take(edge, like, channels_last)`` is edge ``edge``'s
    slice of one draw for all of ``edges``, made by the first take within :meth:`drawing`
    (outside it, every take is a fresh draw, as the plain op makes)."""

    def __init__(self, edges: Sequence[int]) -> None:
        self.slot = {e: i for i, e in enumerate(sorted(edges))}
        self.active = False
        self.draw: torch.Tensor | None = None

    @contextmanager
    def drawing(self) -> Iterator[None]:
        """Within: one draw shared by the cell's noise ops; after: dropped (memory)."""
        self.active, self.draw = True, None
        try:
            yield
        finally:
            self.active, self.draw = False, None

    def take(self, edge: int, like: torch.Tensor, channels_last: bool) -> torch.Tensor:
        if not self.active:
            noise = torch.randn(like.shape, dtype=like.dtype, device=like.device)
        else:
            if self.draw is None:
                self.draw = torch.randn((len(self.slot), *like.shape), dtype=like.dtype,
                                        device=like.device)
            noise = self.draw[self.slot[edge]]
            if noise.shape != like.shape:  # every edge of a cell has the cell's output shape
                raise RuntimeError(f"noise of edge {edge}: shape {list(like.shape)} differs from "
                                   f"the cell's draw {list(noise.shape)}")
            noise = noise.to(like.dtype)
        return noise.contiguous(memory_format=torch.channels_last) if channels_last else noise


def _noise_ops(layout: nn.Module) -> list[tuple[int, Noise]]:
    """(edge index, op) of every noise op of a cell's edges, in either layout."""
    if isinstance(layout, MixedEdges):
        return [(e, op) for e, edge in enumerate(layout) for op in edge.ops.values()
                if isinstance(op, Noise)]
    found = []
    if isinstance(layout, GroupedEdges):
        for group, idx in zip(layout.groups, layout.edge_index):
            for op in group.ops.values():  # noise has no grouped form: PerEdge, one per edge
                if isinstance(op, PerEdge):
                    found += [(e, o) for e, o in zip(idx, op.edges) if isinstance(o, Noise)]
    return found


def bind_noise(layout: nn.Module) -> CellNoise | None:
    """Point every noise op of a cell's edges (``layout``: its :class:`MixedEdges` or
    :class:`GroupedEdges`) at one :class:`CellNoise`; None when the cell has no noise op."""
    found = _noise_ops(layout)
    if len(found) != sum(isinstance(m, Noise) for m in layout.modules()):
        raise TypeError(f"noise ops of {type(layout).__name__} that bind_noise cannot place")
    if not found:
        return None
    cell = CellNoise([e for e, _ in found])
    for e, op in found:  # a partial, not a lambda: a deep copy of the cell stays bound to its copy
        op.sample = functools.partial(cell.take, e)
    return cell
