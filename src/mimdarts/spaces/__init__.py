"""Search spaces, each a plug-in behind one small interface (see :class:`SearchSpace`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import ModelConfig
from ..errors import ConfigError, GenotypeError
from ..switches import resolve_group_edges
from .darts import DartsSupernet
from .genotype import GENOTYPES, Genotype, derive_cell, derive_genotype, load_genotype
from .nb201 import NB201Arch, NB201Network, NB201Supernet, derive_nb201, load_nb201_arch
from .supernet import Architecture, Supernet, shorten


@dataclass(frozen=True)
class SearchSpace:
    """What the search loop needs from a space: a supernet builder and an arch loader."""

    name: str
    # (model config, num_classes) -> supernet; group_edges=auto is resolved by the caller
    # (mimdarts.switches), or taken as grouped
    build: Callable[[ModelConfig, int], Supernet]
    load_arch: Callable[[str], Architecture]  # name / file / text -> architecture


def _build_darts(cfg: ModelConfig, num_classes: int) -> Supernet:
    return DartsSupernet(C=cfg.channels, num_classes=num_classes, layers=cfg.layers,
                         steps=cfg.nodes, skip_none=cfg.skip_none, share_relu=cfg.share_relu,
                         group_edges=resolve_group_edges(cfg.group_edges, cfg.skip_none),
                         fold_weights=cfg.fold_weights)


def _build_nb201(cfg: ModelConfig, num_classes: int) -> Supernet:
    # channels = C of the first stage, layers = cells per stage; `nodes` does not apply
    # (the NAS-Bench-201 cell is fixed: 4 nodes, 6 edges).
    return NB201Supernet(C=cfg.channels, num_classes=num_classes, N=cfg.layers,
                         skip_none=cfg.skip_none, share_relu=cfg.share_relu,
                         group_edges=resolve_group_edges(cfg.group_edges, cfg.skip_none),
                         fold_weights=cfg.fold_weights)


SPACES: dict[str, SearchSpace] = {
    "darts": SearchSpace("darts", _build_darts, load_genotype),
    "nb201": SearchSpace("nb201", _build_nb201, load_nb201_arch),
}


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; choose one of {', '.join(SPACES)}")
    return SPACES[name]


def load_arch(space: str, spec: str) -> Architecture:
    """Load ``spec`` as an architecture of ``space``; one of another space is named as such."""
    target = get_space(space)
    try:
        return target.load_arch(spec)
    except GenotypeError:
        for other in SPACES.values():
            if other.name == space:
                continue
            try:
                other.load_arch(spec)
            except GenotypeError:
                continue
            raise GenotypeError(f"{shorten(spec)!r} is a {other.name} architecture, but the search "
                                f"space is {space!r}") from None
        raise


__all__ = ["GENOTYPES", "SPACES", "Architecture", "DartsSupernet", "Genotype", "NB201Arch",
           "NB201Network", "NB201Supernet", "SearchSpace", "Supernet", "derive_cell",
           "derive_genotype", "derive_nb201", "get_space", "load_arch", "load_genotype",
           "load_nb201_arch"]
