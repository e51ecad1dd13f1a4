"""The DARTS genotype: a typed value, its text and JSON forms, validation and derivation.

No torch import: ``mimdarts genotype`` and every loader of a cell stay fast. Derivation
takes the mixing weights as a tensor but only reads their values (see :func:`_rows`).

Text form is the one every DARTS codebase prints, so genotypes copied from papers' code
parse as they are::

    Genotype(normal=[('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

Input indices: 0 = c_{k-2}, 1 = c_{k-1}, j >= 2 = intermediate node j-2.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import GenotypeError
from .architecture import load_arch_spec, shorten
from .primitives import DARTS_PRIMITIVES, check_op, darts_genotype_ops

if TYPE_CHECKING:
    import torch

Edge = tuple[str, int]
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


@dataclass(frozen=True)
class Genotype:
    """Two cells: per intermediate node two (op, input) edges, plus the concatenated nodes.

    ``counted``: ops whose per-cell counts :meth:`summary` logs besides skip connections
    (``("noise",)`` for the cells of RobustDARTS's S4). Not part of the cell: equality, the
    text and JSON forms ignore it, so a space's supernet sets it and every epoch of its
    search logs the same keys.
    """

    normal: tuple[Edge, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Edge, ...]
    reduce_concat: tuple[int, ...]
    counted: tuple[str, ...] = field(default=(), compare=False)

    space = "darts"

    def __post_init__(self) -> None:
        for cell in ("normal", "reduce"):
            edges = getattr(self, cell)
            concat = getattr(self, f"{cell}_concat")
            if len(edges) == 0 or len(edges) % 2:
                raise GenotypeError(f"{cell} cell must list 2 edges per node, got {len(edges)} edges")
            steps = len(edges) // 2
            for i, edge in enumerate(edges):
                if not (isinstance(edge, tuple) and len(edge) == 2 and isinstance(edge[0], str)
                        and isinstance(edge[1], int) and not isinstance(edge[1], bool)):
                    raise GenotypeError(f"{cell} edge {i} must be (op_name, input_index), got {edge!r}")
                op, inp = edge
                check_op(op, darts_genotype_ops())  # the 8 DARTS ops, S4's noise, extras
                if op == "none":
                    raise GenotypeError(f"{cell} edge {i}: 'none' cannot be a chosen op")
                node = i // 2
                if not 0 <= inp < node + 2:
                    raise GenotypeError(f"{cell} edge {i} (node {node}) has input {inp}; "
                                        f"it must be in 0..{node + 1}")
            if not concat or any(not 2 <= c < steps + 2 for c in concat):
                raise GenotypeError(f"{cell}_concat {list(concat)} must list nodes in 2..{steps + 1}")

    @property
    def steps(self) -> int:
        return len(self.normal) // 2

    # --------------------------------------------------------------- construction
    @classmethod
    def make(cls, normal: Sequence[Sequence[Any]], normal_concat: Sequence[int],
             reduce: Sequence[Sequence[Any]], reduce_concat: Sequence[int]) -> Genotype:
        """Build from lists (as found in JSON or text), validating shapes and types."""
        def edges(name: str, seq: Any) -> tuple[Edge, ...]:
            if not isinstance(seq, (list, tuple)):
                raise GenotypeError(f"{name} must be a list of (op, input) pairs, got {seq!r}")
            out = []
            for e in seq:
                if not isinstance(e, (list, tuple)) or len(e) != 2:
                    raise GenotypeError(f"{name}: each edge must be (op, input), got {e!r}")
                out.append((e[0], e[1]))
            return tuple(out)

        def ints(name: str, seq: Any) -> tuple[int, ...]:
            if not isinstance(seq, (list, tuple)) or not all(
                    isinstance(c, int) and not isinstance(c, bool) for c in seq):
                raise GenotypeError(f"{name} must be a list of node indices, got {seq!r}")
            return tuple(seq)

        return cls(edges("normal", normal), ints("normal_concat", normal_concat),
                   edges("reduce", reduce), ints("reduce_concat", reduce_concat))

    @classmethod
    def parse(cls, text: str) -> Genotype:
        """Parse the ``Genotype(normal=[...], ...)`` text form (literals only, no code runs).

        Examples:
            >>> g = GENOTYPES["DARTS_V2"]
            >>> Genotype.parse(str(g)) == g and Genotype.from_json(g.to_json()) == g
            True
        """
        src = text.strip()
        try:
            tree = ast.parse(src, mode="eval")
        except SyntaxError:
            raise GenotypeError(f"malformed genotype text: {shorten(src, 60)!r}") from None
        call = tree.body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == "Genotype" and not call.args):
            raise GenotypeError("a genotype must look like Genotype(normal=[...], normal_concat=[...], "
                                f"reduce=[...], reduce_concat=[...]); got {shorten(src, 60)!r}")
        kwargs: dict[str, Any] = {}
        for kw in call.keywords:
            if kw.arg not in _FIELDS:
                raise GenotypeError(f"unknown genotype field {kw.arg!r}; expected {', '.join(_FIELDS)}")
            try:
                kwargs[kw.arg] = ast.literal_eval(kw.value)
            except ValueError:
                raise GenotypeError(f"genotype field {kw.arg!r} is not a literal") from None
        missing = [f for f in _FIELDS if f not in kwargs]
        if missing:
            raise GenotypeError(f"genotype is missing field(s) {', '.join(missing)}")
        return cls.make(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "space": self.space,
            "normal": [list(e) for e in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(e) for e in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Genotype:
        if not isinstance(data, dict):
            raise GenotypeError(f"a genotype JSON must be an object, got {type(data).__name__}")
        space = data.get("space", "darts")
        if space != "darts":
            raise GenotypeError(f"genotype is for the {space!r} space, expected 'darts'")
        missing = [f for f in _FIELDS if f not in data]
        if missing:
            raise GenotypeError(f"genotype JSON is missing field(s) {', '.join(missing)}")
        extra = set(data) - set(_FIELDS) - {"space"}
        if extra:
            raise GenotypeError(f"genotype JSON has unknown field(s) {', '.join(sorted(extra))}")
        return cls.make(**{f: data[f] for f in _FIELDS})

    @classmethod
    def from_json(cls, text: str) -> Genotype:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"genotype JSON is malformed: {e}") from None
        return cls.from_dict(data)

    def __str__(self) -> str:
        def edges(es: tuple[Edge, ...]) -> str:
            return "[" + ", ".join(f"({op!r}, {i})" for op, i in es) + "]"
        return (f"Genotype(normal={edges(self.normal)}, normal_concat={list(self.normal_concat)}, "
                f"reduce={edges(self.reduce)}, reduce_concat={list(self.reduce_concat)})")

    def count(self, op: str, cell: str = "normal") -> int:
        """How many edges of ``cell`` use ``op`` (e.g. skip connections, a sign of collapse).

        Examples:
            >>> g = GENOTYPES["DARTS_V2"]
            >>> g.count("skip_connect"), g.count("skip_connect", "reduce")
            (2, 3)
        """
        return sum(1 for o, _ in getattr(self, cell) if o == op)

    def summary(self) -> dict[str, int]:
        """Skip connections per cell, and the ops of ``counted`` (``n_noise_normal``...).

        Examples:
            >>> GENOTYPES["DARTS_V2"].summary()
            {'n_skip_normal': 2, 'n_skip_reduce': 3}
        """
        out = {"n_skip_normal": self.count("skip_connect", "normal"),
               "n_skip_reduce": self.count("skip_connect", "reduce")}
        for op in self.counted:
            out.update({f"n_{op}_{cell}": self.count(op, cell) for cell in ("normal", "reduce")})
        return out

    def graph(self) -> dict[str, tuple[tuple[list[str], list[tuple[int, int, str]]], int]]:
        """Per cell: (node names, (src, dst, op) edges) and the number of input nodes, for
        drawing. Concatenated nodes feed the output node through unlabelled edges."""
        out = {}
        for cell in ("normal", "reduce"):
            edges, concat = getattr(self, cell), getattr(self, f"{cell}_concat")
            names = ["c_{k-2}", "c_{k-1}"] + [str(i) for i in range(self.steps)] + ["c_{k}"]
            graph_edges = [(j, i // 2 + 2, op) for i, (op, j) in enumerate(edges)]
            graph_edges += [(c, len(names) - 1, "") for c in concat]
            out[cell] = ((names, graph_edges), 2)
        return out


# ---------------------------------------------------------------- derivation


def _rows(weights: torch.Tensor) -> list[list[float]]:
    """The weights as float64 Python lists, on the host. Tensor methods only, so this module
    needs no torch import (the values are those of ``.to("cpu", torch.float64)``)."""
    return weights.detach().cpu().double().tolist()


def _edge_ops(primitives: Sequence[str] | Sequence[Sequence[str]], n_edges: int
              ) -> list[Sequence[str]]:
    """Each edge's op names: ``primitives`` on every edge, or its list per edge (one width)."""
    if not primitives or isinstance(primitives[0], str):
        return [primitives] * n_edges  # type: ignore[list-item]
    per_edge = list(primitives)
    if len(per_edge) != n_edges or len({len(p) for p in per_edge}) != 1:
        raise ValueError(f"per-edge ops must list {n_edges} edges of as many ops each, got "
                         f"{len(per_edge)} edges of {sorted({len(p) for p in per_edge})} ops")
    return per_edge  # type: ignore[return-value]


def derive_cell(weights: torch.Tensor, primitives: Sequence[str] | Sequence[Sequence[str]] = DARTS_PRIMITIVES,
                steps: int = 4, edges_per_node: int = 2) -> tuple[Edge, ...]:
    """Derive one cell from mixing weights (usually softmax(α)), as DARTS does.

    Args:
        weights: ``[E, K]`` with ``E = sum(2 + i for i < steps)`` edges, ordered node by node
            (for node i, its inputs 0 .. i+1), and ``K`` ops.
        primitives: the ``K`` op names of the columns, or one such list per edge (a reduced
            space whose edges have their own candidates, as RobustDARTS's S1-S4).
    Returns:
        ``steps * edges_per_node`` (op, input) pairs. For each node, the edges whose best
        non-`none` weight is largest are kept, strongest first; ties go to the lower index
        (for edges and for ops).

    Examples:
        Two nodes (5 edges) over the 8 DARTS ops; `none` (column 0) is never chosen:

        >>> import torch
        >>> w = torch.zeros(5, 8)
        >>> w[0, 4], w[1, 3] = 0.9, 0.5  # node 0: sep_conv_3x3 from 0, skip_connect from 1
        >>> w[2, 5], w[3, 1], w[4, 0], w[4, 2] = 0.8, 0.7, 1.0, 0.6  # node 1: inputs 0, 1, 2
        >>> derive_cell(w, steps=2)
        (('sep_conv_3x3', 0), ('skip_connect', 1), ('sep_conv_5x5', 0), ('max_pool_3x3', 1))
    """
    n_edges = sum(2 + i for i in range(steps))
    per_edge = _edge_ops(primitives, n_edges)
    if weights.dim() != 2 or weights.shape != (n_edges, len(per_edge[0])):
        raise ValueError(f"weights must have shape [{n_edges}, {len(per_edge[0])}], "
                         f"got {list(weights.shape)}")
    w = _rows(weights)
    out: list[Edge] = []
    start = 0
    for i in range(steps):
        n_in = i + 2
        rows, ops = w[start:start + n_in], per_edge[start:start + n_in]
        # per edge, its columns other than `none` (none is never a chosen op)
        candidates = [[k for k, p in enumerate(o) if p != "none"] for o in ops]
        # Python's sort is stable: among equal strengths the lower input index stays first.
        order = sorted(range(n_in), key=lambda j: -max(rows[j][k] for k in candidates[j]))
        for j in order[:edges_per_node]:
            best = max(candidates[j], key=lambda k: (rows[j][k], -k))
            out.append((ops[j][best], j))
        start += n_in
    return tuple(out)


def derive_genotype(weights_normal: torch.Tensor, weights_reduce: torch.Tensor,
                    steps: int = 4, edge_ops: Mapping[str, Sequence[Sequence[str]]] | None = None,
                    counted: tuple[str, ...] = ()) -> Genotype:
    """Genotype from the two cells' mixing weights; all intermediate nodes are concatenated.

    ``edge_ops``: per cell (``normal``, ``reduce``), each edge's op names (a reduced space);
    None: the 8 DARTS ops on every edge. ``counted``: see :class:`Genotype`.
    """
    concat = tuple(range(2, steps + 2))
    ops = edge_ops or {"normal": DARTS_PRIMITIVES, "reduce": DARTS_PRIMITIVES}
    return Genotype(derive_cell(weights_normal, ops["normal"], steps), concat,
                    derive_cell(weights_reduce, ops["reduce"], steps), concat, counted)


# ---------------------------------------------------------------- published genotypes

_C4 = (2, 3, 4, 5)
GENOTYPES: dict[str, Genotype] = {
    "DARTS_V1": Genotype(
        normal=(("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
                ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)),
        normal_concat=_C4,
        reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
                ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)),
        reduce_concat=_C4),
    "DARTS_V2": Genotype(
        normal=(("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
                ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)),
        normal_concat=_C4,
        reduce=(("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
                ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)),
        reduce_concat=_C4),
}
GENOTYPES["DARTS"] = GENOTYPES["DARTS_V2"]


def load_genotype(spec: str) -> Genotype:
    """A genotype from a name (DARTS_V2), a JSON or text file, a run folder, or its text.

    Examples:
        >>> load_genotype("DARTS_V2") is GENOTYPES["DARTS_V2"]
        True
        >>> load_genotype("Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0)], normal_concat=[2], "
        ...               "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])").steps
        1
    """
    if spec in GENOTYPES:
        return GENOTYPES[spec]
    stripped = spec.strip()
    if stripped.startswith("Genotype("):
        return Genotype.parse(stripped)
    found = load_arch_spec(spec, Genotype.parse, Genotype.from_json)
    if found is not None:
        return found
    raise GenotypeError(f"genotype {spec!r} is not a known name ({', '.join(GENOTYPES)}), "
                        "an existing file or run folder, or a Genotype(...) / JSON text")
