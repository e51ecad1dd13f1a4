"""The DARTS search space: search cell and supernet (CIFAR shapes)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .batchnorm import BatchNorm2d, hooked, mix_batch_norm
from .candidates import DARTS_OPS, DARTS_PRIMITIVES, OpRegistry
from .genotype import Genotype, derive_genotype
from .mixing import CellEdges, cell_edges
from .noise import bind_noise
from .ops import FactorizedReduce, MaxPool2d, ReLUConvBN
from .supernet import Supernet


class PoolBN(nn.Sequential):
    """A pool, then BN without affine (the DARTS search net normalises pooled features).

    BN's backward pools again instead of keeping the pooled tensor (the pool's input is kept
    anyway; :func:`~mimdarts.spaces.batchnorm.batch_norm`'s ``recompute``): for torch's max
    and average pools without hooks, which are pure functions of their input. Any other op
    (a user's "pool" may draw random numbers) keeps its output.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pool, bn = self[0], self[1]
        pure = type(pool) in (nn.MaxPool2d, MaxPool2d, nn.AvgPool2d) and not hooked(pool, bn)
        return mix_batch_norm(bn, pool(x), recompute=(pool.forward, (x,)) if pure else None)


def _with_pool_bn(C: int, name: str, op: nn.Module) -> nn.Module:
    return PoolBN(op, BatchNorm2d(C, affine=False)) if "pool" in name else op


class SearchCell(nn.Module):
    """A DARTS cell with a mixed op on every one of its ``sum(2 + i)`` edges.

    Inputs ``s0 = c_{k-2}`` and ``s1 = c_{k-1}``; output ``[B, multiplier * C, H', W']``.
    ``group_edges``: the edges leaving each node run as one
    :class:`~mimdarts.spaces.mixing.EdgeGroup` (exact) instead of one
    :class:`~mimdarts.spaces.mixing.MixedOp` per edge; ``skip_none``, ``share_relu``,
    ``fold_weights``: see :class:`~mimdarts.spaces.mixing.MixedOp`. ``edge_ops``: each
    edge's candidate ops (a reduced space, :mod:`mimdarts.spaces.robust`); None: the 8 DARTS
    ops on every edge. The cell's `noise` ops, if any, share one draw per forward
    (:mod:`mimdarts.spaces.noise`).
    """

    def __init__(self, steps: int, multiplier: int, C_pp: int, C_p: int, C: int,
                 reduction: bool, reduction_prev: bool, skip_none: bool = True,
                 share_relu: bool = True, group_edges: bool = False,
                 fold_weights: bool = True, edge_ops: Sequence[OpRegistry] | None = None) -> None:
        super().__init__()
        self.reduction = reduction
        self.steps = steps
        self.multiplier = multiplier
        # If the previous cell reduced, c_{k-2} is at twice the resolution of c_{k-1}.
        self.pre0 = (FactorizedReduce(C_pp, C, affine=False) if reduction_prev
                     else ReLUConvBN(C_pp, C, 1, 1, 0, affine=False))
        self.pre1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        # (target state, source state) per edge; states: s0, s1, then node i = state 2 + i
        edges = [(2 + i, j) for i in range(steps) for j in range(2 + i)]
        layout = cell_edges(edge_ops or DARTS_OPS, edges, 2, C, lambda j: 2 if reduction and j < 2 else 1,
                            group_edges=group_edges, skip_none=skip_none, share_relu=share_relu,
                            fold_weights=fold_weights, wrap=functools.partial(_with_pool_bn, C))
        self.layout = layout.key  # the edges' attribute: `edges` or `grouped` (checkpoint keys)
        self.add_module(layout.key, layout)
        self.noise = bind_noise(layout)  # None without noise ops

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        edges: CellEdges = getattr(self, self.layout)
        with self.noise.drawing() if self.noise else contextlib.nullcontext():
            states = edges([self.pre0(s0), self.pre1(s1)], weights)
        return torch.cat(states[-self.multiplier:], dim=1)


class DartsSupernet(Supernet):
    """The DARTS search network: stem, ``layers`` cells (reductions at 1/3 and 2/3), head.

    α are two registered parameters, ``alpha_normal`` and ``alpha_reduce``, each
    ``[n_edges, K]`` initialised to ``1e-3 * randn``: K = the 8 DARTS ops, or, with
    ``edge_ops`` (per cell type, ``normal`` and ``reduce``, one registry per edge: a reduced
    space such as RobustDARTS's S1-S4), the K ops of each edge, column k of edge e being
    its registry's op k. ``op_names``: the columns' names when every edge has the same ops
    (empty otherwise: :attr:`edge_op_names` names them per edge).
    """

    space = "darts"
    alpha_names = ("alpha_normal", "alpha_reduce")
    op_names = DARTS_PRIMITIVES

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, steps: int = 4,
                 stem_multiplier: int = 3, skip_none: bool = True, share_relu: bool = True,
                 group_edges: bool = False, fold_weights: bool = True,
                 edge_ops: Mapping[str, Sequence[OpRegistry]] | None = None) -> None:
        super().__init__()
        self.steps = steps
        n_edges = sum(2 + i for i in range(steps))
        ops = edge_ops or {cell: [DARTS_OPS] * n_edges for cell in ("normal", "reduce")}
        # per cell type, each edge's op names (the genotype's derivation reads them)
        self.edge_op_names = {cell: tuple(r.names for r in regs) for cell, regs in ops.items()}
        sets = {n for regs in self.edge_op_names.values() for n in regs}
        self.op_names = next(iter(sets)) if len(sets) == 1 else ()
        # the counts every epoch logs besides skip connections (RobustDARTS's S4: noise)
        self.counted = ("noise",) if any("noise" in n for n in sets) else ()
        multiplier = steps  # the cell output concatenates all intermediate nodes
        C_curr = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_curr, 3, padding=1, bias=False),
                                  BatchNorm2d(C_curr))
        C_pp, C_p, C_curr = C_curr, C_curr, C
        self.cells = nn.ModuleList()
        reduction_prev = False
        reductions = {layers // 3, 2 * layers // 3}
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C_curr *= 2
            self.cells.append(SearchCell(steps, multiplier, C_pp, C_p, C_curr, reduction,
                                         reduction_prev, skip_none, share_relu, group_edges,
                                         fold_weights, ops["reduce" if reduction else "normal"]
                                         if edge_ops else None))
            reduction_prev = reduction
            C_pp, C_p = C_p, multiplier * C_curr
        self.feature_channels = C_p
        self.feature_stride = 2 ** len(reductions)
        self.classifier = nn.Linear(C_p, num_classes)
        self.alpha_normal = nn.Parameter(1e-3 * torch.randn(n_edges, len(ops["normal"][0])))
        self.alpha_reduce = nn.Parameter(1e-3 * torch.randn(n_edges, len(ops["reduce"][0])))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W] -> [B, feature_channels, H / feature_stride, W / feature_stride]``."""
        w_normal = F.softmax(self.alpha_normal, dim=-1)
        w_reduce = F.softmax(self.alpha_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return s1

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pool + linear: ``[B, C, h, w] -> [B, num_classes]``."""
        return self.classifier(features.mean(dim=(2, 3)))

    def genotype(self) -> Genotype:
        w_normal, w_reduce = self.alpha_weights().values()
        return derive_genotype(w_normal, w_reduce, self.steps, self.edge_op_names, self.counted)
