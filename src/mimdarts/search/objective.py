"""Search objectives: the one loss used by BOTH the weight step and the α step.

An objective is an ``nn.Module`` (so extra heads, e.g. the MIM decoder, are trained with the
weights) with two methods:

- ``prepare(images, labels) -> PreparedBatch`` draws all randomness of a batch (masks,
  generated labels...) from the objective's own generator;
- ``loss(model, batch) -> LossResult`` is deterministic given the prepared batch, so the
  second-order architect can evaluate it at several weight points on the very same masks.

Objectives are registered by name in :data:`OBJECTIVES` and built by :func:`build_objective`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ObjectiveConfig
from ..data import DatasetInfo
from ..errors import ConfigError
from ..spaces import Supernet


@dataclass
class PreparedBatch:
    """A batch after the objective's random transformation.

    ``inputs``: what the network sees ``[B, 3, H, W]``; ``labels``: class labels ``[B]``;
    ``extras``: objective-specific tensors (reconstruction target, mask, task labels...).
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class LossResult:
    """``loss``: the scalar to differentiate. ``terms``: detached scalars to log (no sync).
    ``logits`` / ``labels``: for classification accuracy, when the objective classifies."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None


class Objective(nn.Module, metaclass=ABCMeta):
    """Base class. Subclasses override :meth:`loss` and, if they randomise, :meth:`prepare`."""

    def __init__(self, seed: int = 0, device: torch.device | str = "cpu") -> None:
        super().__init__()
        # The objective's own random stream (masks, rotations...), on the training device so
        # that drawing a mask needs no host round trip; saved with checkpoints.
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def prepare(self, images: torch.Tensor, labels: torch.Tensor) -> PreparedBatch:
        return PreparedBatch(images, labels)

    @abstractmethod
    def loss(self, model: Supernet, batch: PreparedBatch) -> LossResult: ...


class ClassificationObjective(Objective):
    """Cross-entropy on clean images: the plain DARTS objective (``cls``)."""

    def loss(self, model: Supernet, batch: PreparedBatch) -> LossResult:
        logits = model(batch.inputs)
        ce = F.cross_entropy(logits, batch.labels)
        return LossResult(ce, {"cls": ce.detach()}, logits, batch.labels)


# factory(cfg, model, info, seed, device) -> Objective
ObjectiveFactory = Callable[[ObjectiveConfig, Supernet, DatasetInfo, int, torch.device], Objective]
OBJECTIVES: dict[str, tuple[str, ObjectiveFactory]] = {}


def register_objective(name: str, description: str) -> Callable[[ObjectiveFactory], ObjectiveFactory]:
    """Register ``factory(cfg, model, info, seed, device) -> Objective`` under ``name``."""
    def deco(factory: ObjectiveFactory) -> ObjectiveFactory:
        if name in OBJECTIVES:
            raise ValueError(f"objective {name!r} registered twice")
        OBJECTIVES[name] = (description, factory)
        return factory
    return deco


register_objective("cls", "DARTS: cross-entropy on clean images")(
    lambda cfg, model, info, seed, device: ClassificationObjective(seed, device))


def check_objective(name: str) -> None:
    if name not in OBJECTIVES:
        raise ConfigError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}")


def build_objective(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                    device: torch.device | str = "cpu") -> Objective:
    """The objective named ``cfg.objective``, sized for ``model`` and ``info``, on ``device``."""
    check_objective(cfg.objective)
    return OBJECTIVES[cfg.objective][1](cfg, model, info, seed, torch.device(device)).to(device)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Number of correct top-1 predictions, as a device tensor (no host sync)."""
    return (logits.argmax(dim=1) == labels).sum()
