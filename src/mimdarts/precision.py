"""Numeric precision of a run: the ``run.dtype`` setting and the autocast context it gives."""

from __future__ import annotations

import torch


def autocast_dtype(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a `run.dtype` setting, or None for plain fp32.

    ``auto`` is bf16 on CUDA and fp32 on CPU (CPU bf16 kernels are often slower than fp32).
    """
    if name == "bf16" or (name == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


def amp_context(device: torch.device | str, amp: torch.dtype | None,
                cache_enabled: bool = True) -> torch.autocast:
    """Autocast to ``amp`` on ``device``'s type, or a disabled context for plain fp32."""
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=amp or torch.float32, enabled=amp is not None,
                          cache_enabled=cache_enabled)
