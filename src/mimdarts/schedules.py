"""Learning-rate schedules as pure functions of the epoch (epoch counted from 0).

Each is stepped once per epoch, as in the DARTS and PC-DARTS code: the search uses
:func:`cosine_lr`; training maps its config's ``lr_schedule`` name to one of them through
:data:`LR_SCHEDULES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def cosine_lr(epoch: int, epochs: int, lr_max: float, lr_min: float = 0.0) -> float:
    """Cosine annealing from ``lr_max`` at epoch 0 towards ``lr_min`` at epoch ``epochs``.

    The DARTS schedule: stepped once per epoch (``CosineAnnealingLR(T_max=epochs)``), so the
    last epoch runs slightly above ``lr_min``.

    Examples:
        >>> cosine_lr(0, 50, 0.025, 0.001)
        0.025
        >>> round(cosine_lr(25, 50, 0.025, 0.001), 6), round(cosine_lr(49, 50, 0.025, 0.001), 6)
        (0.013, 0.001024)
    """
    if epochs <= 0:
        raise ValueError(f"epochs must be > 0, got {epochs}")
    t = min(max(epoch, 0), epochs) / epochs
    return lr_min + 0.5 * (lr_max - lr_min) * (1.0 + math.cos(math.pi * t))


# PC-DARTS's ImageNet script decays more gently over its last 5 epochs (at a fifth of the
# slope), where lr_max / (epochs - 5) would otherwise be large.
PCDARTS_TAIL = 5


def linear_warmup_lr(epoch: int, epochs: int, lr_max: float, warmup: int) -> float:
    """PC-DARTS's ImageNet schedule (its ``adjust_lr`` plus warm-up), epoch counted from 0.

    With ``T = epochs`` and ``t = min(5, T - 1)`` tail epochs: the rate falls linearly from
    ``lr_max`` at epoch 0 to ``lr_max / (T - t)`` at epoch ``T - t - 1``, then over the last
    ``t`` epochs as ``lr_max (T - e) / (t (T - t))`` (a fifth of the slope for t = 5). During
    the first ``warmup`` epochs that rate is scaled by ``(e + 1) / warmup``. For batch 1024,
    lr 0.5, 250 epochs: 0.1 at epoch 0, 0.29592 at epoch 100, 0.00041 at epoch 249.

    Examples:
        >>> linear_warmup_lr(0, 250, 0.5, warmup=5)
        0.1
        >>> round(linear_warmup_lr(100, 250, 0.5, 5), 5), round(linear_warmup_lr(249, 250, 0.5, 5), 5)
        (0.29592, 0.00041)
    """
    if not 0 <= warmup < epochs:
        raise ValueError(f"warmup must be in [0, epochs={epochs}), got {warmup}")
    e = min(max(epoch, 0), epochs - 1)
    tail = min(PCDARTS_TAIL, epochs - 1)
    if epochs - e > tail:
        lr = lr_max * (epochs - tail - e) / (epochs - tail)
    else:
        lr = lr_max * (epochs - e) / ((epochs - tail) * tail)
    if e < warmup:
        lr *= (e + 1) / warmup
    return lr


def exponential_lr(epoch: int, lr_max: float, gamma: float) -> float:
    """``lr_max * gamma ** epoch`` (DARTS's ImageNet recipe: 0.1, x0.97 per epoch).

    Examples:
        >>> round(exponential_lr(2, 0.1, 0.97), 5)
        0.09409
    """
    return lr_max * gamma ** max(epoch, 0)


LR_SCHEDULES: dict[str, Callable[[int, Any], float]] = {
    "cosine": lambda e, o: cosine_lr(e, o.epochs, o.lr, o.lr_min),
    "linear-warmup": lambda e, o: linear_warmup_lr(e, o.epochs, o.lr, o.warmup_epochs),
    "exponential": lambda e, o: exponential_lr(e, o.lr, o.lr_gamma),
}


def lr_at(epoch: int, optim_cfg: Any) -> float:
    """The learning rate of ``epoch`` under the config's ``lr_schedule``.

    Examples:
        >>> from types import SimpleNamespace
        >>> lr_at(1, SimpleNamespace(lr_schedule="exponential", lr=0.1, lr_gamma=0.97))
        0.097
    """
    return LR_SCHEDULES[optim_cfg.lr_schedule](epoch, optim_cfg)
