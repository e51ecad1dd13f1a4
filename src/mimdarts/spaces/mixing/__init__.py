"""The supernet's mixing: every edge computes all candidate ops, weighted by softmax(α).

- :mod:`.fused`: BN that applies the mixing weight (``mix_batch_norm``), the ops run from
  one shared ReLU, the gradient's memory layout (``grad_in_layout``);
- :mod:`.mixed_op`: one edge, :class:`MixedOp`;
- :mod:`.grouped`: the edges leaving one node as one, :class:`EdgeGroup`, built from the
  ops' grouped forms (per edge, :class:`PerEdge`, for an op without one);
- :mod:`.cell_edges`: a cell's edges behind one interface, :class:`CellEdges`, per edge
  (:class:`MixedEdges`) or grouped (:class:`GroupedEdges`).

Plain ops come from :mod:`mimdarts.spaces.ops`, and are looked up by name in a registry
passed in (:mod:`mimdarts.spaces.candidates`, which imports the grouped ops from here).
"""

from .cell_edges import CellEdges, GroupedEdges, MixedEdges, cell_edges, group_plan
from .fused import activated_form, grad_in_layout, mix_batch_norm
from .grouped import EdgeGroup, GroupedOp, PerEdge, build_group
from .mixed_op import MixedOp, Wrap

__all__ = ["CellEdges", "EdgeGroup", "GroupedEdges", "GroupedOp", "MixedEdges", "MixedOp", "PerEdge",
           "Wrap", "activated_form", "build_group", "cell_edges", "grad_in_layout", "group_plan",
           "mix_batch_norm"]
