"""Search spaces, each a plug-in behind one small interface (see :class:`SearchSpace`).

The architecture notations (:class:`Genotype`, :class:`NB201Arch`, :func:`load_arch`...) and
the registry :data:`SPACES` import no torch, so ``mimdarts genotype`` and ``mimdarts nb201``
stay fast; the supernets and networks import it on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_package
from ..errors import GenotypeError
from ..registry import Registry
from ..switches import resolve_group_edges
from .architecture import Architecture, shorten
from .genotype import GENOTYPES, Genotype, derive_cell, derive_genotype, load_genotype
from .nb201_arch import NB201Arch, derive_nb201, load_nb201_arch
from .robust import ROBUST_SPACES
from .robust import builder as robust_builder
from .robust import column_names as robust_column_names
from .robust import space_ops as robust_space_ops

if TYPE_CHECKING:
    from ..config import ModelConfig
    from .supernet import Supernet


@dataclass(frozen=True)
class SearchSpace:
    """What the search loop needs from a space: a supernet builder and an arch loader."""

    name: str
    # (model config, num_classes) -> supernet; group_edges=auto is resolved by the caller
    # (mimdarts.switches), or taken as grouped
    build: Callable[[ModelConfig, int], Supernet]
    load_arch: Callable[[str], Architecture]  # name / file / text -> architecture
    # the family whose facts (report, benchmark shapes, networks: spaces/facts.py) apply;
    # "" = the space's own name. A variant of the DARTS space says "darts".
    family: str = ""
    # the names of α's columns, when they are not the family's primitives (a space whose
    # edges hold fewer candidates); None: the family's
    alpha_columns: tuple[str, ...] | None = None
    # every op an edge may hold, when not all the family's primitives (a reduced space's);
    # None: the family's. The report shows an op's count only where the space holds the op
    ops: frozenset[str] | None = None


# The builders import their supernet (and torch) when called, not when SPACES is imported.
def _build_darts(cfg: ModelConfig, num_classes: int) -> Supernet:
    from .darts import DartsSupernet
    return DartsSupernet(C=cfg.channels, num_classes=num_classes, layers=cfg.layers,
                         steps=cfg.nodes, skip_none=cfg.skip_none, share_relu=cfg.share_relu,
                         group_edges=resolve_group_edges(cfg.group_edges, cfg.skip_none),
                         fold_weights=cfg.fold_weights)


def _build_nb201(cfg: ModelConfig, num_classes: int) -> Supernet:
    # channels = C of the first stage, layers = cells per stage; `nodes` does not apply
    # (the NAS-Bench-201 cell is fixed: 4 nodes, 6 edges).
    from .nb201 import NB201Supernet
    return NB201Supernet(C=cfg.channels, num_classes=num_classes, N=cfg.layers,
                         skip_none=cfg.skip_none, share_relu=cfg.share_relu,
                         group_edges=resolve_group_edges(cfg.group_edges, cfg.skip_none),
                         fold_weights=cfg.fold_weights)


SPACES: Registry[SearchSpace] = Registry("search space")
SPACES.add("darts", SearchSpace("darts", _build_darts, load_genotype))
SPACES.add("nb201", SearchSpace("nb201", _build_nb201, load_nb201_arch))


def add_reduced_space(name: str, normal: Any, reduce: Any = None) -> SearchSpace:
    """Register a reduced DARTS space: the DARTS cell and supernet with each edge's candidate
    ops given per cell type, one op set for every edge (``("noise", "sep_conv_3x3")``) or one
    per edge (14 at 4 nodes, as S1); ``reduce`` defaults to ``normal``. Its cells are DARTS
    genotypes, and the DARTS family's facts (report, networks, benchmark shapes) apply."""
    ROBUST_SPACES[name] = {"normal": normal, "reduce": normal if reduce is None else reduce}
    return _register_reduced(name)


def _register_reduced(name: str) -> SearchSpace:
    """The registry entry of a reduced space whose op sets ``ROBUST_SPACES`` holds."""
    space = SearchSpace(name, robust_builder(name), load_genotype, family="darts",
                        alpha_columns=robust_column_names(name), ops=robust_space_ops(name))
    SPACES.add(name, space)
    return space


# RobustDARTS's reduced DARTS spaces S1-S4 (spaces/robust.py)
for _name in ROBUST_SPACES:
    _register_reduced(_name)


def get_space(name: str) -> SearchSpace:
    """The registered space ``name`` (a one-line ConfigError for an unknown name)."""
    return SPACES[name]


def load_arch(space: str, spec: str) -> Architecture:
    """Load ``spec`` as an architecture of ``space``; one of another space is named as such."""
    target = get_space(space)
    try:
        return target.load_arch(spec)
    except GenotypeError:
        other = other_space(spec, space)
        if other is None:
            raise
        raise GenotypeError(f"{shorten(spec)!r} is a {other} architecture, but the search "
                            f"space is {space!r}") from None


def other_space(spec: str, exclude: str) -> str | None:
    """The first registered space other than ``exclude`` in which ``spec`` loads, or None."""
    for other in SPACES.values():
        if other.name == exclude:
            continue
        try:
            other.load_arch(spec)
        except GenotypeError:
            continue
        return other.name
    return None


def detect_arch(spec: str) -> Architecture:
    """``spec`` as an architecture of whichever registered space it belongs to (names, text,
    JSON, files and run folders, as each space reads them); one line naming every notation
    tried when it is none of them."""
    errors: dict[str, list[str]] = {}  # message -> the spaces that gave it
    tried = set()  # a loader once: the DARTS variants (darts-s1...) read DARTS genotypes
    for space in SPACES.values():
        if space.load_arch in tried:
            continue
        tried.add(space.load_arch)
        try:
            return space.load_arch(spec)
        except GenotypeError as e:
            errors.setdefault(str(e), []).append(space.name)
    if len(errors) == 1:  # the same for every space (an unreadable file): say it once
        raise GenotypeError(next(iter(errors)))
    raise GenotypeError(f"{shorten(spec)!r} is no architecture of any search space ("
                        + "; ".join(f"{'/'.join(n)}: {m}" for m, n in errors.items()) + ")")


# the torch side, imported on first use
_EXPORTS = {"Supernet": ".supernet", "DartsSupernet": ".darts", "NB201Network": ".nb201",
            "NB201Supernet": ".nb201"}
__getattr__ = lazy_package(__name__, _EXPORTS)
__all__ = ["GENOTYPES", "SPACES", "Architecture", "DartsSupernet", "Genotype", "NB201Arch",  # noqa: F822
           "NB201Network", "NB201Supernet", "SearchSpace", "Supernet", "add_reduced_space", "derive_cell",
           "derive_genotype", "derive_nb201", "detect_arch", "get_space", "load_arch",
           "load_genotype", "other_space",
           "load_nb201_arch"]
