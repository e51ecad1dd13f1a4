"""Batch normalisation whose statistics are accurate on a CPU in channels_last at any thread
count.

Why: ATen's CPU kernel for a channels_last input adds the N*H*W rows of each channel one
after the other into one fp32 accumulator per thread (for the forward's mean and variance
and for the backward's two sums). With one thread that is a single sequential sum of up to
65,536 terms: at batch 64, C=16, 32x32, measured against float64, the forward is 4.5e-6
off (NCHW: 4e-8) and the backward up to 5e-4 (NCHW: 3e-6) when the incoming gradient has a
mean, as a decoder's has. The supernet's α gradient is a near-cancelling sum of such terms:
with one thread the channels_last fp32 path's α gradient was 1.4e-2 from float64 (two
threads, i.e. two partial sums: 2e-5; NCHW: 5e-7). Here the per-channel sums are
``torch.sum`` reductions (ATen sums floats in a cascade, so the error grows with log(N*H*W)),
and the elementwise work stays one pass each way. Elsewhere (CUDA, NCHW, eval mode) this is
:func:`torch.nn.functional.batch_norm`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _channel_sum(t: torch.Tensor) -> torch.Tensor:
    """Per-channel sum of ``t [N, C, H, W]`` -> ``[C]``: over H*W for each image, then over N.

    Why two reductions, not ``t.sum((0, 2, 3))``: both are cascade sums, but ATen's kernel for
    one reduction of N*H*W terms into only C outputs is slow on a CPU (64x16x32x32 in
    channels_last, 2 threads: 0.18-0.43 ms), while N*C outputs of H*W terms each go 2-5x
    faster (0.07-0.08 ms). ``flatten(2)`` is a view in both memory formats.
    """
    return t.flatten(2).sum(2).sum(0)


def _accurate_path(x: torch.Tensor, training: bool) -> bool:
    # fp32 and fp64 only: a bf16 input (CPU autocast) keeps torch's kernel, whose statistics
    # are fp32 (here they would be rounded to bf16)
    return (training and x.device.type == "cpu" and x.dim() == 4
            and x.dtype in (torch.float32, torch.float64)
            and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last))


def _per_channel(v: torch.Tensor) -> torch.Tensor:
    return v.view(1, -1, 1, 1)


def _reference(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
               eps: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train-mode BN from differentiable ops (the backward of a backward uses it)."""
    n = x.numel() // x.shape[1]
    mean = _channel_sum(x) / n
    xc = x - _per_channel(mean)
    var = _channel_sum(xc * xc) / n
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight
    y = xc * _per_channel(scale)
    return (y if bias is None else y + _per_channel(bias)), mean, var


# How to compute a BN's input again from tensors kept anyway: ``fn(*sources)`` gives the
# input bit for bit (a pointwise conv from its input and weight, a pool from its input).
Recompute = tuple[Callable[..., torch.Tensor], tuple[torch.Tensor, ...]]


