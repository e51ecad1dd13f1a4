"""Classification: cross-entropy on clean images (``cls``, plain DARTS) or on masked ones
(``cls-masked``, the masked-input ablation), registered in :mod:`mimdarts.search.catalog`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...config import ObjectiveConfig
from ...data import DatasetInfo
from ...spaces import Supernet
from .base import LossResult, Objective, PreparedBatch
from .mim import Masker


class ClassificationObjective(Objective):
    """Cross-entropy: on clean images (``cls``, plain DARTS) or masked ones (``cls-masked``)."""

    def __init__(self, seed: int = 0, device: torch.device | str = "cpu",
                 masker: Masker | None = None) -> None:
        super().__init__(seed, device)
        self.masker = masker

    def prepare(self, images, labels, generator=None):
        if self.masker is None:
            return PreparedBatch(images, labels)
        masked, mask = self.masker(images, generator or self.generator)
        return PreparedBatch(masked, labels, {"mask": mask})

    def loss(self, model: Supernet, batch: PreparedBatch) -> LossResult:
        logits = model(batch.inputs)
        ce = F.cross_entropy(logits, batch.labels)
        return LossResult(ce, {"cls": ce.detach()}, logits, batch.labels)


# The factories named by the registrations in catalog.py
# ("mimdarts.search.objectives.classification:...").


def make_cls(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
             device: torch.device) -> Objective:
    """``cls``: cross-entropy on clean images (DARTS)."""
    return ClassificationObjective(seed, device)


def make_cls_masked(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                    device: torch.device) -> Objective:
    """``cls-masked``: cross-entropy on images masked as MIM-DARTS masks them."""
    return ClassificationObjective(seed, device, Masker.from_config(cfg, info))
