"""The α update of bi-level DARTS: first order, or second order (unrolled).

Second order follows the DARTS paper. With ξ the current weight learning rate,

    w'  = w - ξ (∇w L_train(w, α) + μ · momentum_buffer + wd · w)      (a virtual SGD step)
    v   = ∇w' L_val(w', α)
    dα  = ∇α L_val(w', α) - ξ · H v,
    H v ≈ (∇α L_train(w + εv, α) - ∇α L_train(w - εv, α)) / 2ε,   ε = eps / ||v||

The virtual step is done in place on the real parameters and undone afterwards; every
buffer (BatchNorm statistics) is restored too, and the weight optimizer is never touched.
Under a bf16 run, the passes of second order run in fp32 (see :data:`FP32_PASSES`).
The β-DARTS regulariser of α (:func:`beta_regularizer`) is here too: it is part of the α step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from ..runtime import amp_context, exact_fp32
from ..spaces import Supernet
from .objectives.base import LossResult, Objective, PreparedBatch

# reg(alphas) -> scalar added to the α loss (e.g. the β-DARTS regulariser)
Regularizer = Callable[[list[torch.Tensor]], torch.Tensor]
# sync(tensors): average gradients across data-parallel processes, in place
GradSync = Callable[[Sequence[torch.Tensor]], object]


def beta_regularizer(alphas: list[torch.Tensor], weight: float) -> torch.Tensor:
    """β-DARTS: ``weight * Σ_tensors mean_edges logsumexp_ops(α)`` (raw α, before softmax).
    A :data:`Regularizer` once ``weight`` is bound; added to the α loss only (never to w's)."""
    return weight * sum(torch.logsumexp(a, dim=-1).mean() for a in alphas)


# The forward passes of an α gradient, by name: the first-order pass, and the three of
# second order: the virtual step's gradient at w, the validation pass at w', the two
# perturbed passes at w ± εv of the finite-difference Hessian-vector product.
PASSES = ("first-order", "virtual", "val", "perturbed")
# Kept in fp32 under a bf16 run: every pass of second order. Autocast rounds each weight to
# bf16 (8 bits of mantissa) on its way into a conv; εv and the virtual step move most weights
# by less than that. Measured on the offline presets' supernets (DARTS C=8, 5 cells) by
# benchmarks/precision_probe.py: 96% of conv weights have one bf16 value at w + εv and
# w - εv, 81% keep theirs through the virtual step, and the α gradient under bf16 has cosine
# 0.94 with fp32's; 0.985 with the perturbed passes in fp32, 0.987 with the validation pass
# too; 1 only with all three (docs/speed.md, "precision"). So second order computes its α
# gradient in fp32 (the w step still autocasts); first order stays in bf16 (cosine 0.996).
FP32_PASSES: frozenset[str] = frozenset({"virtual", "val", "perturbed"})


class Architect:
    """Owns the α optimizer and computes α gradients with the objective's loss."""

    def __init__(self, model: Supernet, objective: Objective, alpha_optimizer: torch.optim.Optimizer,
                 w_optimizer: torch.optim.SGD, order: int = 1, unrolled_eps: float = 0.01,
                 amp_dtype: torch.dtype | None = None, grad_sync: GradSync | None = None) -> None:
        self.model = model
        self.objective = objective
        self.optimizer = alpha_optimizer
        self.w_optimizer = w_optimizer
        self.order = order
        self.unrolled_eps = unrolled_eps
        self.alphas = model.alpha_parameters()
        # w = network weights + the objective's own heads (decoder...): the list the w
        # optimizer was built with (one list, built once by its owner), in its order
        self.weights = [p for group in w_optimizer.param_groups for p in group["params"]]
        self.modules: list[nn.Module] = [model, objective]
        self.amp_dtype = amp_dtype
        # Passes of the α gradient computed in fp32 even when the run autocasts (see
        # FP32_PASSES for why and the figures that chose it).
        self.fp32_passes = FP32_PASSES
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

    def _loss(self, batch: PreparedBatch, kind: str = "first-order") -> LossResult:
        """The objective's loss, under autocast unless ``kind`` (one of :data:`PASSES`) is
        among the passes kept in fp32."""
        if kind in self.fp32_passes and self.amp_dtype is not None:
            with exact_fp32(self.device_type):
                return self.objective.loss(self.model, batch)
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

    @contextlib.contextmanager
    def weights_restored(self) -> Iterator[list[torch.Tensor]]:
        """Yields a copy of w; on exit puts w and every buffer (BatchNorm statistics) back."""
        w = self.weights
        saved_w = [p.detach().clone() for p in w]
        buffers = [b for m in self.modules for b in m.buffers()]
        saved_buffers = [b.detach().clone() for b in buffers]
        try:
            yield saved_w
        finally:
            with torch.no_grad():
                torch._foreach_copy_([p.detach() for p in w], saved_w)
                if buffers:
                    torch._foreach_copy_(buffers, saved_buffers)

    def _unrolled_grads(self, train: PreparedBatch, val: PreparedBatch,
                        w_lr: float) -> tuple[list[torch.Tensor], LossResult]:
        with self.weights_restored() as saved_w:
            self._virtual_step(train, w_lr)
            d_alpha, v, res = self._val_grads(val)  # d_alpha: synced by the caller
            hv = self._hessian_vector(train, saved_w, v)
        return [da - w_lr * h for da, h in zip(d_alpha, hv)], res

    # torch._foreach_*: one kernel per group of tensors instead of a Python loop over every
    # weight (a supernet has hundreds of them)
    def _virtual_step(self, train: PreparedBatch, w_lr: float) -> None:
        """w <- w' = w - ξ (∇w L_train + μ · momentum buffer + wd · w), in place."""
        w = self.weights
        group = self.w_optimizer.param_groups[0]
        momentum, wd = group["momentum"], group["weight_decay"]
        g_train = self._sync(self._grads(self._loss(train, "virtual").loss, w))
        with torch.no_grad():
            step = torch._foreach_add(g_train, [p.detach() for p in w], alpha=wd)
            bufs = [self.w_optimizer.state.get(p, {}).get("momentum_buffer") for p in w]
            with_buf = [i for i, b in enumerate(bufs) if b is not None]
            if with_buf:
                torch._foreach_add_([step[i] for i in with_buf], [bufs[i] for i in with_buf],
                                    alpha=momentum)
            torch._foreach_sub_([p.detach() for p in w], torch._foreach_mul(step, w_lr))

    def _val_grads(self, val: PreparedBatch
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor], LossResult]:
        """(∇α L_val, v = ∇w L_val, the loss result) at the current weights (w')."""
        res = self._loss(val, "val")
        n_a = len(self.alphas)
        grads = self._grads(res.loss, self.alphas + self.weights)
        return grads[:n_a], self._sync(grads[n_a:]), res

    def _hessian_vector(self, train: PreparedBatch, w: list[torch.Tensor],
                        v: list[torch.Tensor]) -> list[torch.Tensor]:
        """∇²_{α,w} L_train · v by a central difference around ``w`` (the original weights):
        (∇α L_train(w + εv) - ∇α L_train(w - εv)) / 2ε with ε = unrolled_eps / ||v||.
        Leaves the weights at w - εv (the caller restores them)."""
        v_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(v)))
        eps = self.unrolled_eps / v_norm.clamp_min(1e-12)  # a tensor: no host sync
        eps_v = torch._foreach_mul(v, eps)
        params = [p.detach() for p in self.weights]
        with torch.no_grad():
            torch._foreach_copy_(params, torch._foreach_add(w, eps_v))
        g_plus = self._grads(self._loss(train, "perturbed").loss, self.alphas)
        with torch.no_grad():
            torch._foreach_copy_(params, torch._foreach_sub(w, eps_v))
        g_minus = self._grads(self._loss(train, "perturbed").loss, self.alphas)
        return [(gp - gm) / (2 * eps) for gp, gm in zip(g_plus, g_minus)]
