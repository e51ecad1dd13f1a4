"""The NAS-Bench-201 search space: supernet and evaluation network. The cell type, its
notation and derivation are in :mod:`mimdarts.spaces.nb201_arch` (no torch).

Macro network (C=16, N=5 in the benchmark)::

    stem Conv3x3(3->C)+BN | N cells @C | residual block ->2C, /2 | N cells @2C
    | residual block ->4C, /2 | N cells @4C | BN + ReLU       (= ``features``)
    | global average pool + Linear                          (= ``classify``)

All cells share one architecture; the supernet has one α ``arch`` of shape ``[6, 5]``.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .batchnorm import BatchNorm2d
from .candidates import NB201_OPS, NB201_PRIMITIVES
from .mixing import CellEdges, cell_edges
from .nb201_arch import EDGES, N_NODES, NB201Arch, derive_nb201, load_nb201_arch
from .ops import ReLUConvBN
from .supernet import Supernet

# ---------------------------------------------------------------- shared macro skeleton


class ResidualBlock(nn.Module):
    """The reduction block between stages: ``[B, C_in, H, W] -> [B, C_out, H/2, W/2]``.

    ReLU-Conv3x3(stride 2)-BN then ReLU-Conv3x3-BN, plus a shortcut AvgPool2 + Conv1x1.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1, affine)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2),
                                      nn.Conv2d(C_in, C_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Body(nn.Module):
    """Stem, three stages of ``N`` cells joined by residual blocks, final BN + ReLU.

    ``make_cell(C)`` builds one cell at ``C`` channels; cells are called as
    ``cell(x, *cell_args)`` so that search cells can receive the mixing weights.
    ``[B, 3, H, W] -> [B, 4C, H/4, W/4]``.
    """

    def __init__(self, C: int, N: int, make_cell: Callable[[int], nn.Module]) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage, C_stage in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResidualBlock(C_stage // 2, C_stage))
            layers.extend(make_cell(C_stage) for _ in range(N))
        self.layers = nn.ModuleList(layers)
        self.last = nn.Sequential(BatchNorm2d(4 * C), nn.ReLU(inplace=False))
        self.out_channels = 4 * C

    def forward(self, x: torch.Tensor, *cell_args: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x) if isinstance(layer, ResidualBlock) else layer(x, *cell_args)
        return self.last(x)


# ---------------------------------------------------------------- search network


class NB201SearchCell(nn.Module):
    """A cell with a mixed op on each of its 6 edges; ``weights`` is ``[6, 5]``.

    ``group_edges``: the edges leaving each node run as one
    :class:`~mimdarts.spaces.mixing.EdgeGroup` (exact); ``skip_none``, ``share_relu``,
    ``fold_weights``: see :class:`~mimdarts.spaces.mixing.MixedOp`.
    """

    def __init__(self, C: int, skip_none: bool = True, share_relu: bool = True,
                 group_edges: bool = False, fold_weights: bool = True) -> None:
        super().__init__()
        # per edge, each edge computes its own ReLU and pools (share_sources=False), as the
        # reference NAS-Bench-201 search cell always has: sharing would re-order gradient sums
        layout = cell_edges(NB201_OPS, EDGES, 1, C, lambda j: 1, group_edges=group_edges,
                            skip_none=skip_none, share_relu=share_relu,
                            fold_weights=fold_weights, share_sources=False)
        self.layout = layout.key  # the edges' attribute: `edges` or `grouped` (checkpoint keys)
        self.add_module(layout.key, layout)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        edges: CellEdges = getattr(self, self.layout)
        return edges([x], weights)[-1]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 search network; one α ``alpha`` ``[6, 5]`` shared by all cells.

    Cells use BN without affine parameters (as in the benchmark's DARTS search); the stem,
    residual blocks and final BN keep theirs.
    """

    space = "nb201"
    alpha_names = ("alpha",)
    op_names = NB201_PRIMITIVES

    def __init__(self, C: int = 16, num_classes: int = 10, N: int = 5,
                 skip_none: bool = True, share_relu: bool = True, group_edges: bool = False,
                 fold_weights: bool = True) -> None:
        super().__init__()
        self.body = NB201Body(C, N, lambda c: NB201SearchCell(c, skip_none, share_relu,
                                                              group_edges, fold_weights))
        self.classifier = nn.Linear(4 * C, num_classes)
        self.feature_channels = 4 * C
        self.feature_stride = 4
        self.alpha = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(NB201_PRIMITIVES)))
        # checkpoints written before α had one name (up to 2026-12) called it `arch`
        self.register_load_state_dict_pre_hook(_renamed_alpha)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W] -> [B, 4C, H/4, W/4]`` (after the final BN + ReLU)."""
        return self.body(x, F.softmax(self.alpha, dim=-1))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pool + linear: ``[B, 4C, h, w] -> [B, num_classes]``."""
        return self.classifier(features.mean(dim=(2, 3)))

    def genotype(self) -> NB201Arch:
        return derive_nb201(self.alpha_weights()["alpha"])


def _renamed_alpha(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    """Load an old checkpoint's α, saved as ``arch``, into ``alpha``."""
    if prefix + "arch" in state_dict and prefix + "alpha" not in state_dict:
        state_dict[prefix + "alpha"] = state_dict.pop(prefix + "arch")


# ---------------------------------------------------------------- evaluation network


class NB201Cell(nn.Module):
    """A discrete cell (BN with affine parameters): ``[B, C, H, W] -> [B, C, H, W]``."""

    def __init__(self, arch: NB201Arch, C: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(NB201_OPS.build(op, C, 1, affine=True) for op in arch.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in range(1, N_NODES):
            nodes.append(functools.reduce(operator.add, (self.edges[e](nodes[j])
                                                         for e, (i, j) in enumerate(EDGES) if i == node)))
        return nodes[-1]


class NB201Network(nn.Module):
    """The benchmark's network for one cell, to train from scratch (C=16, N=5 by default)."""

    def __init__(self, arch: NB201Arch | str, C: int = 16, N: int = 5, num_classes: int = 10) -> None:
        super().__init__()
        self.arch = arch if isinstance(arch, NB201Arch) else load_nb201_arch(arch)
        self.body = NB201Body(C, N, lambda c: NB201Cell(self.arch, c))
        self.classifier = nn.Linear(4 * C, num_classes)
        self.feature_channels = 4 * C
        self.feature_stride = 4

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W] -> [B, 4C, H/4, W/4]``."""
        return self.body(x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, 4C, h, w] -> [B, num_classes]``."""
        return self.classifier(features.mean(dim=(2, 3)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
