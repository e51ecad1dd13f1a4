"""The interface every search space's supernet implements.

The search loop, the objectives and the reports only use this interface, so a new space is
a new module plus one entry in :data:`mimdarts.spaces.SPACES`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from .architecture import Architecture


class Supernet(nn.Module, metaclass=ABCMeta):
    """Base class: α are registered parameters listed by name in ``alpha_names``.

    Subclasses define ``features`` (input -> last feature map before pooling),
    ``classify`` (feature map -> logits), ``genotype`` (α -> architecture) and set
    ``feature_channels`` / ``feature_stride`` (input size / feature-map size), which the
    reconstruction decoder of MIM needs.
    """

    space: str = ""
    alpha_names: tuple[str, ...] = ()
    op_names: tuple[str, ...] = ()  # the candidate op of each column of every α tensor
    feature_channels: int
    feature_stride: int

    def weight_parameters(self) -> list[nn.Parameter]:
        """Network weights w (everything that is not α), trained by SGD."""
        arch = set(self.alpha_names)
        return [p for n, p in self.named_parameters() if n not in arch]

    def alpha_parameters(self) -> list[nn.Parameter]:
        """Architecture parameters α, trained by Adam on the other half of the data."""
        return [getattr(self, n) for n in self.alpha_names]

    def alpha_weights(self) -> dict[str, torch.Tensor]:
        """softmax(α) over ops, per α tensor, detached."""
        return {n: F.softmax(getattr(self, n).detach(), dim=-1) for n in self.alpha_names}

    @abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def classify(self, features: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def genotype(self) -> Architecture: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
