"""The MIM reconstruction decoder, attached to the supernet's last feature map."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..spaces.batchnorm import BatchNorm2d


def _conv_bn_relu(c_in: int, c_out: int, transpose: bool = False) -> list[nn.Module]:
    conv = (nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1) if transpose
            else nn.Conv2d(c_in, c_out, 3, padding=1))
    return [conv, BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ReconstructionDecoder(nn.Module):
    """Feature map ``[B, C, h, w]`` -> image ``[B, 3, h * stride, w * stride]``.

    As in the paper and the authors' code, with C = encoder output channels:
    Conv3x3 C->4C, Conv1x1 4C->C (spread information over space, then channels); then per
    upsampling stage (``log2(stride)`` of them) Conv3x3 c->c + BN + ReLU and
    ConvTranspose(k4, s2, p1) c->c/2 + BN + ReLU; a final Conv3x3 ->3 and a HardTanh clipping
    to the range of normalised pixel values. Convs have biases; BN is affine.

    ``merge_convs``: nothing lies between the first two convs, so ``conv1x1(conv3x3(x))`` is
    one 3x3 conv C->C with weight ``W2 @ W1`` and bias ``W2 @ b1 + b2``; computing that product
    (0.6 GMAC at C=256) replaces the 4C-channel intermediate (10.7 GMAC per batch of 64 at the
    paper's shape, and as much again for each of the two gradients). W1 and W2 stay the
    parameters, so training is unchanged; only rounding differs.
    """

    def __init__(self, channels: int, stride: int, pixel_range: tuple[float, float],
                 merge_convs: bool = True) -> None:
        super().__init__()
        self.merge_convs = merge_convs
        stages = round(math.log2(stride))
        if stride < 1 or 2 ** stages != stride:
            raise ValueError(f"decoder stride must be a power of 2, got {stride}")
        if channels % (2 ** stages):
            raise ValueError(f"decoder channels {channels} must be divisible by {2 ** stages}")
        layers: list[nn.Module] = [nn.Conv2d(channels, 4 * channels, 3, padding=1),
                                   nn.Conv2d(4 * channels, channels, 1)]
        c = channels
        for _ in range(stages):
            layers += _conv_bn_relu(c, c) + _conv_bn_relu(c, c // 2, transpose=True)
            c //= 2
        layers += [nn.Conv2d(c, 3, 3, padding=1), nn.Hardtanh(*pixel_range)]
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self.merge_convs:
            return self.net(features)
        spread, mix = self.net[0], self.net[1]
        w2 = mix.weight.flatten(1)  # [C, 4C]
        weight = (w2 @ spread.weight.flatten(1)).view(mix.out_channels, *spread.weight.shape[1:])
        bias = torch.addmv(mix.bias, w2, spread.bias)
        h = F.conv2d(features, weight, bias, padding=1)
        for layer in itertools.islice(self.net, 2, None):
            h = layer(h)
        return h
