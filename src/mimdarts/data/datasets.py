"""Dataset sources: the bundled CIFAR-10 sample, CIFAR-10/100 via torchvision, ImageNet folders,
and random images of CIFAR's size and count (for timing only).

Small datasets (CIFAR and the sample) are returned whole as uint8 tensors ``[N, 3, H, W]``
so that :mod:`mimdarts.data.loader` can keep them on the training device.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError


@dataclass(frozen=True)
class DatasetInfo:
    """What models and objectives need to know about a dataset."""

    name: str
    num_classes: int
    mean: tuple[float, float, float]  # per-channel mean of [0, 1] pixels
    std: tuple[float, float, float]
    image_size: int

    @property
    def pixel_range(self) -> tuple[float, float]:
        """Smallest and largest normalised pixel value (pixels 0 and 1 in every channel)."""
        lo = min((0.0 - m) / s for m, s in zip(self.mean, self.std))
        hi = max((1.0 - m) / s for m, s in zip(self.mean, self.std))
        return lo, hi


CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

INFOS = {
    "cifar10-sample": DatasetInfo("cifar10-sample", 10, CIFAR10_MEAN, CIFAR10_STD, 32),
    "cifar10": DatasetInfo("cifar10", 10, CIFAR10_MEAN, CIFAR10_STD, 32),
    "cifar100": DatasetInfo("cifar100", 100, CIFAR100_MEAN, CIFAR100_STD, 32),
    "imagenet": DatasetInfo("imagenet", 1000, IMAGENET_MEAN, IMAGENET_STD, 224),
    "synthetic-cifar10": DatasetInfo("synthetic-cifar10", 10, CIFAR10_MEAN, CIFAR10_STD, 32),
}

# synthetic-cifar10: CIFAR-10's shape and counts, uniform random pixels and labels. It times a
# full-size run end to end (data loading included) where CIFAR cannot be downloaded; what a
# search or training learns from it means nothing.
SYNTHETIC_SIZES = {"train": 50_000, "test": 10_000}

# Files torchvision expects under <data_dir>/, named in the offline error message.
_TORCHVISION_FILES = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]),
    "cifar100": ("cifar-100-python", ["train", "test", "meta"]),
}


@dataclass(frozen=True)
class TensorData:
    """A whole split in memory: ``images`` uint8 ``[N, 3, H, W]``, ``labels`` int64 ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor) -> TensorData:
        return TensorData(self.images[index], self.labels[index])


def _from_hwc(x: np.ndarray, y: np.ndarray | list[int]) -> TensorData:
    images = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()
    return TensorData(images, torch.as_tensor(np.asarray(y), dtype=torch.int64))


def load_sample(split: str) -> TensorData:
    """The real CIFAR-10 subset shipped in the package: 5,000 train / 1,000 test images."""
    name = {"train": "train_5k.npz", "test": "test_1k.npz"}[split]
    with resources.as_file(resources.files("mimdarts.data") / "sample" / name) as path:
        try:
            with np.load(path, allow_pickle=False) as d:
                return _from_hwc(d["x"], d["y"])
        except (OSError, ValueError, KeyError, EOFError) as e:  # np.load's ways to fail
            raise DataError(f"the bundled CIFAR-10 sample {str(path)!r} does not load "
                            f"({type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}); "
                            "reinstall mimdarts") from None


def load_synthetic(split: str) -> TensorData:
    """``synthetic-cifar10``: 50,000 train / 10,000 test random 32x32 images and labels, the
    same on every call (seeded per split); for timing only."""
    g = torch.Generator().manual_seed({"train": 0, "test": 1}[split])
    n = SYNTHETIC_SIZES[split]
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return TensorData(images, torch.randint(0, 10, (n,), generator=g))


def load_torchvision_cifar(name: str, root: str | Path, split: str, download: bool) -> TensorData:
    """CIFAR-10 or CIFAR-100 through torchvision; a clear error when the files are missing."""
    import torchvision

    folder, files = _TORCHVISION_FILES[name]
    base = Path(root).expanduser() / folder
    present = all((base / f).is_file() for f in files)
    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    if not present and not download:
        raise DataError(f"{name} not found in {str(base)!r}: expected files {', '.join(files)} "
                        "(set --download true to fetch it, or --data-dir to its parent folder)")
    try:
        ds = cls(str(Path(root).expanduser()), train=(split == "train"), download=not present)
    except Exception as e:  # torchvision raises URLError, OSError or RuntimeError
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:120]}"
        if present:
            bad = _damaged_file(cls, base)
            where = f"{str(base / bad)!r} is damaged (its MD5 is not the dataset's)" if bad else \
                f"files in {str(base)!r} are unreadable"
            raise DataError(f"{name}: {where} ({reason}); delete it and set --download true to "
                            "fetch it again") from None
        raise DataError(f"{name} not found in {str(base)!r} (expected files {', '.join(files)}) "
                        f"and the download failed: {reason}") from None
    return _from_hwc(ds.data, ds.targets)


