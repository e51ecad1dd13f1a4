"""The NAS-Bench-201 cell notation: the cell type, its text and JSON forms and its
derivation from α (no torch import: ``mimdarts nb201 CELL`` and :mod:`mimdarts.nasbench201`
stay fast; derivation only reads the values of the mixing weights).

A cell is a DAG on 4 nodes: node 0 is the input, node ``i`` sums one op over each earlier
node, and node 3 is the output. Its 6 edges, in the benchmark's order, are
``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``; the benchmark writes a cell as::

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

(one ``|...|`` group per node 1..3, ``~j`` naming the input node). With 5 ops per edge there
are 5^6 = 15,625 cells, all of them in the bundled table (:mod:`mimdarts.nasbench201`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import GenotypeError
from .architecture import load_arch_spec, shorten
from .primitives import NB201_PRIMITIVES, check_op

if TYPE_CHECKING:
    import torch

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
            check_op(op, NB201_PRIMITIVES)
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
        check_op(op, NB201_PRIMITIVES)
        return sum(1 for o in self.ops if o == op)

    def summary(self) -> dict[str, float]:
        """Numbers logged every search epoch: edge counts. (The search adds the cell's
        benchmark accuracies, :func:`mimdarts.nasbench201.benchmark_figures`.)"""
        return {"n_skip": self.count("skip_connect"), "n_none": self.count("none")}

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
    # tensor methods only, so no torch import (the values of .to("cpu", torch.float64))
    rows = weights.detach().cpu().double().tolist()
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
