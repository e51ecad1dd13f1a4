"""Generated-label tasks of the self-supervised baselines (paper Table 6).

Each task turns a normalised batch ``[B, 3, H, W]`` into the network input and a label:
rotation (4-way, per image), jigsaw (24-way permutation of a 2x2 grid, per image) and
colorization (quantised ab colour bin, per feature-map cell).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import torch
import torch.nn.functional as F

JIGSAW_PERMUTATIONS: tuple[tuple[int, ...], ...] = tuple(itertools.permutations(range(4)))


def rotate_batch(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Rotate image i of ``x`` ``[B, C, S, S]`` by ``k[i] * 90`` degrees counter-clockwise."""
    if x.shape[2] != x.shape[3]:
        raise ValueError(f"rotation needs square images, got {tuple(x.shape[2:])}")
    rots = torch.stack([torch.rot90(x, r, dims=(2, 3)) for r in range(4)])  # [4, B, C, S, S]
    return rots[k, torch.arange(x.shape[0], device=x.device)]


def jigsaw_batch(x: torch.Tensor, perm_index: torch.Tensor) -> torch.Tensor:
    """Shuffle the 2x2 tiles of each image: tile slot j of image i shows original tile
    ``JIGSAW_PERMUTATIONS[perm_index[i]][j]`` (tiles in row-major order).
    ``x``: ``[B, C, H, W]`` with even H, W -> same shape."""
    B, C, H, W = x.shape
    h, w = H // 2, W // 2
    tiles = x.reshape(B, C, 2, h, 2, w).permute(0, 2, 4, 1, 3, 5).reshape(B, 4, C, h, w)
    perms = constant(JIGSAW_PERMUTATIONS, x.device)[perm_index]  # [B, 4]
    shuffled = tiles[torch.arange(B, device=x.device)[:, None], perms]
    return shuffled.reshape(B, 2, 2, C, h, w).permute(0, 3, 1, 4, 2, 5).reshape(B, C, H, W)


# ------------------------------------------------------------------ colour


@lru_cache(maxsize=64)
def constant(values: tuple, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A small constant tensor made once per device and dtype: no host-to-device copy per
    batch (none inside a CUDA graph capture, which forbids them)."""
    return torch.tensor(values, device=device, dtype=dtype)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] ``[..., 3]`` -> CIE Lab (D65) ``[..., 3]``: L in [0, 100], a/b ~ ±110."""
    lin = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = constant(((0.412453, 0.357580, 0.180423),
                  (0.212671, 0.715160, 0.072169),
                  (0.019334, 0.119193, 0.950227)), rgb.device, rgb.dtype)
    xyz = (lin @ m.T) / constant((0.950456, 1.0, 1.088754), rgb.device, rgb.dtype)
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]),
                        200 * (f[..., 1] - f[..., 2])], dim=-1)


@lru_cache(maxsize=1)
def color_bins(step: float = 10.0) -> torch.Tensor:
    """Centres ``[K, 2]`` of the ab grid cells (side ``step``) reached by some sRGB colour.

    Zhang et al. quantise ab into the 313 in-gamut cells of their gamut; computed on the sRGB
    cube (128 levels per channel) with nearest-centre rounding this gives 262 cells.
    """
    v = torch.linspace(0, 1, 128, dtype=torch.float64)
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij"), dim=-1).reshape(-1, 3)
    cells = torch.unique(torch.round(rgb_to_lab(rgb)[:, 1:] / step), dim=0)
    return (cells * step).float()


@lru_cache(maxsize=8)
def _bins_on(device: torch.device) -> torch.Tensor:
    return color_bins().to(device)


def color_labels(rgb: torch.Tensor, cell: int) -> torch.Tensor:
    """Quantised colour of each ``cell x cell`` block: ``[B, 3, H, W]`` in [0, 1] ->
    int64 ``[B, H / cell, W / cell]`` indices into :func:`color_bins`."""
    ab = rgb_to_lab(F.avg_pool2d(rgb, cell).permute(0, 2, 3, 1))[..., 1:]  # [B, h, w, 2]
    bins = _bins_on(rgb.device)
    dist = (ab.unsqueeze(-2) - bins).pow(2).sum(-1)  # [B, h, w, K]
    return dist.argmin(dim=-1)


def grayscale(rgb: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` in [0, 1] -> luminance replicated on 3 channels (Rec. 601 weights)."""
    w = constant((0.299, 0.587, 0.114), rgb.device, rgb.dtype)
    return (rgb * w[:, None, None]).sum(1, keepdim=True).expand_as(rgb)
