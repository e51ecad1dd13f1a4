"""The training and test loaders of a training run (whole train split, test split).

CIFAR and the bundled sample stay on the device as uint8 (:class:`DeviceLoader`: crop,
flip, cutout on the device); ImageNet folders go through worker processes
(:class:`FolderLoader`). Distributed: each rank reads a disjoint shard of both splits.
"""

from __future__ import annotations

import dataclasses

import torch

from ..data import DatasetInfo, DeviceLoader, FolderLoader, dataset_info, image_folder, sharded_folder_loader
from ..data.datasets import load_tensor_split
from ..errors import ConfigError, DataError
from .config import TrainDataConfig

Loader = DeviceLoader | FolderLoader


def _first(n: int, limit: int, what: str) -> int:
    if limit > n:
        raise DataError(f"{what}={limit} exceeds the {n} images available")
    return limit or n


def build_train_loaders(cfg: TrainDataConfig, batch_size: int, device: torch.device, seed: int,
                        rank: int = 0, world_size: int = 1) -> tuple[DatasetInfo, Loader, Loader]:
    """(info, train loader, test loader); ``batch_size`` is per process.

    ``train_images``: the first N of a permutation seeded with ``seed``; ``test_images``: the
    first N test images in order. The test loader keeps every image (no drop, no shuffle).
    """
    info = dataset_info(cfg)
    if cfg.dataset == "imagenet":
        train_ds = image_folder(cfg.data_dir, "train", cfg.image_size, train=True, info=info,
                                color_jitter=cfg.color_jitter, skip_bad_images=cfg.skip_bad_images)
        test_ds = image_folder(cfg.data_dir, cfg.test_split, cfg.image_size, train=False, info=info,
                               skip_bad_images=cfg.skip_bad_images)
        if test_ds.classes != train_ds.classes:
            raise DataError(f"the {cfg.test_split!r} and 'train' folders of {cfg.data_dir!r} hold "
                            f"different classes ({len(test_ds.classes)} vs {len(train_ds.classes)})")
        # The classifier is sized by the folder's classes (1000 for ImageNet-1k, fewer for a subset).
        info = dataclasses.replace(info, num_classes=len(train_ds.classes))
        sub = torch.utils.data.Subset
        n = _first(len(train_ds), cfg.train_images, "train_images")
        if n < len(train_ds):
            perm = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(seed))
            train_ds = sub(train_ds, perm[:n].tolist())
        m = _first(len(test_ds), cfg.test_images, "test_images")
        # Strided test shards: disjoint, and together exactly the whole test set.
        test_ds = sub(test_ds, list(range(rank, m, world_size)))
        train = sharded_folder_loader(train_ds, batch_size, device, seed, rank, world_size,
                                      train=True, workers=cfg.workers)
        test = FolderLoader(test_ds, batch_size, device, train=False, workers=cfg.workers)
    else:
        data = load_tensor_split(cfg.dataset, "train", cfg.data_dir, cfg.download)
        n = _first(len(data), cfg.train_images, "train_images")
        if n < len(data):
            perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
            data = data.subset(perm[:n])
        test_data = load_tensor_split(cfg.dataset, "test", cfg.data_dir, cfg.download)
        m = _first(len(test_data), cfg.test_images, "test_images")
        test_data = test_data.subset(torch.arange(m))
        shard = {"rank": rank, "world_size": world_size}
        train = DeviceLoader(data, info, batch_size, device, train=True, seed=seed,
                             cutout=cfg.cutout, **shard)
        test = DeviceLoader(test_data, info, batch_size, device, train=False, drop_last=False,
                            **shard)
    if len(train) == 0:
        raise ConfigError(f"batch_size={batch_size * world_size} is larger than the "
                          f"{n} training images; lower batch_size or raise train_images")
    return info, train, test
