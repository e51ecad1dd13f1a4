"""Masked image modeling: the patch masker, reconstruction through the MIM decoder, and the
paper's ``L_cls + λ L_rec`` with the balanced λ (:func:`~.base.balanced_sum`).

Registered in :mod:`mimdarts.search.catalog` as ``rec``, ``mim`` and ``mim-darts``; the
masker also serves ``cls-masked`` (:mod:`.classification`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...config import ObjectiveConfig
from ...data import DatasetInfo
from ...spaces import Supernet
from ..decoder import ReconstructionDecoder
from ..masking import (
    apply_mask,
    check_patching,
    mask_to_pixels,
    masked_patch_mse,
    pixel_fill,
    random_patch_mask,
)
from .base import LossResult, Objective, PreparedBatch, balanced_sum


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
        """The masker of ``cfg`` (patch size, ratio, fill) for ``info``'s images."""
        fill = (pixel_fill(cfg.mask_fill, info.mean, info.std) if cfg.mask_fill_space == "pixel"
                else cfg.mask_fill)
        return cls(cfg.patch_size, cfg.mask_ratio, fill, info.image_size)


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


# The factories named by the registrations in catalog.py ("mimdarts.search.objectives.mim:...").


def make_rec(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
             device: torch.device) -> Objective:
    """``rec``: reconstruct every patch of the clean image, no classifier."""
    return ReconstructionObjective(model, info, seed, device, None, classify=False,
                                   patch_size=cfg.patch_size,
                                   merge_decoder_convs=cfg.merge_decoder_convs)


def make_mim(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
             device: torch.device) -> Objective:
    """``mim``: reconstruct the masked patches only, no classifier."""
    return ReconstructionObjective(model, info, seed, device, Masker.from_config(cfg, info),
                                   classify=False, merge_decoder_convs=cfg.merge_decoder_convs)


def make_mim_darts(cfg: ObjectiveConfig, model: Supernet, info: DatasetInfo, seed: int,
                   device: torch.device) -> Objective:
    """``mim-darts``: ``L_cls + λ L_rec`` on masked images (the paper's objective)."""
    return ReconstructionObjective(model, info, seed, device, Masker.from_config(cfg, info),
                                   classify=True, aux_weight=cfg.aux_weight,
                                   merge_decoder_convs=cfg.merge_decoder_convs)
