"""Learning-rate schedules of the training recipes, as pure functions of the epoch.

Each is stepped once per epoch (epoch counted from 0), as in the DARTS and PC-DARTS code.
:data:`LR_SCHEDULES` maps the config's ``lr_schedule`` name to ``f(epoch, optim_cfg)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..search.schedule import cosine_lr


def linear_warmup_lr(epoch: int, epochs: int, lr_max: float, warmup: int) -> float:
    """Linear warm-up to ``lr_max`` over ``warmup`` epochs, then linear decay towards 0.

    Epoch ``e < warmup`` runs at ``lr_max * (e + 1) / warmup``; from ``warmup`` on, the rate
    falls linearly from ``lr_max`` and would reach 0 at epoch ``epochs``, so the last epoch
    runs at ``lr_max / (epochs - warmup)``. (PC-DARTS's ImageNet recipe, batch 1024, lr 0.5.)
    """
    if not 0 <= warmup < epochs:
        raise ValueError(f"warmup must be in [0, epochs={epochs}), got {warmup}")
    e = min(max(epoch, 0), epochs)
    if e < warmup:
        return lr_max * (e + 1) / warmup
    return lr_max * (epochs - e) / (epochs - warmup)


def exponential_lr(epoch: int, lr_max: float, gamma: float) -> float:
    """``lr_max * gamma ** epoch`` (DARTS's ImageNet recipe: 0.1, x0.97 per epoch)."""
    return lr_max * gamma ** max(epoch, 0)


LR_SCHEDULES: dict[str, Callable[[int, Any], float]] = {
    "cosine": lambda e, o: cosine_lr(e, o.epochs, o.lr, o.lr_min),
    "linear-warmup": lambda e, o: linear_warmup_lr(e, o.epochs, o.lr, o.warmup_epochs),
    "exponential": lambda e, o: exponential_lr(e, o.lr, o.lr_gamma),
}


def lr_at(epoch: int, optim_cfg: Any) -> float:
    """The learning rate of ``epoch`` under the config's ``lr_schedule``."""
    return LR_SCHEDULES[optim_cfg.lr_schedule](epoch, optim_cfg)
