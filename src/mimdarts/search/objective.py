"""Search objectives: the one loss used by BOTH the weight step and the α step.

An objective is an ``nn.Module`` (so extra heads, e.g. the MIM decoder, are trained with the
weights) with two methods:

- ``prepare(images, labels) -> PreparedBatch`` draws all randomness of a batch (masks,
  generated labels...) from the objective's own generator;
- ``loss(model, batch) -> LossResult`` is deterministic given the prepared batch, so the
  second-order architect can evaluate it at several weight points on the very same masks.

Objectives are registered by name in :data:`OBJECTIVES` (:mod:`mimdarts.search.catalog`, no
torch; re-exported here) and built by :func:`build_objective`.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ObjectiveConfig
from ..data import DatasetInfo
from ..spaces import Supernet
from .catalog import MASK_FIELDS as MASK_FIELDS  # `X as X`: re-exported from catalog.py (no torch)
from .catalog import OBJECTIVES as OBJECTIVES
from .catalog import ObjectiveSpec as ObjectiveSpec
from .catalog import check_objective as check_objective
from .catalog import register_objective as register_objective
from .decoder import ReconstructionDecoder
from .masking import (
    apply_mask,
    check_patching,
    mask_to_pixels,
    masked_patch_mse,
    pixel_fill,
    random_patch_mask,
)
from .pretext import JIGSAW_PERMUTATIONS, color_bins, color_labels, grayscale, jigsaw_batch, rotate_batch


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


class Masker:
    """Draws per-image random patch masks and fills the masked patches (see masking.py)."""

    def __init__(self, patch_size: int, mask_ratio: float, fill: float | tuple[float, ...],
                 image_size: int) -> None:
        self.num_patches = check_patching(image_size, patch_size, mask_ratio)
        self.patch_size, self.mask_ratio, self.fill = patch_size, mask_ratio, fill
        # a per-channel fill as a tensor per device, made once: a host-to-device copy per
        # batch would sync, and is not allowed inside a CUDA graph capture
        self._fill_on: dict[torch.device, torch.Tensor] = {}

    def _fill(self, device: torch.device) -> float | torch.Tensor:
        if not isinstance(self.fill, tuple):
            return self.fill
        if device not in self._fill_on:
            self._fill_on[device] = torch.tensor(self.fill, device=device)
        return self._fill_on[device]

    def __call__(self, x: torch.Tensor, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` ``[B, C, H, W]`` -> (masked images, bool mask ``[B, L]``, True = masked)."""
        mask = random_patch_mask(x.shape[0], self.num_patches, self.mask_ratio, generator, x.device)
        return apply_mask(x, mask, self.patch_size, self._fill(x.device)), mask

    @classmethod
    def from_config(cls, cfg: ObjectiveConfig, info: DatasetInfo) -> Masker:
        fill = (pixel_fill(cfg.mask_fill, info.mean, info.std) if cfg.mask_fill_space == "pixel"
                else cfg.mask_fill)
        return cls(cfg.patch_size, cfg.mask_ratio, fill, info.image_size)


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


