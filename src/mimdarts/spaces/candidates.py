"""Each search space's candidate ops, by name: one registry per space.

An op is registered once, with its plain factory ``(C, stride, affine) -> nn.Module`` (what
the evaluation networks and the per-edge supernet build) and, where one exists, its grouped
factory ``(C, stride, m) -> nn.Module``: the op on the ``m`` edges leaving one node, for the
grouped supernet (:mod:`mimdarts.spaces.mixing.grouped`). A registry's order is the order of
α's columns, and must be the space's name tuple in :mod:`mimdarts.spaces.primitives` (which
the torch-free architecture parsers validate against). A registry may also hold extra ops,
built by name but no column of α (the DARTS space's `noise`, for genotypes of RobustDARTS's
S4); a reduced space's edges take their ops from :meth:`OpRegistry.subset`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import ConfigError, GenotypeError
from ..registry import Registry
from .grouped_ops import GroupedDilConv, GroupedFactorizedReduce, GroupedReLUConvBN, GroupedSepConv
from .ops import DilConv, FactorizedReduce, Identity, MaxPool2d, Noise, ReLUConvBN, SepConv, Zero
from .primitives import DARTS_EXTRA_OPS, DARTS_PRIMITIVES, NB201_PRIMITIVES

OpFactory = Callable[[int, int, bool], nn.Module]  # (C, stride, affine) -> [B, C, H, W] -> [B, C, H/s, W/s]
# (C, stride, m) -> a GroupedOp, or a parameter-free module whose output serves all m edges
GroupFactory = Callable[[int, int, int], nn.Module]


@dataclass(frozen=True)
class OpSpec:
    """A candidate op: its plain form, and its grouped form (None: run per edge)."""

    build: OpFactory
    grouped: GroupFactory | None = None


class OpRegistry(Registry[OpSpec]):
    """A space's ordered name -> :class:`OpSpec` map; the order defines α's columns."""

    def __init__(self, space: str) -> None:
        super().__init__("op")
        self.space = space
        self.extras: dict[str, OpSpec] = {}  # built by name, but no column of α

    def add_extra(self, name: str, spec: OpSpec) -> OpSpec:
        """Register an op that genotypes may hold and the networks build, outside α's columns."""
        if name in self or name in self.extras:
            raise ValueError(f"op {name!r} registered twice")
        self.extras[name] = spec
        if self.space == "darts" and name not in DARTS_EXTRA_OPS:  # genotypes may now hold it
            DARTS_EXTRA_OPS.append(name)
        return spec

    def check(self, name: str) -> None:
        """The registry's one-line error, as a GenotypeError: op names come from genotypes
        (and :func:`mimdarts.spaces.load_arch` tells another space's architecture by it)."""
        if name in self.extras:
            return
        try:
            super().check(name)
        except ConfigError as e:
            extra = "".join(f", {n}" for n in self.extras)
            raise GenotypeError(f"{e}{extra}") from None

    def __getitem__(self, name: str) -> OpSpec:
        return self.extras[name] if name in self.extras else super().__getitem__(name)

    def index(self, name: str) -> int:
        """The column of α of op ``name`` (an extra op has none: a GenotypeError)."""
        self.check(name)
        if name not in self.names:
            raise GenotypeError(f"op {name!r} is no column of α in the {self.space} space")
        return self.names.index(name)

    def subset(self, names: tuple[str, ...], space: str) -> OpRegistry:
        """A registry of ``names`` (this one's ops or extras), in that order: the candidate
        ops of an edge of a reduced space such as RobustDARTS's S1-S4 (its α columns)."""
        sub = OpRegistry(space)
        for name in names:
            sub.add(name, self[name])
        return sub

    def build(self, name: str, C: int, stride: int, affine: bool) -> nn.Module:
        """The plain op ``name``: ``[B, C, H, W] -> [B, C, H/stride, W/stride]``."""
        return self[name].build(C, stride, affine)

    def group_factory(self, name: str) -> GroupFactory | None:
        """The grouped form of op ``name``, or None if it has none (it then runs per edge)."""
        return self[name].grouped

    def __repr__(self) -> str:
        return f"OpRegistry({self.space!r}: {', '.join(self)})"


