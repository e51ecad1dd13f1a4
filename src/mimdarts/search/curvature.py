"""Curvature of the validation loss w.r.t. α, as monitored by RobustDARTS (Zela et al., 2020).

RobustDARTS tracks the dominant eigenvalue of ``∇²_α L_val(w, α)``: it grows when the search
drifts towards sharp minima of α (and degenerate cells, e.g. all skip connections), so its
rise is an early-stopping signal. This module computes it exactly, with no finite
differences: Hessian-vector products by double backward through autograd, and power
iteration on them.

Notation: ``params`` is a list of tensors (the α), ``n`` their total number of entries; a
Hessian-vector product maps a list of tensors shaped like ``params`` to another such list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..runtime import exact_fp32
from ..spaces import Supernet
from .objectives.base import Objective, PreparedBatch

# () -> scalar loss computed from the params (a closure over the model and the batch)
LossFn = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class EigenResult:
    """Result of :func:`dominant_eigenvalue`.

    ``eigenvalue``: the Rayleigh quotient ``vᵀHv`` of the last unit iterate (the loss's units
    per unit² of the params); ``iterations``: Hessian-vector products used; ``converged``:
    whether the relative change fell below ``tol`` within ``iters``.
    """

    eigenvalue: float
    iterations: int
    converged: bool


def _grads_with_graph(loss: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``∇loss`` w.r.t. ``params`` with its own graph kept (``create_graph``), so that it can be
    differentiated again; zeros for a parameter the loss does not use."""
    grads = torch.autograd.grad(loss, list(params), create_graph=True, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def _hvp_from_grads(grads: Sequence[torch.Tensor], params: Sequence[torch.Tensor],
                    vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``H v = ∇(∇L · v)`` from gradients built with ``create_graph=True``; their graph is kept
    (``retain_graph``) so that power iteration differentiates the same gradient many times."""
    # A gradient with no graph does not depend on any parameter (the loss is linear in it, or
    # does not use it): its row of H is zero, and autograd.grad would refuse it.
    live = [i for i, g in enumerate(grads) if g.requires_grad]
    out = [torch.zeros_like(p) for p in params]
    if not live:
        return out
    hv = torch.autograd.grad([grads[i] for i in live], list(params),
                             grad_outputs=[vectors[i] for i in live], retain_graph=True,
                             allow_unused=True)
    return [o if h is None else h for o, h in zip(out, hv)]


def hessian_vector_product(loss_fn: LossFn, params: Sequence[torch.Tensor],
                           vectors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Exact ``H v`` where ``H = ∇²loss_fn()`` w.r.t. ``params`` (double backward).

    ``vectors``: one tensor per parameter, of its shape; returns tensors of the same shapes.
    ``loss_fn`` is called once. The result carries no graph.
    """
    grads = _grads_with_graph(loss_fn(), params)
    # ∇(g · v) with v constant, written as a vector-Jacobian product of g (no explicit dot)
    return [h.detach() for h in _hvp_from_grads(grads, params, [v.detach() for v in vectors])]


def _power_iteration(hvp: Callable[[torch.Tensor], torch.Tensor], v: torch.Tensor, iters: int,
                     tol: float) -> EigenResult:
    """Power iteration of the symmetric map ``hvp`` (flat ``[n] -> [n]``) from the unit ``v``."""
    eig, prev = 0.0, None
    for k in range(1, iters + 1):
        hv = hvp(v)
        # Host syncs (.item()) every iteration: fine, this runs once every few epochs on one
        # batch, not in the training hot loop, and the stopping test needs the value anyway.
        eig = float(torch.dot(v, hv).item())  # Rayleigh quotient: ||v|| = 1
        norm = float(torch.linalg.vector_norm(hv).item())
        if norm == 0.0:  # H v = 0 (H = 0, or a start in its null space): nothing to iterate
            return EigenResult(eig, k, True)
        if prev is not None and abs(eig - prev) <= tol * abs(eig):
            return EigenResult(eig, k, True)
        prev = eig
        v = hv / norm
    return EigenResult(eig, iters, False)


def dominant_eigenvalue(loss_fn: LossFn, params: Sequence[torch.Tensor], iters: int = 20,
                        tol: float = 1e-4, generator: torch.Generator | None = None,
                        algebraic: bool = False) -> EigenResult:
    """The eigenvalue of largest MAGNITUDE of ``H = ∇²loss_fn()`` over all ``params`` together
    (the ``n x n`` Hessian of the concatenated, flattened params), by power iteration.

    Power iteration converges to the eigenvalue of largest |λ|, whatever its sign, so a result
    < 0 means the most negative eigenvalue dominates. RobustDARTS reports the LARGEST
    eigenvalue (positive, and growing, in its searches); on an untrained supernet (e.g. the
    tiny NB201 one of the tests) the dominant eigenvalue is negative instead.
    ``algebraic=True`` returns the largest one: if the dominant λ₁ is negative, a second power
    iteration on ``H - λ₁ I`` (positive semi-definite, top eigenvalue ``λ_max - λ₁``) gives
    ``λ_max``; ``iterations`` and ``converged`` then cover both runs.

    Convergence is linear with ratio ``|λ₂ / λ₁|`` in the iterate, its square in the Rayleigh
    quotient: slow when the two largest magnitudes are close (``converged`` may then be False
    after ``iters``, and the estimate is a lower bound on ``|λ₁|``). Stops when
    ``|λ_k - λ_{k-1}| <= tol * |λ_k|``, or after ``iters`` Hessian-vector products (per run).

    ``loss_fn`` is called ONCE: its gradient graph is kept and differentiated once per
    iteration (one backward each, no new forward), so side effects of the forward (BatchNorm
    statistics) happen once. The start is a random unit vector drawn from ``generator``
    (default: a CPU generator seeded 0) on the generator's device, in float64, so a given
    generator gives the same start whatever the params' device and dtype.
    """
    params = list(params)
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    ref = params[0]
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    sizes = [p.numel() for p in params]

    def start() -> torch.Tensor:
        v = torch.randn(sum(sizes), generator=generator, device=generator.device, dtype=torch.float64)
        return (v / torch.linalg.vector_norm(v)).to(device=ref.device, dtype=ref.dtype)

    grads = _grads_with_graph(loss_fn(), params)

    def hvp(v: torch.Tensor) -> torch.Tensor:  # flat [n] -> flat [n]
        vs = [c.view_as(p) for c, p in zip(v.split(sizes), params)]
        return torch.cat([h.detach().reshape(-1) for h in _hvp_from_grads(grads, params, vs)])

    res = _power_iteration(hvp, start(), iters, tol)
    if not algebraic or res.eigenvalue >= 0:
        return res
    # λ₁ < 0 is the smallest eigenvalue, so H - λ₁ I has eigenvalues λ - λ₁ >= 0 and its
    # dominant one is λ_max - λ₁. A fresh start: λ₁'s eigenvector is in its null space.
    shift = res.eigenvalue
    top = _power_iteration(lambda v: hvp(v) - shift * v, start(), iters, tol)
    return EigenResult(shift + top.eigenvalue, res.iterations + top.iterations,
                       res.converged and top.converged)


def alpha_hessian_eigenvalue(model: Supernet, objective: Objective, batch: PreparedBatch,
                             iters: int = 20, tol: float = 1e-4, seed: int = 0,
                             algebraic: bool = False) -> float:
    """:func:`alpha_hessian_eigen`'s eigenvalue alone."""
    return alpha_hessian_eigen(model, objective, batch, iters, tol, seed, algebraic).eigenvalue


def alpha_hessian_eigen(model: Supernet, objective: Objective, batch: PreparedBatch,
                        iters: int = 20, tol: float = 1e-4, seed: int = 0,
                        algebraic: bool = False) -> EigenResult:
    """Dominant eigenvalue of ``∇²_α`` of ``objective.loss(model, batch)`` (RobustDARTS).

    ``model``: a supernet (``alpha_parameters()``); ``batch``: one fixed, already prepared
    val-half batch, so successive calls are comparable. See :func:`alpha_loss_eigen` for the
    precision, modes, what is left as it was, and the cost.
    """
    return alpha_loss_eigen(model, lambda: objective.loss(model, batch).loss, [objective],
                            iters, tol, seed, algebraic)


def alpha_ce_hessian_eigen(model: Supernet, images: torch.Tensor, labels: torch.Tensor,
                           iters: int = 20, tol: float = 1e-4, seed: int = 0,
                           algebraic: bool = False) -> EigenResult:
    """Dominant eigenvalue of ``∇²_α`` of the plain cross-entropy of ``model`` on the clean
    ``images`` ``[B, 3, H, W]`` and ``labels`` ``[B]``: the same function whatever the search
    objective, so that the curvature of DARTS and of MIM-DARTS (whose own loss adds a masked
    input and a reconstruction term) can be compared. See :func:`alpha_loss_eigen`."""
    return alpha_loss_eigen(model, lambda: F.cross_entropy(model(images), labels), [],
                            iters, tol, seed, algebraic)


def alpha_loss_eigen(model: Supernet, loss_fn: LossFn, extra_modules: Sequence[nn.Module] = (),
                     iters: int = 20, tol: float = 1e-4, seed: int = 0,
                     algebraic: bool = False) -> EigenResult:
    """Dominant eigenvalue of ``∇²_α loss_fn()``, where ``loss_fn`` runs ``model`` (and the
    ``extra_modules``, e.g. the objective's heads) on a fixed batch.

    Computed in the model's own dtype with autocast and TF32 off (both would swamp the second
    derivatives), in train mode as in the α step (BatchNorm normalises with batch statistics,
    which is what the α step differentiates). Leaves everything as it found it: train/eval
    modes, every buffer of ``model`` and ``extra_modules`` (BatchNorm running statistics,
    ``num_batches_tracked``), parameter values, and ``.grad`` (only ``torch.autograd.grad`` is
    used, which never writes ``.grad``). See :func:`dominant_eigenvalue` for the sign (largest
    magnitude unless ``algebraic``) and convergence; the start vector is drawn from a CPU
    generator seeded ``seed``.

    Memory: the graph of the α gradient is kept for all iterations, about two to three times
    the activations of one α-step forward. Time: one forward and backward, then one backward
    of that gradient per iteration. With data parallelism each process uses its own batch
    (nothing is averaged across processes).
    """
    alphas = list(model.alpha_parameters())
    modules: list[nn.Module] = [model, *extra_modules]
    buffers = [b for m in modules for b in m.buffers()]
    saved_buffers = [b.detach().clone() for b in buffers]
    # per submodule: a model may mix modes (e.g. a frozen part kept in eval)
    modes = [(m, m.training) for top in modules for m in top.modules()]
    device_type = alphas[0].device.type
    try:
        for m in modules:
            m.train()
        with exact_fp32(device_type), torch.enable_grad():
            res = dominant_eigenvalue(loss_fn, alphas, iters, tol,
                                      torch.Generator().manual_seed(seed), algebraic)
    finally:
        with torch.no_grad():
            for b, s in zip(buffers, saved_buffers):
                b.copy_(s)
        for m, mode in modes:
            m.training = mode
    return res
