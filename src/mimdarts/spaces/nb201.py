"""The NAS-Bench-201 search space: the cell type, its derivation, supernet and evaluation net.

A cell is a DAG on 4 nodes: node 0 is the input, node ``i`` sums one op over each earlier
node, and node 3 is the output. Its 6 edges, in the benchmark's order, are
``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``; the benchmark writes a cell as::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

(one ``|...|`` group per node 1..3, ``~j`` naming the input node). With 5 ops per edge there
are 5^6 = 15,625 cells, all of them in the bundled table (:mod:`mimdarts.nasbench201`).

Macro network (C=16, N=5 in the benchmark)::

    stem Conv3x3(3->C)+BN | N cells @C | residual block ->2C, /2 | N cells @2C
    | residual block ->4C, /2 | N cells @4C | BN + ReLU       (= ``features``)
    | global average pool + Linear                          (= ``classify``)

All cells share one architecture; the supernet has one α ``arch`` of shape ``[6, 5]``.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import GenotypeError
from .grouped import EdgeGroup, GroupedEdges
from .ops import NB201_OPS, NB201_PRIMITIVES, MixedOp, ReLUConvBN
from .supernet import Supernet, load_arch_spec, shorten

if TYPE_CHECKING:
    from ..nasbench201 import NB201Result

EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(node, input) of each edge, in the benchmark's order (the rows of α)."""
N_NODES = 4
FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"


# ---------------------------------------------------------------- the architecture type


@dataclass(frozen=True)
class NB201Arch:
    """A NAS-Bench-201 cell: the op on each of the 6 edges, in the order of :data:`EDGES`."""

    ops: tuple[str, ...]

    space: ClassVar[str] = "nb201"

    def __post_init__(self) -> None:
        if not isinstance(self.ops, (tuple, list)) or not all(isinstance(o, str) for o in self.ops):
            raise GenotypeError(f"a NAS-Bench-201 cell is a sequence of 6 op names, got {self.ops!r}")
        if len(self.ops) != len(EDGES):
            raise GenotypeError(f"a NAS-Bench-201 cell has {len(EDGES)} edges, got {len(self.ops)} ops")
        for op in self.ops:
            NB201_OPS.check(op)
        object.__setattr__(self, "ops", tuple(self.ops))  # lists from JSON become hashable

    # --------------------------------------------------------------- text and JSON
    @classmethod
    def parse(cls, text: str) -> NB201Arch:
        """Parse the benchmark string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
        if not isinstance(text, str):
            raise GenotypeError(f"a NAS-Bench-201 cell string must be text, got {type(text).__name__}")
        src = text.strip()
        shown = shorten(src)
        groups = src.split("+")
        if len(groups) != N_NODES - 1:
            raise GenotypeError(f"NAS-Bench-201 cell {shown!r} has {len(groups)} node group(s) "
                                f"separated by '+'; expected {N_NODES - 1}, as in {FORMAT}")
        ops: list[str] = []
        for node, group in enumerate(groups, start=1):
            if len(group) < 2 or not (group.startswith("|") and group.endswith("|")):
                raise GenotypeError(f"malformed NAS-Bench-201 cell {shown!r}: node {node} group "
                                    f"{group!r} must look like |op~0|...|; expected {FORMAT}")
            edges = group[1:-1].split("|")
            if len(edges) != node:
                raise GenotypeError(f"NAS-Bench-201 cell {shown!r}: node {node} has {len(edges)} "
                                    f"edge(s), expected {node} (inputs 0..{node - 1})")
            for j, edge in enumerate(edges):
                op, sep, inp = edge.partition("~")
                if not sep or not op or not inp:
                    raise GenotypeError(f"malformed NAS-Bench-201 edge {edge!r} in {shown!r}: "
                                        "expected op~input, e.g. nor_conv_3x3~0")
                if inp != str(j):
                    raise GenotypeError(f"NAS-Bench-201 edge {edge!r} (node {node}, edge {j}) has "
                                        f"input {inp!r}; it must be ~{j} (edges list inputs "
                                        f"0..{node - 1} in order)")
                ops.append(op)
        return cls(tuple(ops))

    def __str__(self) -> str:
        groups: list[list[str]] = [[] for _ in range(N_NODES - 1)]
        for (node, j), op in zip(EDGES, self.ops):
            groups[node - 1].append(f"{op}~{j}")
        return "+".join("|" + "|".join(g) + "|" for g in groups)

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "arch": str(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NB201Arch:
        if not isinstance(data, dict):
            raise GenotypeError(f"a genotype JSON must be an object, got {type(data).__name__}")
        space = data.get("space")
        if space != cls.space:
            raise GenotypeError(f"genotype is for the {space!r} space, expected 'nb201'")
        extra = set(data) - {"space", "arch"}
        if extra:
            raise GenotypeError(f"nb201 genotype JSON has unknown field(s) {', '.join(sorted(extra))}; "
                                "expected space and arch")
        if "arch" not in data:
            raise GenotypeError(f"nb201 genotype JSON is missing the field 'arch' ({FORMAT})")
        return cls.parse(data["arch"])

    @classmethod
    def from_json(cls, text: str) -> NB201Arch:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"genotype JSON is malformed: {e}") from None
        return cls.from_dict(data)

    # --------------------------------------------------------------- facts about the cell
    def count(self, op: str) -> int:
        """How many of the 6 edges use ``op``."""
        NB201_OPS.check(op)
        return sum(1 for o in self.ops if o == op)

    def benchmark(self, proxy: bool = False) -> NB201Result:
        """This cell's NAS-Bench-201 accuracies (200 epochs; ``proxy=True``: the 12-epoch proxy)."""
        # Imported here: the benchmark module imports this one for parsing.
        from ..nasbench201 import lookup
        return lookup(self, proxy=proxy)

    def summary(self) -> dict[str, float]:
        """Numbers logged every search epoch: edge counts and the cell's benchmark accuracies.

        The accuracies are the benchmark's 200-epoch figures, keyed ``nb201_<dataset>_<split>``.
        """
        out: dict[str, float] = {"n_skip": self.count("skip_connect"), "n_none": self.count("none")}
        out.update({f"nb201_{k}": v for k, v in self.benchmark().accuracies().items()})
        return out

    def graph(self) -> dict[str, tuple[tuple[list[str], list[tuple[int, int, str]]], int]]:
        """The cell for drawing: node names, (src, dst, op) edges (``none`` = no edge), 1 input."""
        names = ["0 (in)", "1", "2", "3 (out)"]
        edges = [(j, i, op) for (i, j), op in zip(EDGES, self.ops) if op != "none"]
        return {"cell": ((names, edges), 1)}


