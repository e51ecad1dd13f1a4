"""Where and how a run computes: device, CPU threads, seeding and numeric precision.

Shared by the search and the training loops (the process group lives in distributed.py).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch

from .errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a clear error for an absent GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def set_threads(threads: int) -> None:
    """torch's CPU threads; 0 keeps torch's default."""
    if threads:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_dtype(name: str, device: torch.device, bf16_on_cuda: bool = True) -> torch.dtype | None:
    """The autocast dtype for a `run.dtype` setting, or None for plain fp32.

    ``auto`` is bf16 on CUDA (``bf16_on_cuda``; a search passes False, see its caller) and
    fp32 on CPU (CPU bf16 kernels are often slower than fp32). bf16 rounds: second order
    computes its α gradient in fp32 whatever this returns
    (mimdarts.search.architect.FP32_PASSES; the figures are in docs/speed.md).
    """
    if name == "bf16" or (name == "auto" and device.type == "cuda" and bf16_on_cuda):
        return torch.bfloat16
    return None


@contextlib.contextmanager
def exact_fp32(device: torch.device | str) -> Iterator[None]:
    """fp32 that is fp32: autocast off and, on CUDA, no TF32 (cuDNN convolutions use TF32 by
    default, 10 bits of mantissa: too coarse for the finite differences of second order)."""
    kind = torch.device(device).type
    with torch.autocast(kind, enabled=False):
        if kind != "cuda":
            yield
            return
        matmul = torch.backends.cuda.matmul.allow_tf32
        conv = torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, conv


def amp_context(device: torch.device | str, amp: torch.dtype | None,
                cache_enabled: bool = True) -> torch.autocast:
    """Autocast to ``amp`` on ``device``'s type, or a disabled context for plain fp32."""
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=amp or torch.float32, enabled=amp is not None,
                          cache_enabled=cache_enabled)
