"""RobustDARTS's reduced DARTS spaces S1-S4 (Zela et al., ICLR 2020), where DARTS fails by design.

Each keeps the DARTS cell and supernet (two input nodes, intermediate nodes of two inputs
each, 14 edges per cell at 4 nodes) and restricts every edge to two or three candidate ops,
per cell type, as RobustDARTS's ``src/spaces.py`` lists them:

- ``darts-s1``: a pair of ops per edge, its own on each of the 14 edges of each cell type;
- ``darts-s2``: {skip_connect, sep_conv_3x3} on every edge;
- ``darts-s3``: {none, skip_connect, sep_conv_3x3} on every edge;
- ``darts-s4``: {noise, sep_conv_3x3} on every edge (``noise``: fresh N(0, 1) samples,
  :class:`~mimdarts.spaces.ops.Noise`).

α has one column per candidate of an edge (``[14, 2]``, S3 ``[14, 3]``), the softmax runs
over an edge's own candidates, and the cell is derived as in DARTS (`none` never chosen),
so a found cell is a plain DARTS genotype whose ops are each its edge's candidates.
A cell of fewer nodes (``nodes`` < 4) keeps the first edges' op sets; S1 lists 4 nodes' edges,
so it allows at most 4. No torch: the registry (:data:`mimdarts.spaces.SPACES`) imports this.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..switches import resolve_group_edges
from .genotype import Genotype

if TYPE_CHECKING:
    from ..config import ModelConfig
    from .candidates import OpRegistry
    from .supernet import Supernet

Ops = tuple[str, ...]
CELLS = ("normal", "reduce")

_SKIP, _SEP3, _MAX, _AVG = "skip_connect", "sep_conv_3x3", "max_pool_3x3", "avg_pool_3x3"
_DIL3, _DIL5 = "dil_conv_3x3", "dil_conv_5x5"
# S1, edge by edge (node 0: inputs 0, 1; node 1: inputs 0, 1, 2; ...), from RobustDARTS's
# src/spaces.py (primitives_1), which lists each pair in this order
_S1_NORMAL: tuple[Ops, ...] = (
    (_SKIP, _DIL3), (_SKIP, _DIL5), (_SKIP, _DIL5), (_SKIP, _SEP3), (_SKIP, _DIL3),
    (_MAX, _SKIP), (_SKIP, _SEP3), (_SKIP, _SEP3), (_SKIP, _DIL3), (_SKIP, _SEP3),
    (_MAX, _SKIP), (_SKIP, _DIL3), (_DIL3, _DIL5), (_DIL3, _DIL5))
_S1_REDUCE: tuple[Ops, ...] = (
    (_MAX, _AVG), (_MAX, _DIL3), (_MAX, _AVG), (_MAX, _AVG), (_SKIP, _DIL5),
    (_MAX, _AVG), (_MAX, _SEP3), (_SKIP, _DIL3), (_SKIP, _DIL5), (_MAX, _AVG),
    (_MAX, _AVG), (_SKIP, _DIL5), (_SKIP, _DIL5), (_SKIP, _DIL5))

# space -> cell type -> one op set for every edge (Ops), or one per edge (tuple of Ops)
ROBUST_SPACES: dict[str, dict[str, Ops | tuple[Ops, ...]]] = {
    "darts-s1": {"normal": _S1_NORMAL, "reduce": _S1_REDUCE},
    "darts-s2": {cell: (_SKIP, _SEP3) for cell in CELLS},
    "darts-s3": {cell: ("none", _SKIP, _SEP3) for cell in CELLS},
    "darts-s4": {cell: ("noise", _SEP3) for cell in CELLS},
}
DESCRIPTIONS = {
    "darts-s1": "RobustDARTS S1: the DARTS cell, a pair of ops of its own on each edge",
    "darts-s2": "RobustDARTS S2: the DARTS cell, {skip_connect, sep_conv_3x3} on every edge",
    "darts-s3": "RobustDARTS S3: the DARTS cell, {none, skip_connect, sep_conv_3x3} on every edge",
    "darts-s4": "RobustDARTS S4: the DARTS cell, {noise, sep_conv_3x3} on every edge",
}


def edge_op_names(space: str, cell: str, steps: int = 4) -> tuple[Ops, ...]:
    """Each edge's candidate ops (α's columns) in a cell of ``steps`` nodes of ``space``."""
    spec = ROBUST_SPACES[space][cell]
    n_edges = sum(2 + i for i in range(steps))
    if isinstance(spec[0], str):  # the same ops on every edge
        return (spec,) * n_edges  # type: ignore[return-value]
    if n_edges > len(spec):
        raise ConfigError(f"{space} lists the ops of {len(spec)} edges per cell (4 nodes); "
                          f"nodes={steps} needs {n_edges}: use nodes <= 4")
    return spec[:n_edges]  # type: ignore[return-value]


def column_names(space: str) -> tuple[str, ...]:
    """The names of α's columns for plots and tables: the op names when every edge of both
    cell types has the same candidates (S2-S4), else ``candidate 1``, ``candidate 2``... (S1:
    :func:`edge_op_names` names them edge by edge)."""
    sets = {ops for cell in CELLS for ops in edge_op_names(space, cell)}
    if len(sets) == 1:
        return sets.pop()
    return tuple(f"candidate {k + 1}" for k in range(len(next(iter(sets)))))


def space_ops(space: str) -> frozenset[str]:
    """Every op an edge of ``space`` may hold, in either cell type (4 nodes)."""
    return frozenset(op for cell in CELLS for ops in edge_op_names(space, cell) for op in ops)


def outside_space(space: str, genotype: Genotype) -> list[str]:
    """The edges of ``genotype`` whose op is not among its edge's candidates in ``space``
    (empty: the cell belongs to the space), as ``"normal node 0 input 1: sep_conv_5x5"``."""
    bad = []
    for cell in CELLS:
        allowed = edge_op_names(space, cell, genotype.steps)
        for k, (op, j) in enumerate(getattr(genotype, cell)):
            node = k // 2
            edge = sum(2 + i for i in range(node)) + j  # edges run node by node, inputs ascending
            if op == "none" or op not in allowed[edge]:
                bad.append(f"{cell} node {node} input {j}: {op}")
    return bad


def registries(space: str, cell: str, steps: int) -> list[OpRegistry]:
    """One op registry per edge (one object per distinct op set), from the DARTS ops."""
    from .candidates import DARTS_OPS
    made: dict[Ops, OpRegistry] = {}
    for names in edge_op_names(space, cell, steps):
        if names not in made:
            made[names] = DARTS_OPS.subset(names, space)
    return [made[names] for names in edge_op_names(space, cell, steps)]


def builder(space: str) -> Callable[[ModelConfig, int], Supernet]:
    """``(model config, num_classes) -> supernet`` of ``space``: the DARTS supernet with the
    space's per-edge candidates (the DARTS space's switches apply unchanged)."""
    def build(cfg: ModelConfig, num_classes: int) -> Supernet:
        from .darts import DartsSupernet
        ops = {cell: registries(space, cell, cfg.nodes) for cell in CELLS}
        net = DartsSupernet(C=cfg.channels, num_classes=num_classes, layers=cfg.layers,
                            steps=cfg.nodes, skip_none=cfg.skip_none, share_relu=cfg.share_relu,
                            group_edges=resolve_group_edges(cfg.group_edges, cfg.skip_none),
                            fold_weights=cfg.fold_weights, edge_ops=ops)
        net.space = space  # its registered name (the class says "darts")
        return net
    return build
