"""Data: dataset sources, the search split and device-resident batch loaders."""

from __future__ import annotations

import torch

from ..config import DataConfig
from .datasets import (
    INFOS,
    DatasetInfo,
    TensorData,
    image_folder,
    load_sample,
    load_tensor_split,
    search_split,
)
from .loader import (
    DeviceLoader,
    FolderLoader,
    cutout,
    normalize,
    random_crop_flip,
    sharded_folder_loader,
)


def dataset_info(cfg: DataConfig) -> DatasetInfo:
    """Statistics of ``cfg.dataset`` at the configured input size."""
    info = INFOS[cfg.dataset]
    if cfg.image_size != info.image_size and cfg.dataset != "imagenet":
        from ..errors import ConfigError
        raise ConfigError(f"image_size={cfg.image_size} is not available for {cfg.dataset} "
                          f"(its images are {info.image_size}x{info.image_size})")
    return DatasetInfo(info.name, info.num_classes, info.mean, info.std, cfg.image_size)


def build_search_loaders(cfg: DataConfig, batch_size: int, device: torch.device, seed: int,
                         rank: int = 0, world_size: int = 1
                         ) -> tuple[DatasetInfo, DeviceLoader | FolderLoader,
                                    DeviceLoader | FolderLoader]:
    """The w loader and the α loader over the two halves of the training set.

    Distributed (``world_size > 1``): ``batch_size`` is the global batch; each rank gets
    ``batch_size / world_size`` images per step from its own disjoint shard of each half.
    """
    info = dataset_info(cfg)
    if batch_size % world_size:
        from ..errors import ConfigError
        raise ConfigError(f"batch_size={batch_size} does not split evenly over {world_size} "
                          f"processes; use a multiple of {world_size}")
    if cfg.dataset == "imagenet":
        # train=False: resize and centre crop instead of the random resized crop and flip
        ds = image_folder(cfg.data_dir, "train", cfg.image_size, train=cfg.augment, info=info)
        w_idx, a_idx = search_split(len(ds), seed, cfg.train_images)
        sub = torch.utils.data.Subset
        b = batch_size // world_size
        w_ds, a_ds = sub(ds, w_idx.tolist()), sub(ds, a_idx.tolist())
        return (info, sharded_folder_loader(w_ds, b, device, seed, rank, world_size),
                sharded_folder_loader(a_ds, b, device, seed + 1, rank, world_size))
    data = load_tensor_split(cfg.dataset, "train", cfg.data_dir, cfg.download)
    w_idx, a_idx = search_split(len(data), seed, cfg.train_images)
    if len(w_idx) < batch_size:
        from ..errors import ConfigError
        raise ConfigError(f"batch_size={batch_size} is larger than each search half "
                          f"({len(w_idx)} images); lower batch_size or raise train_images")
    # Separate generators: the w and α streams (order and augmentation) are independent.
    b, shard = batch_size // world_size, {"rank": rank, "world_size": world_size,
                                          "augment": cfg.augment}
    return (info,
            DeviceLoader(data.subset(w_idx), info, b, device, seed=seed, **shard),
            DeviceLoader(data.subset(a_idx), info, b, device, seed=seed + 1, **shard))


__all__ = ["INFOS", "DatasetInfo", "DeviceLoader", "FolderLoader", "TensorData",
           "build_search_loaders", "cutout", "dataset_info", "image_folder", "load_sample",
           "load_tensor_split", "normalize", "random_crop_flip", "search_split",
           "sharded_folder_loader"]
