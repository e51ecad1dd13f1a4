"""The supernet's mixing: every edge computes all candidate ops, weighted by softmax(α).

- :mod:`.fused`: the ops run from one shared ReLU, with the mixing weight applied by their
  last BN (``mix_batch_norm``, :mod:`mimdarts.spaces.batchnorm`), the gradient's memory
  layout (``grad_in_layout``);
- :mod:`.mixed_op`: one edge, :class:`MixedOp`;
- :mod:`.grouped`: the edges leaving one node as one, :class:`EdgeGroup`, built from the
  ops' grouped forms (per edge, :class:`PerEdge`, for an op without one);
- :mod:`.cell_edges`: a cell's edges behind one interface, :class:`CellEdges`, per edge
  (:class:`MixedEdges`) or grouped (:class:`GroupedEdges`).

Ops (plain, :mod:`mimdarts.spaces.ops`, and grouped, :mod:`mimdarts.spaces.grouped_ops`) are
looked up by name in a registry passed in (:mod:`mimdarts.spaces.candidates`); nothing here
is imported by the registry.
"""

from ..grouped_ops import GroupedOp
from .cell_edges import CellEdges, GroupedEdges, MixedEdges, cell_edges, group_plan
from .fused import activated_form, grad_in_layout, mix_batch_norm
from .grouped import EdgeGroup, PerEdge, build_group
from .mixed_op import MixedOp, Wrap

__all__ = ["CellEdges", "EdgeGroup", "GroupedEdges", "GroupedOp", "MixedEdges", "MixedOp", "PerEdge",
           "Wrap", "activated_form", "build_group", "cell_edges", "grad_in_layout", "group_plan",
           "mix_batch_norm"]