class ReconstructionObjective(Objective):
    """Reconstruction through the MIM decoder, with or without classification and masking.

    - ``rec``: clean input, reconstruct every patch, no classifier (the decoder replaces it);
    - ``mim``: masked input, reconstruct the masked patches only;
    - ``mim-darts``: masked input, ``L_cls + λ L_rec`` (the paper's objective).
    The target is always the clean (augmented, normalised) image.
    """

    def __init__(self, model: Supernet, info: DatasetInfo, seed: int = 0,
                 device: torch.device | str = "cpu", masker: Masker | None = None,
                 classify: bool = True, aux_weight: float = 0.0, patch_size: int = 8,
                 merge_decoder_convs: bool = True) -> None:
        super().__init__(seed, device)
        self.decoder = ReconstructionDecoder(model.feature_channels, model.feature_stride,
                                             info.pixel_range, merge_decoder_convs)
        self.masker = masker
        self.classify = self.classifies = classify
        self.aux_weight = aux_weight
        self.patch_size = masker.patch_size if masker else patch_size
        self.info = info

    def prepare(self, images, labels, generator=None):
        if self.masker is None:  # clean reconstruction: every patch is a target
            L = (images.shape[2] // self.patch_size) * (images.shape[3] // self.patch_size)
            mask = torch.ones(images.shape[0], L, dtype=torch.bool, device=images.device)
            return PreparedBatch(images, labels, {"target": images, "mask": mask})
        masked, mask = self.masker(images, generator or self.generator)
        return PreparedBatch(masked, labels, {"target": images, "mask": mask})

    def loss(self, model: Supernet, batch: PreparedBatch) -> LossResult:
        feats = model.features(batch.inputs)
        recon = self.decoder(feats)
        rec = masked_patch_mse(recon, batch.extras["target"], batch.extras["mask"], self.patch_size)
        if not self.classify:
            return LossResult(rec, {"rec": rec.detach()})
        logits = model.classify(feats)
        ce = F.cross_entropy(logits, batch.labels)
        total, lam = balanced_sum(ce, rec, self.aux_weight)
        return LossResult(total, {"cls": ce.detach(), "rec": rec.detach(), "lambda": lam},
                          logits, batch.labels)

    @torch.no_grad()
    def snapshot_grid(self, model: Supernet, images: torch.Tensor, labels: torch.Tensor
                      ) -> torch.Tensor | None:
        """A grid ``[3, H', W']`` in [0, 1]: rows = input, what the net sees, reconstruction,
        reconstruction pasted into the masked patches. A fixed generator, eval mode: successive
        grids compare, and no random stream or BatchNorm statistic moves."""
        from torchvision.utils import make_grid

        was_training = model.training
        model.eval()
        self.eval()
        batch = self.prepare(images, labels, torch.Generator(images.device).manual_seed(0))
        recon = self.decoder(model.features(batch.inputs))
        pixels = mask_to_pixels(batch.extras["mask"], self.patch_size, images.shape[2],
                                images.shape[3])
        paste = torch.where(pixels, recon, images)
        mean = torch.tensor(self.info.mean, device=images.device)[:, None, None]
        std = torch.tensor(self.info.std, device=images.device)[:, None, None]
        rows = [(t.float() * std + mean).clamp(0, 1) for t in (images, batch.inputs, recon, paste)]
        model.train(was_training)
        self.train(was_training)
        return make_grid(torch.cat(rows), nrow=len(images), padding=1).cpu()


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


# The built-in objectives' factories, named in the registry (catalog.py) as
# "mimdarts.search.objective:make_..." so that listing them imports no torch.


def make_cls(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
             device: torch.device) -> Objective:
    return ClassificationObjective(seed, device)


def make_cls_masked(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                    device: torch.device) -> Objective:
    return ClassificationObjective(seed, device, Masker.from_config(cfg, info))


def make_rec(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
             device: torch.device) -> Objective:
    return ReconstructionObjective(model, info, seed, device, None, classify=False,
                                   patch_size=cfg.patch_size,
                                   merge_decoder_convs=cfg.merge_decoder_convs)


def make_mim(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
             device: torch.device) -> Objective:
    return ReconstructionObjective(model, info, seed, device, Masker.from_config(cfg, info),
                                   classify=False, merge_decoder_convs=cfg.merge_decoder_convs)


def make_mim_darts(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                   device: torch.device) -> Objective:
    return ReconstructionObjective(model, info, seed, device, Masker.from_config(cfg, info),
                                   classify=True, aux_weight=cfg.aux_weight,
                                   merge_decoder_convs=cfg.merge_decoder_convs)


def make_cls_rot(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                 device: torch.device) -> Objective:
    return PretextObjective("rot", model, info, seed, device, cfg.aux_weight)


def make_cls_col(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                 device: torch.device) -> Objective:
    return PretextObjective("col", model, info, seed, device, cfg.aux_weight)


def make_cls_jig(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                 device: torch.device) -> Objective:
    return PretextObjective("jig", model, info, seed, device, cfg.aux_weight)


def beta_regularizer(alphas: list[torch.Tensor], weight: float) -> torch.Tensor:
    """β-DARTS: ``weight * Σ_tensors mean_edges logsumexp_ops(α)`` (raw α, before softmax)."""
    return weight * sum(torch.logsumexp(a, dim=-1).mean() for a in alphas)


def build_objective(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                    device: torch.device | str = "cpu") -> Objective:
    """The objective named ``cfg.objective``, sized for ``model`` and ``info``, on ``device``."""
    factory = OBJECTIVES[cfg.objective].factory_fn()
    return factory(cfg, model, info, seed, torch.device(device)).to(device)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Number of correct top-1 predictions, as a device tensor (no host sync)."""
    return (logits.argmax(dim=1) == labels).sum()