class _BatchNormFunction(torch.autograd.Function):
    """Train-mode BN over (N, H, W); returns (y, batch mean, biased batch variance).

    With ``producer``, the input is not kept for the backward: ``producer(*sources)``
    computes it again there (see :func:`conv_batch_norm`).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor | None,
                bias: torch.Tensor | None, eps: float,
                producer: Callable[..., torch.Tensor] | None,
                *sources: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n = x.numel() // x.shape[1]
        mean = _channel_sum(x) / n
        xc = x - _per_channel(mean)
        var = _channel_sum(xc * xc) / n
        invstd = torch.rsqrt(var + eps)
        scale = invstd if weight is None else invstd * weight
        y = xc.mul_(_per_channel(scale))  # (xc is not needed any more: reuse its memory)
        if bias is not None:
            y.add_(_per_channel(bias))
        ctx.save_for_backward(weight, bias, mean, invstd,
                              *(sources if producer is not None else (x,)))
        ctx.eps, ctx.producer = eps, producer
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor, _gm: Any, _gv: Any) -> tuple[Any, ...]:
        weight, bias, mean, invstd, *kept = ctx.saved_tensors
        recomputed = ctx.producer is not None
        if recomputed:
            # (as the forward computed it: an autocast around this backward does not apply)
            with torch.autocast(kept[0].device.type, enabled=False):
                x = ctx.producer(*kept)
        else:
            x = kept[0]
        unused = (None,) * (2 + (len(kept) if recomputed else 0))  # eps, producer, sources
        if torch.is_grad_enabled():  # a gradient of this gradient will be asked: go through ops
            # (a recomputed x carries its sources' graph: the gradient's gradient reaches them)
            wanted = [t for t, need in zip((x, weight, bias), ctx.needs_input_grad[:3]) if need]
            y = _reference(x, weight, bias, ctx.eps)[0]  # (on the saved tensors: their graph)
            grads = iter(torch.autograd.grad(y, wanted, g, create_graph=True))
            return (*(next(grads) if need else None for need in ctx.needs_input_grad[:3]), *unused)
        n = x.numel() // x.shape[1]
        sum_g = _channel_sum(g)
        # a recomputed x is ours to overwrite (unless the producer handed back a source)
        own = recomputed and all(x.untyped_storage().data_ptr() != t.untyped_storage().data_ptr()
                                 for t in kept)
        xc = x.sub_(_per_channel(mean)) if own else x - _per_channel(mean)
        del x
        sum_gxc = _channel_sum(g * xc)
        scale = invstd if weight is None else invstd * weight
        # grad_x = scale * (g - mean(g) - xc * invstd^2 * mean(g * xc)), in two passes:
        # xc * k + c, then + scale * g
        k = -scale * invstd * invstd * sum_gxc / n
        gx = torch.addcmul(_per_channel(-scale * sum_g / n), xc, _per_channel(k))
        gx.addcmul_(g, _per_channel(scale))
        gw = sum_gxc * invstd if weight is not None and ctx.needs_input_grad[1] else None
        gb = sum_g if bias is not None and ctx.needs_input_grad[2] else None
        return gx, gw, gb, *unused


def batch_norm(x: torch.Tensor, running_mean: torch.Tensor | None,
               running_var: torch.Tensor | None, weight: torch.Tensor | None = None,
               bias: torch.Tensor | None = None, training: bool = False,
               momentum: float | None = 0.1, eps: float = 1e-5,
               recompute: Recompute | None = None) -> torch.Tensor:
    """:func:`torch.nn.functional.batch_norm`, with accurate statistics for a channels_last
    CPU input in training mode (see the module docstring). ``recompute``: how to compute
    ``x`` again in the backward instead of keeping it (used on that path only)."""
    if not _accurate_path(x, training) or (momentum is None and running_mean is not None):
        return F.batch_norm(x, running_mean, running_var, weight, bias, training,
                            0.0 if momentum is None else momentum, eps)
    # (under autocast the recomputed input could come back in another dtype: keep x)
    producer, sources = (recompute if recompute is not None and torch.is_grad_enabled()
                         and not torch.is_autocast_enabled(x.device.type) else (None, ()))
    y, mean, var = _BatchNormFunction.apply(x, weight, bias, eps, producer, *sources)
    if running_mean is not None and running_var is not None:
        n = x.numel() // x.shape[1]
        with torch.no_grad():  # as ATen: the running variance takes the unbiased estimate
            running_mean.lerp_(mean.to(running_mean.dtype), momentum)
            running_var.lerp_((var * (n / max(n - 1, 1))).to(running_var.dtype), momentum)
    return y


class BatchNorm2d(nn.BatchNorm2d):
    """:class:`torch.nn.BatchNorm2d` computed by :func:`batch_norm` (the same parameters,
    buffers and state dict).

    One difference: with a ``momentum`` (every BN of mimdarts) it does not count batches in
    ``num_batches_tracked``, which only a cumulative average (``momentum=None``) reads. The
    count is one kernel launch per BN per forward: 430 of the 8,000 launches of a DARTS-space
    grouped iteration (``benchmarks/op_count.py``), and a GPU's eager step is bound by
    launching its kernels."""

    def forward(self, x: torch.Tensor, recompute: Recompute | None = None) -> torch.Tensor:
        """``recompute``: see :func:`batch_norm`."""
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None \
                and self.momentum is None:  # a cumulative moving average: counted
            self.num_batches_tracked.add_(1)
            momentum = 1.0 / float(self.num_batches_tracked)
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if keep else None,
                          self.running_var if keep else None, self.weight, self.bias,
                          batch_stats, momentum, self.eps, recompute)


def mix_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, scale: torch.Tensor | None = None,
                   recompute: Recompute | None = None) -> torch.Tensor:
    """``bn(x)``, times ``scale [C]`` per channel when given (the op's mixing weight);
    ``recompute``: how to compute ``x`` again in BN's backward (:func:`batch_norm`), for
    mimdarts' :class:`BatchNorm2d` (its forward hooks receive it as a second argument).

    For an affine-free ``bn`` the scale becomes BN's own weight: the product costs no extra
    pass over memory, and its gradient, ``sum(grad * x_hat)``, is a sum BN's backward
    computes anyway (``addcmul(out, w, bn(x))`` reads the gradient and BN's output once more
    for it, and once more to scale the gradient). Exact. Any other BN (its own weight, a
    cumulative average, a subclass such as SyncBatchNorm) falls back to ``bn(x) * scale``.
    The folded call bypasses ``bn``'s forward hooks.
    """
    if scale is None or bn.affine or bn.momentum is None \
            or type(bn) not in (nn.BatchNorm2d, BatchNorm2d):
        y = bn(x, recompute) if type(bn) is BatchNorm2d else bn(x)
        return y if scale is None else y * scale.to(y.dtype).view(1, -1, 1, 1)
    # what nn.BatchNorm2d.forward does, with ``scale`` as the weight (mimdarts' BatchNorm2d
    # counts no batches: see its docstring)
    if bn.training and bn.track_running_stats and bn.num_batches_tracked is not None \
            and type(bn) is nn.BatchNorm2d:
        bn.num_batches_tracked.add_(1)
    batch_stats = bn.training or (bn.running_mean is None and bn.running_var is None)
    keep = not bn.training or bn.track_running_stats  # update / use the running statistics
    return batch_norm(x, bn.running_mean if keep else None, bn.running_var if keep else None,
                      scale, None, batch_stats, bn.momentum, bn.eps, recompute)


def hooked(*modules: nn.Module) -> bool:
    """Whether a forward hook (of these modules, or a global one) would see a call: a tensor
    computed again without the module's call would miss what the hook does."""
    m = nn.modules.module  # (the global hooks' registries)
    return bool(m._global_forward_hooks or m._global_forward_pre_hooks or any(
        mod._forward_hooks or mod._forward_pre_hooks for mod in modules))


def conv_batch_norm(conv: nn.Conv2d, bn: nn.BatchNorm2d, u: torch.Tensor,
                    scale: torch.Tensor | None = None) -> torch.Tensor:
    """``mix_batch_norm(bn, conv(u), scale)``; for a pointwise ``conv`` (1x1, no bias), BN's
    backward computes the conv's output again from ``u`` and the conv's weight instead of
    keeping it.

    Why: the conv's backward keeps ``u`` and its weight anyway, so its output was kept only
    for BN's backward, a tensor per op (two per sep_conv): about 38% of what a DARTS-space
    search step keeps for its backward. Computing it again costs one 1x1 conv forward per BN
    backward (a [C, C] matrix product per pixel), and it is the same output bit for bit: the
    gradients do not change (a gradient of the gradient sums in another order: 1e-16). Only
    on :func:`batch_norm`'s accurate path (a channels_last fp32 or fp64 CPU input in
    training, through mimdarts' :class:`BatchNorm2d` or a folded ``scale``), and not for a
    conv or BN with forward hooks (the recomputation would not run them); elsewhere BN
    keeps the conv's output.
    """
    z = conv(u)
    if conv.kernel_size != (1, 1) or conv.bias is not None or conv.padding_mode != "zeros" \
            or type(conv) is not nn.Conv2d or hooked(conv, bn):
        return mix_batch_norm(bn, z, scale)
    pointwise = functools.partial(F.conv2d, bias=None, stride=conv.stride, padding=conv.padding,
                                  dilation=conv.dilation, groups=conv.groups)
    return mix_batch_norm(bn, z, scale, recompute=(pointwise, (u, conv.weight)))
