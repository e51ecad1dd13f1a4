"""Training found cells from scratch: evaluation networks, config, loop and export."""

from ..schedules import LR_SCHEDULES, lr_at
from .config import NB201_RECIPE, TRAIN_PRESETS, TrainConfig
from .loop import Trainer, TrainResult, build_network, build_trainer, evaluate, train, train_epoch
from .networks import (
    NETWORKS,
    NetworkCIFAR,
    NetworkImageNet,
    count_multiply_adds,
    count_parameters,
    drop_path,
    get_network,
    register_network,
)

__all__ = ["LR_SCHEDULES", "NB201_RECIPE", "NETWORKS", "TRAIN_PRESETS", "NetworkCIFAR",
           "NetworkImageNet", "TrainConfig", "TrainResult", "Trainer", "build_network",
           "build_trainer", "count_multiply_adds", "count_parameters", "drop_path", "evaluate",
           "get_network", "lr_at", "register_network", "train", "train_epoch"]