# ---------------------------------------------------------------- ops of both spaces
# The `none` op has no grouped form: the grouped supernet never computes it (exact).
NONE = OpSpec(lambda C, stride, affine: Zero(stride))
SKIP_CONNECT = OpSpec(
    lambda C, stride, affine: Identity() if stride == 1 else FactorizedReduce(C, C, affine),
    lambda C, stride, m: Identity() if stride == 1 else GroupedFactorizedReduce(C, m))
# parameter-free: one module serves every edge
AVG_POOL_3X3 = OpSpec(
    lambda C, stride, affine: nn.AvgPool2d(3, stride, padding=1, count_include_pad=False),
    lambda C, stride, m: nn.AvgPool2d(3, stride, padding=1, count_include_pad=False))


def _sep_conv(kernel: int, padding: int) -> OpSpec:
    return OpSpec(lambda C, stride, affine: SepConv(C, C, kernel, stride, padding, affine),
                  lambda C, stride, m: GroupedSepConv(C, kernel, stride, padding, m))


def _dil_conv(kernel: int, padding: int) -> OpSpec:
    return OpSpec(lambda C, stride, affine: DilConv(C, C, kernel, stride, padding, 2, affine),
                  lambda C, stride, m: GroupedDilConv(C, kernel, stride, padding, 2, m))


def _nor_conv(kernel: int, padding: int) -> OpSpec:
    return OpSpec(lambda C, stride, affine: ReLUConvBN(C, C, kernel, stride, padding, affine),
                  lambda C, stride, m: GroupedReLUConvBN(C, kernel, stride, padding, m))


# ---------------------------------------------------------------- DARTS space (order matters)

DARTS_OPS = OpRegistry("darts")
DARTS_OPS.add("none", NONE)
DARTS_OPS.add("max_pool_3x3", OpSpec(lambda C, stride, affine: MaxPool2d(3, stride, padding=1),
                                     lambda C, stride, m: MaxPool2d(3, stride, padding=1)))
DARTS_OPS.add("avg_pool_3x3", AVG_POOL_3X3)
DARTS_OPS.add("skip_connect", SKIP_CONNECT)
DARTS_OPS.add("sep_conv_3x3", _sep_conv(3, 1))
DARTS_OPS.add("sep_conv_5x5", _sep_conv(5, 2))
DARTS_OPS.add("dil_conv_3x3", _dil_conv(3, 2))
DARTS_OPS.add("dil_conv_5x5", _dil_conv(5, 4))
# RobustDARTS's S4 candidate: no grouped form, so a grouped supernet runs it per edge (each
# edge its own samples; a search cell draws them for all its edges at once, spaces/noise.py)
DARTS_OPS.add_extra("noise", OpSpec(lambda C, stride, affine: Noise(stride)))


# ---------------------------------------------------------------- NAS-Bench-201 space (order matters)
# nor_conv = ReLU -> Conv(no bias) -> BN; the pool has no BN after it (unlike DARTS's search net).
# Cells of the benchmark only use stride 1; stride 2 is supported so every op keeps the
# factory contract (skip_connect reduces with FactorizedReduce, as in the DARTS registry).

NB201_OPS = OpRegistry("nb201")
NB201_OPS.add("none", NONE)
NB201_OPS.add("skip_connect", SKIP_CONNECT)
NB201_OPS.add("nor_conv_1x1", _nor_conv(1, 0))
NB201_OPS.add("nor_conv_3x3", _nor_conv(3, 1))
NB201_OPS.add("avg_pool_3x3", AVG_POOL_3X3)


# The parsers check op names against the tuples and α's columns follow the registries: a
# registry out of step with its tuple would misread every architecture.
for _ops, _names in ((DARTS_OPS, DARTS_PRIMITIVES), (NB201_OPS, NB201_PRIMITIVES)):
    if _ops.names != _names:
        raise RuntimeError(f"{_ops!r} does not match mimdarts.spaces.primitives {_names}")
if list(DARTS_OPS.extras) != DARTS_EXTRA_OPS:
    raise RuntimeError(f"DARTS_OPS's extra ops do not match mimdarts.spaces.primitives {DARTS_EXTRA_OPS}")
