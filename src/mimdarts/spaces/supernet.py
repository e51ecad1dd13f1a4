"""The interface every search space's supernet implements.

The search loop, the objectives and the reports only use this interface, so a new space is
a new module plus one entry in :data:`mimdarts.spaces.SPACES`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn


class Architecture(Protocol):
    """A derived discrete architecture (a DARTS genotype, a NAS-Bench-201 cell...)."""

    space: str

    def to_dict(self) -> dict[str, Any]: ...

    def summary(self) -> dict[str, float]:
        """Numbers logged with every search epoch (edge counts, benchmark accuracies...)."""
        ...

    def graph(self) -> dict[str, tuple[tuple[list[str], list[tuple[int, int, str]]], int]]:
        """Per cell: ((node names, (src, dst, op) edges), number of input nodes), to draw it."""
        ...


def shorten(text: str, n: int = 80) -> str:
    """``text`` cut to ``n`` characters, for an error message."""
    return text if len(text) <= n else text[:n] + "..."


def load_arch_spec(spec: str, parse: Callable[[str], Any], from_json: Callable[[str], Any]) -> Any:
    """An architecture from JSON text, or from a JSON / text file or a run folder's
    genotype.json (``parse`` reads the space's own notation); None if ``spec`` is none of
    these (the caller then tries names and inline notation, or refuses it)."""
    stripped = spec.strip()
    if stripped.startswith("{"):
        return from_json(stripped)
    text = read_arch_file(spec)
    if text is not None:
        return from_json(text) if text.startswith("{") else parse(text)
    return None


def read_arch_file(spec: str) -> str | None:
    """The text of an architecture file, or of a run folder's genotype.json; None if ``spec``
    names neither (it may then be a name or an inline architecture)."""
    from ..errors import GenotypeError

    path = Path(spec)
    if path.is_dir():
        path = path / "genotype.json"
        if not path.is_file():
            raise GenotypeError(f"run folder {spec!r} has no genotype.json")
    return path.read_text().strip() if path.is_file() else None


class Supernet(nn.Module, metaclass=ABCMeta):
    """Base class: α are registered parameters listed by name in ``arch_names``.

    Subclasses define ``features`` (input -> last feature map before pooling),
    ``classify`` (feature map -> logits), ``genotype`` (α -> architecture) and set
    ``feature_channels`` / ``feature_stride`` (input size / feature-map size), which the
    reconstruction decoder of MIM needs.
    """

    space: str = ""
    arch_names: tuple[str, ...] = ()
    feature_channels: int
    feature_stride: int

    def weight_parameters(self) -> list[nn.Parameter]:
        """Network weights w (everything that is not α), trained by SGD."""
        arch = set(self.arch_names)
        return [p for n, p in self.named_parameters() if n not in arch]

    def arch_parameters(self) -> list[nn.Parameter]:
        """Architecture parameters α, trained by Adam on the other half of the data."""
        return [getattr(self, n) for n in self.arch_names]

    def arch_weights(self) -> dict[str, torch.Tensor]:
        """softmax(α) over ops, per α tensor, detached."""
        return {n: F.softmax(getattr(self, n).detach(), dim=-1) for n in self.arch_names}

    @abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def classify(self, features: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def genotype(self) -> Architecture: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
