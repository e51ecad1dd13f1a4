"""One bi-level iteration of DARTS: an α step on a val batch, then a w step on a train batch.

:class:`BilevelStep` owns what the iteration touches: the supernet, the objective, the
architect (α optimizer and α gradients), the weight optimizer and its parameter list, the
precision context and the data-parallel gradient averaging. The search loop, the CUDA-graph
wrapper and the benchmarks all call it the same way::

    w_result, alpha_result = step(x, y, x_val, y_val, lr, regularizer)
"""

from __future__ import annotations

import torch

from .. import distributed
from ..spaces import Supernet
from .architect import Architect, Regularizer
from .objectives.base import LossResult, Objective


class BilevelStep:
    """α step then w step, on the weights and α of ``model`` and ``objective``."""

    def __init__(self, model: Supernet, objective: Objective, architect: Architect,
                 w_optimizer: torch.optim.SGD, w_grad_clip: float = 0.0,
                 dist: distributed.Dist | None = None) -> None:
        self.model = model
        self.objective = objective
        self.architect = architect
        self.w_optimizer = w_optimizer
        self.w_grad_clip = w_grad_clip  # max global norm of the w gradient; 0 = off
        self.dist = dist or distributed.Dist()
        # w = the network's weights + the objective's own heads (decoder...): one list, the
        # architect's, for the w step, the α step's virtual step and gradient averaging
        self.w_params = architect.weights

    @property
    def alpha_optimizer(self) -> torch.optim.Optimizer:
        return self.architect.optimizer

    def __call__(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor,
                 y_val: torch.Tensor, lr: float, regularizer: Regularizer | None = None
                 ) -> tuple[LossResult, LossResult]:
        """One iteration; returns (w step's loss result, α step's). ``lr``: the w learning
        rate (set on the optimizer by the caller; second order's virtual step uses it too)."""
        train = self.objective.prepare(x, y)
        val = self.objective.prepare(x_val, y_val)
        alpha_res = self.architect.step(train, val, lr, regularizer)
        self.w_optimizer.zero_grad(set_to_none=True)
        with self.architect.autocast():
            res = self.objective.loss(self.model, train)
        # Only w needs gradients here: α's are not accumulated by this backward.
        torch.autograd.backward(res.loss, inputs=self.w_params)
        self.dist.average_gradients(self.w_params)  # no-op on one process
        if self.w_grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.w_params, self.w_grad_clip)
        self.w_optimizer.step()
        return res, alpha_res
