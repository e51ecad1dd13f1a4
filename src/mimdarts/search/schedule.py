"""Learning-rate schedules as pure functions of the epoch."""

from __future__ import annotations

import math


def cosine_lr(epoch: int, epochs: int, lr_max: float, lr_min: float = 0.0) -> float:
    """Cosine annealing from ``lr_max`` at epoch 0 towards ``lr_min`` at epoch ``epochs``.

    The DARTS schedule: stepped once per epoch (``CosineAnnealingLR(T_max=epochs)``), so the
    last epoch runs slightly above ``lr_min``.
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be > 0, got {epochs}")
    t = min(max(epoch, 0), epochs) / epochs
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * t))