def derive_nb201(weights: torch.Tensor, primitives: Sequence[str] = NB201_PRIMITIVES) -> NB201Arch:
    """The cell of the largest weight on each edge (``none`` included, as the benchmark does).

    Args:
        weights: ``[6, 5]`` mixing weights (usually softmax(α)); rows in :data:`EDGES` order,
            columns in ``primitives`` order. Ties go to the lower op index.
    """
    if weights.dim() != 2 or weights.shape != (len(EDGES), len(primitives)):
        raise ValueError(f"weights must have shape [{len(EDGES)}, {len(primitives)}], "
                         f"got {list(weights.shape)}")
    rows = weights.detach().to("cpu", torch.float64).tolist()
    return NB201Arch(tuple(primitives[max(range(len(row)), key=lambda k: (row[k], -k))]
                           for row in rows))


def load_nb201_arch(spec: str) -> NB201Arch:
    """A cell from its benchmark string, JSON text, a JSON / text file, or a run folder."""
    stripped = spec.strip()
    if stripped.startswith("|"):
        return NB201Arch.parse(stripped)
    found = load_arch_spec(spec, NB201Arch.parse, NB201Arch.from_json)
    if found is not None:
        return found
    raise GenotypeError(f"{shorten(spec)!r} is not a NAS-Bench-201 cell string ({FORMAT}), "
                        "nb201 genotype JSON, or an existing file or run folder")


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
        self.stem = nn.Sequential(nn.Conv2d(3, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        layers: list[nn.Module] = []
        for stage, C_stage in enumerate((C, 2 * C, 4 * C)):
            if stage:
                layers.append(ResidualBlock(C_stage // 2, C_stage))
            layers.extend(make_cell(C_stage) for _ in range(N))
        self.layers = nn.ModuleList(layers)
        self.last = nn.Sequential(nn.BatchNorm2d(4 * C), nn.ReLU(inplace=False))
        self.out_channels = 4 * C

    def forward(self, x: torch.Tensor, *cell_args: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x) if isinstance(layer, ResidualBlock) else layer(x, *cell_args)
        return self.last(x)


# ---------------------------------------------------------------- search network


class NB201SearchCell(nn.Module):
    """A cell with a mixed op on each of its 6 edges; ``weights`` is ``[6, 5]``.

    ``group_edges``: the edges leaving each node run as one :class:`EdgeGroup` (exact);
    ``share_relu``, ``fold_weights``: see :class:`MixedOp`.
    """

    def __init__(self, C: int, skip_none: bool = True, share_relu: bool = True,
                 group_edges: bool = False, fold_weights: bool = True) -> None:
        super().__init__()
        self.grouped = (GroupedEdges(EDGES, 1, lambda j, m: EdgeGroup(
            NB201_OPS, C, 1, m, fold_weights=fold_weights)) if group_edges else None)
        self.edges = nn.ModuleList(MixedOp(NB201_OPS, C, 1, skip_none, share_relu,
                                           fold_weights=fold_weights)
                                   for _ in (EDGES if not group_edges else ()))

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        if self.grouped is not None:
            return self.grouped([x], weights)[-1]
        nodes = [x]
        for node in range(1, N_NODES):
            # reduce, not sum(): sum() starts from 0, and 0 + tensor is a full copy
            nodes.append(functools.reduce(operator.add, (self.edges[e](nodes[j], weights[e])
                                                         for e, (i, j) in enumerate(EDGES) if i == node)))
        return nodes[-1]


class NB201Supernet(Supernet):
    """The NAS-Bench-201 search network; one α ``arch`` ``[6, 5]`` shared by all cells.

    Cells use BN without affine parameters (as in the benchmark's DARTS search); the stem,
    residual blocks and final BN keep theirs.
    """

    space = "nb201"
    arch_names = ("arch",)

    def __init__(self, C: int = 16, num_classes: int = 10, N: int = 5,
                 skip_none: bool = True, share_relu: bool = True, group_edges: bool = False,
                 fold_weights: bool = True) -> None:
        super().__init__()
        self.body = NB201Body(C, N, lambda c: NB201SearchCell(c, skip_none, share_relu,
                                                              group_edges, fold_weights))
        self.classifier = nn.Linear(4 * C, num_classes)
        self.feature_channels = 4 * C
        self.feature_stride = 4
        self.arch = nn.Parameter(1e-3 * torch.randn(len(EDGES), len(NB201_PRIMITIVES)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W] -> [B, 4C, H/4, W/4]`` (after the final BN + ReLU)."""
        return self.body(x, F.softmax(self.arch, dim=-1))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Global average pool + linear: ``[B, 4C, h, w] -> [B, num_classes]``."""
        return self.classifier(features.mean(dim=(2, 3)))

    def genotype(self) -> NB201Arch:
        return derive_nb201(self.arch_weights()["arch"])


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
