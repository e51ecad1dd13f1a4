"""Evaluation networks: a found cell stacked deep and trained from scratch.

Two DARTS macro-architectures are built from any :class:`~mimdarts.spaces.Genotype`:

- :class:`NetworkCIFAR`: stem Conv3x3(3 -> 3C) + BN, ``layers`` cells with reductions at
  ``layers // 3`` and ``2 * layers // 3``, global pool, linear; auxiliary head after cell
  ``2 * layers // 3``.
- :class:`NetworkImageNet` (mobile setting): a stem of three stride-2 convs (two in ``stem0``,
  one in ``stem1``) taking 224 -> 28, then the same cell stack.

Both return ``(logits, aux_logits)``; ``aux_logits`` is ``None`` in eval mode or without the
auxiliary head. Cells use BatchNorm with ``affine=True`` and drop-path (never on identity
ops), whose probability is the attribute ``drop_path_prob`` set by the trainer each epoch.

Networks are registered by name in :data:`NETWORKS` with the search space whose
architectures they accept, so another space (NAS-Bench-201) plugs in with one
:func:`register_network` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from ..spaces.candidates import DARTS_OPS
from ..spaces.genotype import Genotype
from ..spaces.nb201 import NB201Network
from ..spaces.ops import FactorizedReduce, Identity, ReLUConvBN


def drop_path(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero each sample's whole branch with probability ``p``; scale survivors by 1/(1-p).

    ``x``: ``[B, ...]`` -> same shape. The expectation is unchanged, so no rescaling is
    needed at test time. ``p`` must be in [0, 1).
    """
    if p <= 0.0:
        return x
    keep = 1.0 - p
    mask = torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device, dtype=x.dtype,
                      generator=generator) < keep
    return x * mask.to(x.dtype) / keep


