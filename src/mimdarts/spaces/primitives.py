"""Each search space's candidate op names, in the order of α's columns (no torch).

The op registries (:mod:`mimdarts.spaces.candidates`, which builds the modules and so
imports torch) are checked against these tuples, so parsing an architecture can validate its
op names without importing torch.
"""

from __future__ import annotations

from ..errors import GenotypeError

DARTS_PRIMITIVES: tuple[str, ...] = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)
NB201_PRIMITIVES: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3",
                                     "avg_pool_3x3")
# Ops a DARTS genotype may hold beyond α's columns of the full DARTS space: `noise`, a
# candidate of RobustDARTS's reduced space S4 (mimdarts.spaces.robust), and any op registered
# later with DARTS_OPS.add_extra (mimdarts.spaces.candidates appends it here). Genotypes
# validate against darts_genotype_ops(); the DARTS supernet's α keeps the 8 columns above.
DARTS_EXTRA_OPS: list[str] = ["noise"]


def darts_genotype_ops() -> tuple[str, ...]:
    """The op names a DARTS genotype may hold: α's 8 columns, then the extra ops."""
    return DARTS_PRIMITIVES + tuple(DARTS_EXTRA_OPS)


def check_op(name: str, primitives: tuple[str, ...]) -> None:
    """A GenotypeError unless ``name`` is one of ``primitives`` (the op registries' message)."""
    if name not in primitives:
        raise GenotypeError(f"unknown op {name!r}; choose one of {', '.join(primitives)}")
