"""The objective interface: the one loss used by BOTH the weight step and the α step.

An objective is an ``nn.Module`` (so extra heads, e.g. the MIM decoder, are trained with the
weights) with two methods:

- ``prepare(images, labels) -> PreparedBatch`` draws all randomness of a batch (masks,
  generated labels...) from the objective's own generator;
- ``loss(model, batch) -> LossResult`` is deterministic given the prepared batch, so the
  second-order architect can evaluate it at several weight points on the very same masks.

Objectives are registered by name in :data:`~mimdarts.search.catalog.OBJECTIVES` (no torch)
and built by :func:`build_objective`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

from ...config import ObjectiveConfig
from ...data import DatasetInfo
from ...spaces import Supernet
from ..catalog import OBJECTIVES


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

    classifies = True  # trains the supernet's classifier (False: reconstruction only)

    def __init__(self, seed: int = 0, device: torch.device | str = "cpu") -> None:
        super().__init__()
        # The objective's own random stream (masks, rotations...), on the training device so
        # that drawing a mask needs no host round trip; saved with checkpoints.
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def prepare(self, images: torch.Tensor, labels: torch.Tensor,
                generator: torch.Generator | None = None) -> PreparedBatch:
        """Draw this batch's randomness (from ``generator``, default the objective's own)."""
        return PreparedBatch(images, labels)

    def snapshot_grid(self, model: Supernet, images: torch.Tensor, labels: torch.Tensor
                      ) -> torch.Tensor | None:
        """A picture ``[3, H, W]`` in [0, 1] of what the objective does to ``images``, or
        None if there is nothing to show."""
        return None

    @abstractmethod
    def loss(self, model: Supernet, batch: PreparedBatch) -> LossResult: ...


def balanced_sum(main: torch.Tensor, aux: torch.Tensor, weight: float = 0.0
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``main + λ aux`` and λ. With ``weight == 0``, λ = main / aux per batch, detached, so
    both terms carry equal weight and no gradient flows through λ; else λ = ``weight``."""
    if weight > 0:
        lam = torch.full((), weight, device=main.device)
    else:
        # clamp: a perfect reconstruction (aux == 0) gives a large but finite λ times 0
        lam = main.detach() / aux.detach().clamp_min(1e-12)
    return main + lam * aux, lam


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Number of correct top-1 predictions, as a device tensor (no host sync)."""
    return (logits.argmax(dim=1) == labels).sum()


def build_objective(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                    device: torch.device | str = "cpu") -> Objective:
    """The objective named ``cfg.objective``, sized for ``model`` and ``info``, on ``device``."""
    factory = OBJECTIVES[cfg.objective].factory_fn()
    return factory(cfg, model, info, seed, torch.device(device)).to(device)