class EvalCell(nn.Module):
    """One cell of a trained network: two ops per node, chosen by the genotype.

    Inputs ``s0 = c_{k-2}`` ``[B, C_pp, H0, W0]`` and ``s1 = c_{k-1}`` ``[B, C_p, H, W]``
    (``H0 = 2H`` when the previous cell reduced); output ``[B, len(concat) * C, H', W']``
    with ``H' = H / 2`` in a reduction cell.
    """

    def __init__(self, genotype: Genotype, C_pp: int, C_p: int, C: int, reduction: bool,
                 reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.pre0 = (FactorizedReduce(C_pp, C, affine=True) if reduction_prev
                     else ReLUConvBN(C_pp, C, 1, 1, 0, affine=True))
        self.pre1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=True)
        edges = genotype.reduce if reduction else genotype.normal
        self.concat = tuple(genotype.reduce_concat if reduction else genotype.normal_concat)
        self.steps = len(edges) // 2
        self.inputs = tuple(i for _, i in edges)
        self.ops = nn.ModuleList(
            DARTS_OPS.build(name, C, 2 if reduction and i < 2 else 1, affine=True)
            for name, i in edges)
        # Identity ops are never dropped (DARTS): dropping a skip connection would remove
        # the only path some nodes have, and it has no weights to regularise.
        self.droppable = tuple(not isinstance(op, Identity) for op in self.ops)
        self.out_channels = len(self.concat) * C

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        drop = self.training and drop_prob > 0.0
        for i in range(self.steps):
            node = None
            for k in (2 * i, 2 * i + 1):
                h = self.ops[k](states[self.inputs[k]])
                if drop and self.droppable[k]:
                    h = drop_path(h, drop_prob)
                node = h if node is None else node + h
            states.append(node)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """Classifier on an intermediate feature map, trained with a small loss weight.

    ReLU, AvgPool5 (stride 3 on CIFAR's 8x8 map, 2 on ImageNet's 7x7: both give 2x2),
    Conv1x1 -> 128, BN, ReLU, Conv2x2 -> 768, [BN], ReLU, Linear.
    ``[B, C, h, w] -> [B, num_classes]``. DARTS's ImageNet head has no BN after the 2x2
    conv (kept that way so parameter counts match the published ones).
    """

    def __init__(self, C: int, num_classes: int, pool_stride: int = 3, bn_768: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReLU(inplace=False),  # its input also feeds the next cells
            nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False),
            nn.Conv2d(C, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False),
        ]
        if bn_768:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class _CellStack(nn.Module):
    """Shared body of the DARTS networks: cells, aux head, pooling and classifier."""

    aux_head: AuxiliaryHead | None

    def _build_cells(self, genotype: Genotype, C_pp: int, C_p: int, C: int, layers: int,
                     reduction_prev: bool) -> tuple[int, int]:
        """Append ``layers`` cells; returns (channels of the last cell, channels at the aux point)."""
        self.cells = nn.ModuleList()
        self.aux_index = 2 * layers // 3
        reductions = {layers // 3, 2 * layers // 3}
        C_aux = C_p
        for i in range(layers):
            reduction = i in reductions
            if reduction:
                C *= 2
            cell = EvalCell(genotype, C_pp, C_p, C, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            C_pp, C_p = C_p, cell.out_channels
            if i == self.aux_index:
                C_aux = C_p
        return C_p, C_aux

    def _run_cells(self, s0: torch.Tensor, s1: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_index and self.aux_head is not None and self.training:
                aux = self.aux_head(s1)
        return s1, aux

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(x), 1))


class NetworkCIFAR(_CellStack):
    """The DARTS CIFAR network. ``[B, 3, H, W] -> ([B, classes], [B, classes] | None)``.

    Default size (C=36, 20 cells) is the papers' evaluation network (DARTS_V2: 3.3M params).
    """

    def __init__(self, genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                 auxiliary: bool = True, stem_multiplier: int = 3) -> None:
        super().__init__()
        self.genotype = genotype
        self.drop_path_prob = 0.0
        C_stem = stem_multiplier * C
        self.stem = nn.Sequential(nn.Conv2d(3, C_stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(C_stem))
        C_last, C_aux = self._build_cells(genotype, C_stem, C_stem, C, layers, False)
        self.aux_head = AuxiliaryHead(C_aux, num_classes, pool_stride=3) if auxiliary else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_last, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s = self.stem(x)
        out, aux = self._run_cells(s, s)
        return self.classify(out), aux


class NetworkImageNet(_CellStack):
    """The DARTS ImageNet (mobile) network. ``[B, 3, 224, 224] -> ([B, classes], aux | None)``.

    ``stem0``: Conv3x3 s2 (3 -> C/2), BN, ReLU, Conv3x3 s2 (C/2 -> C), BN (224 -> 56);
    ``stem1``: ReLU, Conv3x3 s2, BN (56 -> 28). The first cell sees both stem outputs, so it
    treats its ``c_{k-2}`` as coming from a reduction. The auxiliary head sits on the 7x7 map.
    """

    def __init__(self, genotype: Genotype, C: int = 48, num_classes: int = 1000, layers: int = 14,
                 auxiliary: bool = True) -> None:
        super().__init__()
        if C % 2:
            raise ConfigError(f"the ImageNet stem needs an even channel count, got {C}")
        self.genotype = genotype
        self.drop_path_prob = 0.0
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
            nn.ReLU(inplace=True),
            nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
        self.stem1 = nn.Sequential(
            nn.ReLU(inplace=False), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(C))
        C_last, C_aux = self._build_cells(genotype, C, C, C, layers, True)
        self.aux_head = (AuxiliaryHead(C_aux, num_classes, pool_stride=2, bn_768=False)
                         if auxiliary else None)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(C_last, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0 = self.stem0(x)
        out, aux = self._run_cells(s0, self.stem1(s0))
        return self.classify(out), aux


# ---------------------------------------------------------------- registry

# build(arch, channels, layers, auxiliary, num_classes) -> nn.Module returning (logits, aux)
NetworkBuilder = Callable[[Any, int, int, bool, int], nn.Module]


@dataclass(frozen=True)
class NetworkSpec:
    """A trainable network family: the space its architectures come from and a builder."""

    name: str
    space: str  # key of mimdarts.spaces.SPACES whose load_arch parses the --genotype spec
    build: NetworkBuilder
    description: str


NETWORKS: Registry[NetworkSpec] = Registry("network")


def register_network(name: str, space: str, description: str) -> Callable[[NetworkBuilder], NetworkBuilder]:
    """Register ``build(arch, channels, layers, auxiliary, num_classes)`` under ``name``.

    The NAS-Bench-201 evaluation network registers here as ``nb201`` (space ``nb201``).
    """
    def deco(build: NetworkBuilder) -> NetworkBuilder:
        NETWORKS.add(name, NetworkSpec(name, space, build, description))
        return build
    return deco


def get_network(name: str) -> NetworkSpec:
    return NETWORKS[name]


register_network("darts-cifar", "darts", "DARTS CIFAR network (stem 3C, aux head after 2/3)")(
    lambda g, C, layers, aux, n: NetworkCIFAR(g, C, n, layers, aux))
register_network("darts-imagenet", "darts", "DARTS ImageNet mobile network (3 stride-2 stem convs)")(
    lambda g, C, layers, aux, n: NetworkImageNet(g, C, n, layers, aux))


class NB201EvalNetwork(NB201Network):
    """The NAS-Bench-201 network with the trainer's ``(logits, aux)`` interface (no aux head)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.classify(self.features(x)), None


register_network("nb201", "nb201", "NAS-Bench-201 network (3 stages of N cells, residual blocks)")(
    lambda arch, C, layers, aux, n: NB201EvalNetwork(arch, C, layers, n))


# ---------------------------------------------------------------- size and cost


def count_parameters(model: nn.Module, exclude_aux: bool = True) -> int:
    """Number of parameters, without the auxiliary head by default (the papers' convention)."""
    return sum(p.numel() for n, p in model.named_parameters()
               if not (exclude_aux and n.startswith("aux_head.")))


def count_multiply_adds(model: nn.Module, image_size: int, channels: int = 3) -> int:
    """Multiply-adds of one eval-mode forward pass of a single ``image_size`` image.

    Counts convolutions (``out_elements * C_in / groups * k_h * k_w``) and linear layers
    (``in * out``), as the papers do; BN, pooling, additions and the auxiliary head (not run
    in eval mode) are left out.
    """
    total = 0

    def conv_hook(m: nn.Conv2d, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out[0].numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        total += m.in_features * m.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, channels, image_size, image_size, device=p.device, dtype=p.dtype))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total




def paper_network_params(arch: Any, num_classes: int = 10) -> tuple[int, str]:
    """(parameters without the auxiliary head, a description) of ``arch``'s evaluation
    network at the papers' size. Built under a forked RNG: the caller's random streams are
    left as they were."""
    from ..spaces.facts import space_facts
    # the evaluation network the papers' tables size a space's cells with (spaces/facts.py)
    name, channels, layers = space_facts(arch.space).paper_network
    with torch.random.fork_rng(devices=[]):
        net = NETWORKS[name].build(arch, channels, layers, False, num_classes)
    return count_parameters(net), f"{name}, C={channels}, {layers} cells, {num_classes} classes"
