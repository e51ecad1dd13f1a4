"""Patch masking for MIM, as small pure functions (shapes in the docstrings).

Notation: images ``[B, C, H, W]``, patch side ``P``, ``L = (H / P) * (W / P)`` patches per
image in row-major order. A mask is bool ``[B, L]`` with True = masked (hidden from the net).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError


def check_patching(image_size: int, patch_size: int, mask_ratio: float) -> int:
    """Validate (P, r) for square images; return the number of patches L.

    Examples:
        >>> check_patching(32, 8, 0.6)
        16
    """
    if patch_size < 1 or image_size % patch_size:
        raise ConfigError(f"patch_size={patch_size} must divide the image size {image_size} "
                          f"(e.g. one of {[p for p in (2, 4, 8, 16) if image_size % p == 0]})")
    if not 0.0 < mask_ratio < 1.0:
        raise ConfigError(f"mask_ratio must be strictly between 0 and 1, got {mask_ratio}")
    n = (image_size // patch_size) ** 2
    keep = int(n * (1.0 - mask_ratio))  # the rule of random_patch_mask
    if keep == 0:  # (keep == n would need r = 0, refused above)
        raise ConfigError(f"patch_size={patch_size} and mask_ratio={mask_ratio} mask all {n} "
                          f"patches of a {image_size}x{image_size} image: nothing is left "
                          f"visible; choose mask_ratio <= {1 - 1 / n:g} for this patch size, or "
                          "a smaller patch")
    return n


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """``[B, C, H, W] -> [B, L, P*P*C]``, patches in row-major order, pixels (P, P, C).

    Examples:
        >>> x = torch.arange(16.0).reshape(1, 1, 4, 4)
        >>> patchify(x, 2)[0]
        tensor([[ 0.,  1.,  4.,  5.],
                [ 2.,  3.,  6.,  7.],
                [ 8.,  9., 12., 13.],
                [10., 11., 14., 15.]])
        >>> torch.equal(unpatchify(patchify(x, 2), 2, C=1, H=4, W=4), x)
        True
    """
    B, C, H, W = x.shape
    h, w = H // p, W // p
    x = x.reshape(B, C, h, p, w, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, p * p * C)


def unpatchify(patches: torch.Tensor, p: int, C: int, H: int, W: int) -> torch.Tensor:
    """``[B, L, P*P*C] -> [B, C, H, W]``; the inverse of :func:`patchify`."""
    B = patches.shape[0]
    h, w = H // p, W // p
    x = patches.reshape(B, h, w, p, p, C)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(B, C, H, W)


def random_patch_mask(batch: int, num_patches: int, mask_ratio: float,
                      generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-image random masks: bool ``[B, L]``, True = masked.

    Each image keeps ``floor(L * (1 - r))`` patches chosen uniformly without replacement
    (the authors' rule; P=8, r=0.6 on 32x32 masks 10 of 16) and masks the rest.

    Examples:
        >>> mask = random_patch_mask(2, 16, 0.6, torch.Generator().manual_seed(0))
        >>> mask.shape, mask.sum(dim=1).tolist()
        (torch.Size([2, 16]), [10, 10])
    """
    keep = int(num_patches * (1.0 - mask_ratio))
    noise = torch.rand(batch, num_patches, generator=generator, device=device)
    # The `keep` patches with the smallest noise stay visible: a uniform random subset.
    kept = noise.argsort(dim=1)[:, :keep]
    mask = torch.ones(batch, num_patches, dtype=torch.bool, device=device)
    return mask.scatter(1, kept, False)


def mask_to_pixels(mask: torch.Tensor, p: int, H: int, W: int) -> torch.Tensor:
    """bool ``[B, L] -> [B, 1, H, W]``: every pixel of a masked patch is True."""
    B = mask.shape[0]
    grid = mask.reshape(B, 1, H // p, W // p)
    return grid.repeat_interleave(p, dim=2).repeat_interleave(p, dim=3)


def apply_mask(x: torch.Tensor, mask: torch.Tensor, p: int,
               fill: float | torch.Tensor) -> torch.Tensor:
    """Replace the masked patches of ``x`` ``[B, C, H, W]`` by ``fill``: one constant, or one
    value per channel (a ``[C]`` tensor on ``x``'s device).

    Examples:
        >>> mask = torch.tensor([[True, False, False, True]])  # 4 patches of 2x2, row-major
        >>> apply_mask(torch.zeros(1, 1, 4, 4), mask, 2, fill=1.0)[0, 0]
        tensor([[1., 1., 0., 0.],
                [1., 1., 0., 0.],
                [0., 0., 1., 1.],
                [0., 0., 1., 1.]])
    """
    pixels = mask_to_pixels(mask, p, x.shape[2], x.shape[3])
    if isinstance(fill, torch.Tensor):
        value = fill.to(x.dtype).reshape(1, -1, 1, 1)
    else:
        value = torch.full((), fill, dtype=x.dtype, device=x.device)
    return torch.where(pixels, value, x)


def pixel_fill(value: float, mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[float, ...]:
    """The normalised per-channel fill of the pixel value ``value`` (in [0, 1]; 0 = black).

    Examples:
        >>> pixel_fill(0.0, mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 0.5))
        (-2.0, -1.0, -1.0)
    """
    return tuple((value - m) / s for m, s in zip(mean, std))


def masked_patch_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     p: int) -> torch.Tensor:
    """Reconstruction loss: squared error averaged within each patch, then over masked patches.

    ``pred``, ``target``: ``[B, C, H, W]``; ``mask``: bool ``[B, L]`` (all True = every patch
    counts, for clean-image reconstruction). Predictions on visible patches do not matter.

    Examples:
        >>> target = torch.zeros(1, 1, 4, 4)
        >>> target[..., :2, :2] = 2.0  # patch 0 off by 2: squared error 4 in each pixel
        >>> mask = torch.tensor([[True, False, False, True]])
        >>> masked_patch_mse(torch.zeros(1, 1, 4, 4), target, mask, 2)  # patches 0 and 3
        tensor(2.)
        >>> masked_patch_mse(torch.zeros(1, 1, 4, 4), target, torch.ones(1, 4, dtype=torch.bool), 2)
        tensor(1.)
    """
    # in fp32 even under autocast: squared errors of bf16 values lose too many digits
    per_patch = (patchify(pred.float(), p) - patchify(target.float(), p)).pow(2).mean(dim=-1)
    m = mask.to(per_patch.dtype)
    # clamp: a mask with no masked patch (impossible for 0 < r < 1) must not divide by zero
    return (per_patch * m).sum() / m.sum().clamp_min(1.0)
