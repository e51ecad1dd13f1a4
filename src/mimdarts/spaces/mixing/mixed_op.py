"""One supernet edge: all candidate ops of the edge, weighted by softmax(α)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .fused import activated_form, grad_in_layout

if TYPE_CHECKING:  # the registries are built from this package's grouped ops
    from ..candidates import OpRegistry

# (op name, op) -> the op as the supernet runs it (DARTS adds BN after its pools)
Wrap = Callable[[str, nn.Module], nn.Module]


class MixedOp(nn.Module):
    """Sum of all candidate ops of one edge weighted by softmax(α): the supernet's edge.

    ``forward(x [B, C, H, W], weights [K]) -> [B, C, H/stride, W/stride]``. Search-time
    shortcuts, all exact:
    - ``skip_none``: the `none` op is not computed (its output is zero; its α still gets a
      gradient through the softmax normalisation of the others);
    - ``share_relu``: the ops that start with ReLU of the input (the convs, FactorizedReduce)
      share one ReLU instead of computing it, and its backward, each; with a ``shared`` dict
      passed by the cell (one per source node), the ReLU and the parameter-free ops (pools,
      identity) are computed once for all the edges that read the same input;
    - ``fold_weights``: an op ending in an affine-free BN takes its weight as that BN's
      weight (:func:`~mimdarts.spaces.batchnorm.mix_batch_norm`) instead of a separate
      product.
    ``wrap(name, op)`` may decorate an op (DARTS adds BN after the pools of its search net).
    """

    def __init__(self, registry: OpRegistry, C: int, stride: int, skip_none: bool = True,
                 share_relu: bool = True, wrap: Wrap | None = None,
                 fold_weights: bool = True) -> None:
        super().__init__()
        self.C = C
        self.ops = nn.ModuleDict()  # keyed by op name: checkpoints do not depend on skip_none
        self.op_index: list[int] = []  # column of α for each entry of self.ops
        for k, name in enumerate(registry.names):
            if skip_none and name == "none":
                continue
            op = registry.build(name, C, stride, affine=False)
            self.ops[name] = wrap(name, op) if wrap else op
            self.op_index.append(k)
        # per op: how it runs from a shared ReLU with its weight folded into its BN, if it can
        self.forms = [activated_form(op) for op in self.ops.values()]
        self.takes_activated = [share_relu and f is not None for f in self.forms]
        self.folds = [fold_weights and f is not None for f in self.forms]
        # parameter-free ops: the same output on every edge that reads the same input (not a
        # stochastic one, such as `noise`: each edge draws its own samples)
        self.shareable = [share_relu and not any(True for _ in op.parameters())
                          and not getattr(op, "stochastic", False) for op in self.ops.values()]

    def forward(self, x: torch.Tensor, weights: torch.Tensor,
                shared: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """``shared``: outputs already computed on ``x`` by another edge (ReLU, pools...),
        filled in here; the cell passes one dict per source node (modules tied, so exact)."""
        if shared is None:
            shared = {}
        activated = None
        if any(self.takes_activated):
            activated = shared.get("relu")
            if activated is None:
                activated = shared["relu"] = F.relu(x)
        # per-channel weights [K, C] for the folding ops (a contiguous row each: BN's fast path)
        scales = weights.unsqueeze(1).expand(-1, self.C).contiguous() if any(self.folds) else None
        out = None
        for k, (name, op), form, pre, share, fold in zip(self.op_index, self.ops.items(), self.forms,
                                                         self.takes_activated, self.shareable,
                                                         self.folds):
            if fold:
                assert scales is not None and form is not None
                y = form(op, activated if pre else F.relu(x), scales[k])  # already weighted
                out = y if out is None else out + y
                continue
            if share:
                y = shared.get(name)
                if y is None:
                    y = shared[name] = op(x)
            else:
                y = form(op, activated, None) if pre and form is not None else op(x)
            # addcmul: out + w_k * y in one pass over memory instead of a product and a sum
            out = weights[k] * y if out is None else torch.addcmul(out, weights[k], y)
        assert out is not None
        return grad_in_layout(out)
