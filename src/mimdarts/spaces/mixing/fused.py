"""Building blocks of the mixing: a BN that applies the mixing weight, the candidate ops run
from a ReLU computed once for all of them, and the memory layout of the gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..batchnorm import conv_batch_norm, mix_batch_norm
from ..ops import DilConv, FactorizedReduce, ReLUConvBN, SepConv

# ---------------------------------------------------------------- ops from a shared ReLU
# An op that starts with ReLU of its input and ends in a BN, run on ``r = relu(x)`` computed
# once for all the ops of an edge, times ``scale [C_out]`` if given (see mix_batch_norm):
# ``form(op, r, scale) -> op(x) * scale``.

ActivatedForm = Callable[[Any, torch.Tensor, torch.Tensor | None], torch.Tensor]


def _relu_conv_bn(op: ReLUConvBN, r: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    return conv_batch_norm(op[1], op[2], r, scale)


def _dil_conv(op: DilConv, r: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    return conv_batch_norm(op[2], op[3], op[1](r), scale)


def _sep_conv(op: SepConv, r: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor:
    return _dil_conv(op[1], F.relu(_dil_conv(op[0], r, None)), scale)


def _factorized_reduce(op: FactorizedReduce, r: torch.Tensor, scale: torch.Tensor | None
                       ) -> torch.Tensor:
    return mix_batch_norm(op.bn, op.convs(r), scale)


ACTIVATED_FORMS: dict[type[nn.Module], ActivatedForm] = {
    ReLUConvBN: _relu_conv_bn, DilConv: _dil_conv, SepConv: _sep_conv,
    FactorizedReduce: _factorized_reduce,
}


def activated_form(op: nn.Module) -> ActivatedForm | None:
    """How to run ``op`` from a shared ReLU with a folded weight; None if it cannot."""
    for cls in type(op).__mro__:
        form = ACTIVATED_FORMS.get(cls)
        if form is not None:
            return form
    return None


# ---------------------------------------------------------------- gradient layout


class _GradChannelsLast(torch.autograd.Function):
    """Identity whose backward hands the gradient on as a channels_last tensor.

    A gradient that reaches a group through a channel slice of a concatenation arrives in
    NCHW order; BatchNorm's and the convolutions' backward kernels are several times slower
    on such a gradient for channels_last activations than on a channels_last one.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


def grad_in_layout(x: torch.Tensor) -> torch.Tensor:
    """``x``, whose gradient will be handed on channels_last if ``x`` is channels_last."""
    if torch.is_grad_enabled() and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return _GradChannelsLast.apply(x)
    return x
