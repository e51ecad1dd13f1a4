"""The configuration of a from-scratch training run (``mimdarts train``).

A frozen :class:`TrainConfig` with four sections (data, model, optim, run), on the same
generic machinery as the search config (:mod:`mimdarts.config`): every field is a flat
command-line flag, presets live in :data:`TRAIN_PRESETS`. Defaults are the DARTS CIFAR-10
evaluation protocol (600 epochs, batch 96, C=36, 20 cells, DARTS_V2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config import (
    DATASETS,
    IO,
    RESOURCES,
    RESULT,
    PresetRegistry,
    RootConfig,
    RunConfig,
    check,
    register_preset,
    setting,
)
from ..registry import Registry

LR_SCHEDULE_NAMES = ("cosine", "linear-warmup", "exponential")


@dataclass(frozen=True)
class TrainDataConfig:
    """Images, augmentation and how many are used."""

    dataset: str = setting(
        "cifar10", RESULT, "the images; cifar10-sample is the bundled real subset, synthetic-cifar10 random "
        "images of CIFAR-10's size and count (for timing a full-size run only: nothing to learn in them)")
    data_dir: str = setting(
        "data", IO, "torchvision's CIFAR files, or an ImageNet folder with train/ and val/")
    download: bool = setting(True, IO, "let torchvision download CIFAR when the files are missing")
    train_images: int = setting(0, RESULT, "train on the first N images of a seeded permutation; 0 = all")
    test_images: int = setting(0, RESULT, "evaluate on the first N test images (in order); 0 = all")
    image_size: int = setting(32, RESULT, "network input side: 32 for CIFAR, 224 for ImageNet")
    cutout: int = setting(16, RESULT, "side of the cutout square (CIFAR, on the device); 0 disables")
    color_jitter: float = setting(
        0.0, RESULT, "ImageNet: ColorJitter(j, j, j, j / 2) after the crop; 0 disables")
    test_split: str = setting("val", RESULT, "ImageNet folder holding the evaluation images")
    workers: int = setting(8, RESOURCES, "ImageNet loader worker processes")
    skip_bad_images: bool = setting(
        False, RESULT, "ImageNet folders: an unreadable image file stops the run with its name (false), or "
        "is skipped with a warning naming it and replaced by the next image (true)")

    def __post_init__(self) -> None:
        check(self.dataset in DATASETS,
              f"dataset {self.dataset!r} is not known; choose one of {', '.join(DATASETS)}")
        check(self.train_images >= 0, f"train_images must be >= 0 (0 = all), got {self.train_images}")
        check(self.test_images >= 0, f"test_images must be >= 0 (0 = all), got {self.test_images}")
        check(self.image_size >= 8, f"image_size must be >= 8 pixels, got {self.image_size}")
        check(self.cutout >= 0, f"cutout must be >= 0 (0 disables), got {self.cutout}")
        check(0 <= self.color_jitter <= 1, f"color_jitter must be in [0, 1], got {self.color_jitter}")
        check(self.workers >= 0, f"workers must be >= 0, got {self.workers}")


@dataclass(frozen=True)
class TrainModelConfig:
    """Which network, built from which found cell, at which size."""

    network: str = setting(
        "darts-cifar", RESULT, "the evaluation network, one of mimdarts.train.networks.NETWORKS: "
        "darts-cifar, darts-imagenet (DARTS cells) or nb201 (NAS-Bench-201 cells)")
    genotype: str = setting(
        "DARTS_V2", RESULT, "a name, a genotype JSON/text file, a search run folder or text")
    channels: int = setting(36, RESULT, "C: channels of the first cell")
    layers: int = setting(20, RESULT, "cells")
    auxiliary: bool = setting(True, RESULT, "build the auxiliary head (trained with aux_weight)")

    def __post_init__(self) -> None:
        check(bool(self.genotype.strip()), "genotype must not be empty")
        check(self.channels >= 1, f"channels must be >= 1, got {self.channels}")
        check(self.layers >= 3 or not self.network.startswith("darts"),
              f"layers must be >= 3 for a DARTS network (two of them reduce), got {self.layers}")
        check(self.layers >= 1, f"layers must be >= 1, got {self.layers}")


@dataclass(frozen=True)
class TrainOptimConfig:
    """SGD with momentum, a per-epoch schedule and the regularisers of the DARTS protocol."""

    epochs: int = setting(600, RESULT, "passes over the training split")
    batch_size: int = setting(96, RESULT, "global batch: split evenly across processes when distributed")
    lr: float = setting(0.025, RESULT, "learning rate at the schedule's peak")
    lr_schedule: str = setting("cosine", RESULT, "cosine, linear-warmup (PC-DARTS ImageNet) or exponential")
    lr_min: float = setting(0.0, RESULT, "cosine floor")
    warmup_epochs: int = setting(
        0, RESULT, "linear-warmup: first epochs whose rate is scaled by (e + 1) / warmup")
    lr_gamma: float = setting(0.97, RESULT, "exponential: factor per epoch")
    momentum: float = setting(0.9, RESULT, "SGD momentum")
    nesterov: bool = setting(False, RESULT, "Nesterov momentum (the NAS-Bench-201 recipe)")
    weight_decay: float = setting(3e-4, RESULT, "L2 on every weight")
    grad_clip: float = setting(5.0, RESULT, "max global L2 norm of the gradient; 0 disables")
    aux_weight: float = setting(0.4, RESULT, "weight of the auxiliary head's loss")
    label_smoothing: float = setting(0.0, RESULT, "of the cross-entropy targets (ImageNet recipes: 0.1)")
    drop_path: float = setting(
        0.2, RESULT, "final drop-path probability, ramped linearly from 0 over the epochs")

    def __post_init__(self) -> None:
        check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(self.lr_schedule in LR_SCHEDULE_NAMES,
              f"lr_schedule {self.lr_schedule!r} is not known; choose one of "
              f"{', '.join(LR_SCHEDULE_NAMES)}")
        check(0 <= self.lr_min <= self.lr, f"lr_min must be in [0, lr={self.lr}], got {self.lr_min}")
        check(0 <= self.warmup_epochs < self.epochs,
              f"warmup_epochs must be in [0, epochs={self.epochs}), got {self.warmup_epochs}")
        check(0 < self.lr_gamma <= 1, f"lr_gamma must be in (0, 1], got {self.lr_gamma}")
        check(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        check(not self.nesterov or self.momentum > 0, "nesterov needs momentum > 0")
        check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        check(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 disables), got {self.grad_clip}")
        check(self.aux_weight >= 0, f"aux_weight must be >= 0, got {self.aux_weight}")
        check(0 <= self.label_smoothing < 1,
              f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        check(0 <= self.drop_path < 1, f"drop_path must be in [0, 1), got {self.drop_path}")


@dataclass(frozen=True)
class TrainConfig(RootConfig):
    """Everything that defines one training run of a found cell."""

    data: TrainDataConfig = field(default_factory=TrainDataConfig)
    model: TrainModelConfig = field(default_factory=TrainModelConfig)
    optim: TrainOptimConfig = field(default_factory=TrainOptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    preset: str = ""  # the preset this config started from (informational)


# ---------------------------------------------------------------- presets

TRAIN_PRESETS: PresetRegistry = Registry("preset")
TrainConfig.preset_registry = TRAIN_PRESETS


def _register(name: str, description: str, overrides: dict[str, Any]) -> None:
    register_preset(name, description, overrides, registry=TRAIN_PRESETS)


# What `mimdarts train` and `mimdarts.train()` run with no preset and no config file.
DEFAULT_TRAIN_PRESET = "train-quick"

# The DARTS CIFAR protocol is the default config; the presets name it and its variants.
_register("cifar10", "paper protocol: CIFAR-10, 600 epochs, batch 96, SGD 0.025 cosine, wd 3e-4, "
          "cutout 16, drop-path 0.2, aux 0.4, C=36, 20 cells", {})
# CIFAR-100: the MIM-DARTS authors' training script keeps wd 3e-4 (it has no CIFAR-100
# override), so the paper's CIFAR-100 figures come from 3e-4; follow-ups of DARTS often use
# 5e-4 there (`--weight-decay 5e-4` for that comparison).
_register("cifar100", "paper protocol on CIFAR-100 (as cifar10, wd 3e-4 as in the authors' script)",
          {"data": {"dataset": "cifar100"}})

_IMAGENET_MODEL = {"network": "darts-imagenet", "channels": 48, "layers": 14}
_IMAGENET_DATA = {"dataset": "imagenet", "image_size": 224, "cutout": 0}
# The paper's Table 5 follows PC-DARTS's ImageNet recipe; the authors' ImageNet script leaves
# the auxiliary head off (its default; PC-DARTS's README turns it on), so this preset does too.
_register("imagenet-pcdarts", "paper's Table 5 recipe (PC-DARTS): ImageNet mobile, C=48, 14 cells, "
          "batch 1024, lr 0.5, 5-epoch warm-up and linear decay as in its script, wd 3e-5, 250 epochs, "
          "label smoothing 0.1, color jitter 0.4, no auxiliary head (as the authors' script)", {
              "data": {**_IMAGENET_DATA, "color_jitter": 0.4},
              "model": {**_IMAGENET_MODEL, "auxiliary": False},
              "optim": {"epochs": 250, "batch_size": 1024, "lr": 0.5, "lr_schedule": "linear-warmup",
                        "warmup_epochs": 5, "weight_decay": 3e-5, "label_smoothing": 0.1,
                        "drop_path": 0.0, "aux_weight": 0.0},
          })
_register("imagenet-darts", "original DARTS ImageNet recipe: C=48, 14 cells, batch 128, lr 0.1 "
          "x0.97 per epoch, wd 3e-5, 250 epochs, label smoothing 0.1, aux 0.4", {
              "data": _IMAGENET_DATA,
              "model": _IMAGENET_MODEL,
              "optim": {"epochs": 250, "batch_size": 128, "lr": 0.1, "lr_schedule": "exponential",
                        "lr_gamma": 0.97, "weight_decay": 3e-5, "label_smoothing": 0.1,
                        "drop_path": 0.0},
          })
# Offline, CPU-sized: the bundled real CIFAR-10 sample (5k train / 1k test), C=8, 5 cells,
# 5 epochs: a few minutes on 2 CPU cores. Its accuracy says the pipeline learns, nothing more.
_register("train-quick", "offline training on the bundled CIFAR-10 sample, reduced (5k images, "
          "C=8, 5 cells, batch 64, 5 epochs, lr 0.05)", {
              "data": {"dataset": "cifar10-sample", "cutout": 8},
              "model": {"channels": 8, "layers": 5},
              "optim": {"epochs": 5, "batch_size": 64, "lr": 0.05},
          })
_register("train-tiny", "smoke test: 256 bundled images, 200 test images, C=4, 3 cells, 1 epoch", {
    "data": {"dataset": "cifar10-sample", "train_images": 256, "test_images": 200, "cutout": 8},
    "model": {"channels": 4, "layers": 3},
    "optim": {"epochs": 1, "batch_size": 32},
})

# NAS-Bench-201 cells: the benchmark's own 200-epoch recipe on the `nb201` network.
NB201_RECIPE: dict[str, Any] = {
    "data": {"cutout": 0},
    "model": {"network": "nb201", "channels": 16, "layers": 5, "auxiliary": False},  # 5 cells/stage
    "optim": {"epochs": 200, "batch_size": 256, "lr": 0.1, "lr_schedule": "cosine", "lr_min": 0.0,
              "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "grad_clip": 0.0,
              "aux_weight": 0.0, "drop_path": 0.0},
}
_register("nb201", "NAS-Bench-201 benchmark recipe: 200 epochs, batch 256, SGD Nesterov 0.1 "
          "cosine to 0, wd 5e-4, C=16, 5 cells per stage (genotype: a benchmark string)",
          {**NB201_RECIPE, "model": {**NB201_RECIPE["model"],
                                     "genotype": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                                                 "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"}})
# Offline, CPU-sized: the benchmark's recipe on the bundled CIFAR-10 sample (5k train / 1k
# test), reduced to C=8, 2 cells per stage, batch 64, 5 epochs: what a search on the sample
# prints as its next command. Its accuracy says the cell trains, not what the benchmark says.
_register("nb201-quick", "offline training of a NAS-Bench-201 cell on the bundled CIFAR-10 sample, "
          "the benchmark's recipe reduced (C=8, 2 cells per stage, batch 64, 5 epochs)",
          {**NB201_RECIPE, "data": {"dataset": "cifar10-sample", "cutout": 0},
           "model": {**NB201_RECIPE["model"], "channels": 8, "layers": 2},
           "optim": {**NB201_RECIPE["optim"], "epochs": 5, "batch_size": 64}})
