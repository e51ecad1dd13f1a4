"""Search spaces, each a plug-in behind one small interface (see :class:`SearchSpace`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..config import ModelConfig
from ..errors import ConfigError
from .darts import DartsSupernet
from .genotype import GENOTYPES, Genotype, derive_cell, derive_genotype, load_genotype
from .supernet import Architecture, Supernet


@dataclass(frozen=True)
class SearchSpace:
    """What the search loop needs from a space: a supernet builder and an arch loader."""

    name: str
    build: Callable[[ModelConfig, int], Supernet]  # (model config, num_classes) -> supernet
    load_arch: Callable[[str], Architecture]  # name / file / text -> architecture


def _build_darts(cfg: ModelConfig, num_classes: int) -> Supernet:
    return DartsSupernet(C=cfg.channels, num_classes=num_classes, layers=cfg.layers,
                         steps=cfg.nodes, skip_none=cfg.skip_none)


SPACES: dict[str, SearchSpace] = {
    "darts": SearchSpace("darts", _build_darts, load_genotype),
}


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise ConfigError(f"unknown search space {name!r}; choose one of {', '.join(SPACES)}")
    return SPACES[name]


__all__ = ["GENOTYPES", "SPACES", "Architecture", "DartsSupernet", "Genotype", "SearchSpace",
           "Supernet", "derive_cell", "derive_genotype", "get_space", "load_genotype"]
