"""The self-supervised baselines (paper Table 6): classification plus a generated-label
task, rotation (``cls-rot``), colorization (``cls-col``) or jigsaw (``cls-jig``), registered
in :mod:`mimdarts.search.catalog`. The tasks' transforms and labels are in
:mod:`mimdarts.search.pretext`."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...config import ObjectiveConfig
from ...data import DatasetInfo
from ...spaces import Supernet
from ..pretext import JIGSAW_PERMUTATIONS, color_bins, color_labels, grayscale, jigsaw_batch, rotate_batch
from .base import LossResult, Objective, PreparedBatch, balanced_sum


class PretextObjective(Objective):
    """``L_cls + λ L_task``: classification plus a generated-label task on the same forward
    pass of the transformed image (one extra head, trained with the weights).

    ``task`` is ``rot`` (4-way rotation), ``jig`` (24-way 2x2 jigsaw) or ``col`` (colour bin
    of each feature-map cell, input in grayscale).
    """

    def __init__(self, task: str, model: Supernet, info: DatasetInfo, seed: int = 0,
                 device: torch.device | str = "cpu", aux_weight: float = 0.0) -> None:
        super().__init__(seed, device)
        self.task = task
        self.aux_weight = aux_weight
        self.info = info
        self.cell = model.feature_stride
        C = model.feature_channels
        if task == "col":  # dense: one colour-bin prediction per feature-map cell
            self.head: nn.Module = nn.Conv2d(C, len(color_bins()), 1)
        else:
            self.head = nn.Linear(C, 4 if task == "rot" else len(JIGSAW_PERMUTATIONS))
        self.register_buffer("mean", torch.tensor(info.mean)[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(info.std)[:, None, None], persistent=False)

    def prepare(self, images, labels, generator=None):
        g = generator or self.generator
        B = images.shape[0]
        if self.task == "rot":
            k = torch.randint(0, 4, (B,), generator=g, device=images.device)
            return PreparedBatch(rotate_batch(images, k), labels, {"task": k})
        if self.task == "jig":
            j = torch.randint(0, len(JIGSAW_PERMUTATIONS), (B,), generator=g, device=images.device)
            return PreparedBatch(jigsaw_batch(images, j), labels, {"task": j})
        rgb = (images * self.std + self.mean).clamp(0, 1)
        gray = (grayscale(rgb) - self.mean) / self.std
        return PreparedBatch(gray, labels, {"task": color_labels(rgb, self.cell)})

    def loss(self, model: Supernet, batch: PreparedBatch) -> LossResult:
        feats = model.features(batch.inputs)
        logits = model.classify(feats)
        ce = F.cross_entropy(logits, batch.labels)
        task_in = feats if self.task == "col" else feats.mean(dim=(2, 3))
        task_loss = F.cross_entropy(self.head(task_in), batch.extras["task"])
        total, lam = balanced_sum(ce, task_loss, self.aux_weight)
        return LossResult(total, {"cls": ce.detach(), self.task: task_loss.detach(), "lambda": lam},
                          logits, batch.labels)


# The factories named by the registrations in catalog.py
# ("mimdarts.search.objectives.selfsupervised:...").


def make_cls_rot(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                 device: torch.device) -> Objective:
    """``cls-rot``: cross-entropy + λ 4-way rotation classification."""
    return PretextObjective("rot", model, info, seed, device, cfg.aux_weight)


def make_cls_col(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                 device: torch.device) -> Objective:
    """``cls-col``: cross-entropy on grayscale input + λ colour-bin classification."""
    return PretextObjective("col", model, info, seed, device, cfg.aux_weight)


def make_cls_jig(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                 device: torch.device) -> Objective:
    """``cls-jig``: cross-entropy + λ 24-way 2x2 jigsaw classification."""
    return PretextObjective("jig", model, info, seed, device, cfg.aux_weight)
