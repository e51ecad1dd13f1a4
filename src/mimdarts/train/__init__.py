"""Training found cells from scratch: evaluation networks, config, loop and export.

``mimdarts.train(preset=..., genotype=..., **overrides)`` runs a training
(:func:`mimdarts.api.train`). The config and presets import no torch; the rest imports it
on first use, so ``mimdarts presets`` stays fast.
"""

from .._lazy import lazy_package
from ..schedules import LR_SCHEDULES, lr_at
from .config import NB201_RECIPE, TRAIN_PRESETS, TrainConfig

_EXPORTS = {
    "TrainResult": ".loop", "Trainer": ".loop", "build_network": ".loop",
    "build_trainer": ".loop", "evaluate": ".loop", "train": ".loop", "train_epoch": ".loop",
    "NETWORKS": ".networks", "NetworkCIFAR": ".networks", "NetworkImageNet": ".networks",
    "count_multiply_adds": ".networks", "count_parameters": ".networks",
    "drop_path": ".networks", "get_network": ".networks", "register_network": ".networks",
}
__getattr__ = lazy_package(__name__, _EXPORTS, call="mimdarts.api:train")
__all__ = ["LR_SCHEDULES", "NB201_RECIPE", "NETWORKS", "TRAIN_PRESETS", "NetworkCIFAR",  # noqa: F822
           "NetworkImageNet", "TrainConfig", "TrainResult", "Trainer", "build_network",
           "build_trainer", "count_multiply_adds", "count_parameters", "drop_path", "evaluate",
           "get_network", "lr_at", "register_network", "train", "train_epoch"]