def _damaged_file(cls: type, base: Path) -> str | None:
    """The first of torchvision's CIFAR files in ``base`` whose MD5 is not the published one
    (a truncated download, a garbage file), or None."""
    from torchvision.datasets.utils import check_integrity

    listed = [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]
    return next((f for f, md5 in listed if not check_integrity(str(base / f), md5)), None)


def load_tensor_split(dataset: str, split: str, data_dir: str = "data",
                      download: bool = True) -> TensorData:
    """A whole split of a small dataset as uint8 tensors (see :class:`TensorData`)."""
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', got {split!r}")
    if dataset == "cifar10-sample":
        return load_sample(split)
    if dataset == "synthetic-cifar10":
        return load_synthetic(split)
    if dataset in _TORCHVISION_FILES:
        return load_torchvision_cifar(dataset, data_dir, split, download)
    raise DataError(f"dataset {dataset!r} is not an in-memory dataset; "
                    f"choose one of cifar10-sample, {', '.join(_TORCHVISION_FILES)}, "
                    "synthetic-cifar10")


class ImageReader:
    """Opens one image file for an ImageFolder (in a DataLoader worker). An unreadable file
    (truncated, not an image, unreadable) is a :class:`DataError` naming it; or, with
    ``skip``, a warning naming it (with the count this worker skipped) and ``None``, which
    :class:`SkippingImageFolder` replaces with the next readable image."""

    def __init__(self, skip: bool = False) -> None:
        self.skip = skip
        self.skipped = 0

    def __call__(self, path: str):
        import sys

        from PIL import Image
        try:
            with open(path, "rb") as f:
                img = Image.open(f)
                return img.convert("RGB")  # (decodes the whole file: a truncated one fails here)
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            why = f"{type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}"
            if not self.skip:
                raise DataError(f"image {path!r} cannot be read ({why}); remove or replace it, "
                                "or set --skip-bad-images true to skip such files") from None
            self.skipped += 1
            print(f"mimdarts: warning: skipped unreadable image {path!r} ({why}); "
                  f"{self.skipped} skipped so far by this loader process", file=sys.stderr,
                  flush=True)
            return None


def _skipping_image_folder():
    import torchvision

    class SkippingImageFolder(torchvision.datasets.ImageFolder):
        """An ImageFolder whose unreadable files (``ImageReader(skip=True)``) are replaced
        by the next readable image of the folder, so that batches keep their size."""

        def __getitem__(self, index: int):
            for k in range(len(self.samples)):
                path, target = self.samples[(index + k) % len(self.samples)]
                sample = self.loader(path)
                if sample is not None:
                    if self.transform is not None:
                        sample = self.transform(sample)
                    return sample, target
            raise DataError(f"no image of {self.root!r} can be read")

    return SkippingImageFolder


def image_folder(root: str | Path, split: str, image_size: int, train: bool,
                 info: DatasetInfo = INFOS["imagenet"], color_jitter: float = 0.0,
                 skip_bad_images: bool = False):
    """An ImageNet-style ``<root>/<split>/<class>/<image>`` folder with standard transforms.

    Train: RandomResizedCrop, flip, optional ColorJitter(j, j, j, j / 2) (PC-DARTS uses
    j = 0.4); test: Resize to ``image_size * 256 / 224`` then CenterCrop. An unreadable image
    stops the run with its name, or with ``skip_bad_images`` is skipped (:class:`ImageReader`).
    """
    from torchvision import transforms as T

    folder = Path(root).expanduser() / split
    if not folder.is_dir():
        raise DataError(f"ImageNet folder {str(folder)!r} not found: expected "
                        f"{str(Path(root) / split)}/<class>/<image files>")
    if train:
        jitter = ([T.ColorJitter(color_jitter, color_jitter, color_jitter, color_jitter / 2)]
                  if color_jitter > 0 else [])
        tf = T.Compose([T.RandomResizedCrop(image_size), T.RandomHorizontalFlip(), *jitter,
                        T.ToTensor(), T.Normalize(info.mean, info.std)])
    else:
        tf = T.Compose([T.Resize(round(image_size * 256 / 224)), T.CenterCrop(image_size),
                        T.ToTensor(), T.Normalize(info.mean, info.std)])
    try:
        return _skipping_image_folder()(str(folder), transform=tf,
                                        loader=ImageReader(skip=skip_bad_images))
    except (FileNotFoundError, RuntimeError) as e:
        raise DataError(f"ImageNet folder {str(folder)!r} is unusable: {e}") from None


def search_split(n: int, seed: int, limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the train half (w steps) and the val half (α steps) of a training set of ``n`` images.

    A seeded permutation of ``range(n)`` is cut to ``limit`` images (0 = all) and halved;
    with an odd count the last image is left out so both halves have the same size.
    """
    if limit > n:
        raise DataError(f"train_images={limit} exceeds the {n} training images available")
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    if limit:
        perm = perm[:limit]
    half = len(perm) // 2
    return perm[:half], perm[half:2 * half]
