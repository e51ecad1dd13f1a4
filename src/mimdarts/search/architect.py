"""The α update of bi-level DARTS: first order, or second order (unrolled).

Second order follows the DARTS paper. With ξ the current weight learning rate,

    w'  = w - ξ (∇w L_train(w, α) + μ · momentum_buffer + wd · w)      (a virtual SGD step)
    v   = ∇w' L_val(w', α)
    dα  = ∇α L_val(w', α) - ξ · H v,
    H v ≈ (∇α L_train(w + εv, α) - ∇α L_train(w - εv, α)) / 2ε,   ε = eps / ||v||

The virtual step is done in place on the real parameters and undone afterwards; every
buffer (BatchNorm statistics) is restored too, and the weight optimizer is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..precision import amp_context
from ..spaces import Supernet
from .objective import LossResult, Objective, PreparedBatch

# reg(alphas) -> scalar added to the α loss (e.g. the β-DARTS regulariser)
Regularizer = Callable[[list[torch.Tensor]], torch.Tensor]
# sync(tensors): average gradients across data-parallel processes, in place
GradSync = Callable[[Sequence[torch.Tensor]], object]


class Architect:
    """Owns the α optimizer and computes α gradients with the objective's loss."""

    def __init__(self, model: Supernet, objective: Objective, arch_optimizer: torch.optim.Optimizer,
                 w_optimizer: torch.optim.SGD, order: int = 1, unrolled_eps: float = 0.01,
                 amp_dtype: torch.dtype | None = None, grad_sync: GradSync | None = None) -> None:
        self.model = model
        self.objective = objective
        self.optimizer = arch_optimizer
        self.w_optimizer = w_optimizer
        self.order = order
        self.unrolled_eps = unrolled_eps
        self.alphas = model.arch_parameters()
        # w = network weights + the objective's own heads (decoder...): both are trained by SGD.
        self.weights = model.weight_parameters() + list(objective.parameters())
        self.modules: list[nn.Module] = [model, objective]
        self.amp_dtype = amp_dtype
        self.device_type = next(model.parameters()).device.type
        # Data-parallel search (mimdarts.distributed): every gradient this class computes from
        # a batch is averaged over processes, so all of them take the same α (and virtual w)
        # step. None on one process.
        self.grad_sync = grad_sync

    def autocast(self) -> torch.autocast:
        """Mixed precision for the network's forward (α, softmax and losses stay in fp32)."""
        # No weight-cast cache: each weight is used once per forward anyway, and a cache
        # outliving a CUDA graph capture would hold tensors from the graph's memory pool.
        return amp_context(self.device_type, self.amp_dtype, cache_enabled=False)

    def _sync(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        if self.grad_sync is not None:
            self.grad_sync(grads)
        return grads

    def _loss(self, batch: PreparedBatch) -> LossResult:
        with self.autocast():
            return self.objective.loss(self.model, batch)

    def alpha_grads(self, train: PreparedBatch, val: PreparedBatch, w_lr: float,
                    regularizer: Regularizer | None = None) -> tuple[list[torch.Tensor], LossResult]:
        """The α gradient (first or second order) without applying it."""
        if self.order == 1:
            res = self._loss(val)
            grads = self._grads(res.loss, self.alphas)
        else:
            grads, res = self._unrolled_grads(train, val, w_lr)
        if regularizer is not None:
            reg = regularizer(self.alphas)
            grads = [g + r for g, r in zip(grads, self._grads(reg, self.alphas))]
            res.terms["arch_reg"] = reg.detach()
        return self._sync(grads), res

    def step(self, train: PreparedBatch, val: PreparedBatch, w_lr: float,
             regularizer: Regularizer | None = None) -> LossResult:
        """One α update. Returns the α batch's loss result (for logging)."""
        grads, res = self.alpha_grads(train, val, w_lr, regularizer)
        self.optimizer.zero_grad(set_to_none=True)
        for a, g in zip(self.alphas, grads):
            a.grad = g
        self.optimizer.step()
        return res

    # ------------------------------------------------------------------ second order
    @staticmethod
    def _grads(loss: torch.Tensor, wrt: list[torch.Tensor]) -> list[torch.Tensor]:
        """Gradients of ``loss``; zeros for tensors it does not use (e.g. an unused cell type)."""
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g for p, g in zip(wrt, grads)]

    def _unrolled_grads(self, train: PreparedBatch, val: PreparedBatch,
                        w_lr: float) -> tuple[list[torch.Tensor], LossResult]:
        # torch._foreach_*: one kernel per group of tensors instead of a Python loop over
        # every weight (a supernet has hundreds of them)
        w = self.weights
        saved_w = [p.detach().clone() for p in w]
        buffers = [b for m in self.modules for b in m.buffers()]
        saved_buffers = [b.detach().clone() for b in buffers]
        group = self.w_optimizer.param_groups[0]
        momentum, wd = group["momentum"], group["weight_decay"]
        try:
            # 1. virtual step w -> w'
            g_train = self._sync(self._grads(self._loss(train).loss, w))
            with torch.no_grad():
                step = torch._foreach_add(g_train, [p.detach() for p in w], alpha=wd)
                bufs = [self.w_optimizer.state.get(p, {}).get("momentum_buffer") for p in w]
                with_buf = [i for i, b in enumerate(bufs) if b is not None]
                if with_buf:
                    torch._foreach_add_([step[i] for i in with_buf], [bufs[i] for i in with_buf],
                                        alpha=momentum)
                torch._foreach_sub_([p.detach() for p in w], torch._foreach_mul(step, w_lr))
            # 2. gradients of L_val at w' w.r.t. α and w'
            res = self._loss(val)
            n_a = len(self.alphas)
            grads = self._grads(res.loss, self.alphas + w)
            d_alpha, v = grads[:n_a], self._sync(grads[n_a:])  # d_alpha: synced by the caller
            # 3. finite-difference Hessian-vector product around the ORIGINAL w
            v_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(v)))
            eps = self.unrolled_eps / v_norm.clamp_min(1e-12)  # a tensor: no host sync
            eps_v = torch._foreach_mul(v, eps)
            with torch.no_grad():
                torch._foreach_copy_([p.detach() for p in w], torch._foreach_add(saved_w, eps_v))
            g_plus = self._grads(self._loss(train).loss, self.alphas)
            with torch.no_grad():
                torch._foreach_copy_([p.detach() for p in w], torch._foreach_sub(saved_w, eps_v))
            g_minus = self._grads(self._loss(train).loss, self.alphas)
            hv = [(gp - gm) / (2 * eps) for gp, gm in zip(g_plus, g_minus)]
            d_alpha = [da - w_lr * h for da, h in zip(d_alpha, hv)]
        finally:
            with torch.no_grad():
                torch._foreach_copy_([p.detach() for p in w], saved_w)
                if buffers:
                    torch._foreach_copy_(buffers, saved_buffers)
        return d_alpha, res
