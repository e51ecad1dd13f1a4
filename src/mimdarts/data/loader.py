"""Batch loaders.

:class:`DeviceLoader` keeps a small dataset as one uint8 tensor on the training device and
augments whole batches there: no worker processes, no per-image Python, no host-to-device
copy per step (the original DARTS code rebuilt such work for every batch).
:class:`FolderLoader` wraps a torch DataLoader for datasets too big for that (ImageNet).
Both yield ``(images, labels)``: float ``[B, 3, H, W]`` normalised, int64 ``[B]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import DataError
from .datasets import DatasetInfo, TensorData

Batch = tuple[torch.Tensor, torch.Tensor]


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding plus a random horizontal flip, per image.

    ``x``: ``[B, C, H, W]`` (any dtype) -> same shape. Each image is zero-padded by ``pad``
    pixels and an ``H x W`` window is taken at a uniform offset in ``[0, 2 * pad]``, then it is
    mirrored left-right with probability 1/2. All on ``x``'s device, one gather per batch.
    """
    B, C, H, W = x.shape
    dev = x.device
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (B, 1), generator=generator, device=dev)
        ox = torch.randint(0, 2 * pad + 1, (B, 1), generator=generator, device=dev)
        rows = (oy + torch.arange(H, device=dev))[:, None, :, None]  # [B, 1, H, 1]
        cols = (ox + torch.arange(W, device=dev))[:, None, None, :]  # [B, 1, 1, W]
        b = torch.arange(B, device=dev)[:, None, None, None]
        c = torch.arange(C, device=dev)[None, :, None, None]
        x = xp[b, c, rows, cols]
    flip = torch.rand(B, generator=generator, device=dev) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, length: int, generator: torch.Generator) -> torch.Tensor:
    """Zero one ``length x length`` square per image (DeVries & Taylor), as DARTS does.

    ``x``: float ``[B, C, H, W]`` (normalised, so 0 is the mean colour) -> same shape, new
    tensor. Each square's centre is uniform over the ``H x W`` pixels and the square is
    clipped at the border (rows ``cy - length // 2 <= y < cy + length // 2``, same for
    columns), so squares near an edge cover fewer pixels. All channels are zeroed.
    """
    if length <= 0:
        return x
    B, _, H, W = x.shape
    dev = x.device
    cy = torch.randint(0, H, (B, 1, 1), generator=generator, device=dev)
    cx = torch.randint(0, W, (B, 1, 1), generator=generator, device=dev)
    ys = torch.arange(H, device=dev)[None, :, None]  # [1, H, 1]
    xs = torch.arange(W, device=dev)[None, None, :]  # [1, 1, W]
    half = length // 2
    inside = (ys >= cy - half) & (ys < cy + half) & (xs >= cx - half) & (xs < cx + half)
    return x.masked_fill(inside[:, None], 0.0)  # [B, 1, H, W] broadcast over channels


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` -> float ``(x / 255 - mean) / std``; mean/std ``[3]``."""
    return (x.float().div_(255.0) - mean[:, None, None]) / std[:, None, None]


class _Endless:
    """``forever()`` for a loader whose iteration is one pass."""

    def forever(self) -> Iterator[Batch]:
        """An endless stream of batches, reshuffled at every pass (the α stream)."""
        while True:
            yield from self  # type: ignore[misc]


class DeviceLoader(_Endless):
    """Shuffled batches of a dataset held on ``device``, augmented on the device.

    Args:
        data: the whole split as uint8 tensors.
        info: dataset statistics for normalisation.
        batch_size: images per batch.
        train: shuffle and augment (crop with 4-pixel padding, flip) if True.
        augment: with ``train``, do the crop and flip (False: shuffle only).
        drop_last: drop the last incomplete batch (constant shapes help the allocator).
        seed: seeds this loader's own generator (order and augmentation), so that the w
            and α streams are reproducible independently of everything else.
        cutout: side of the square cut out of each training image after normalisation; 0 = off.
        rank, world_size: distributed sharding. Every rank draws the same seeded permutation
            and keeps every ``world_size``-th image from position ``rank``: disjoint shards,
            the same number of batches on every rank (training), and together the whole
            split (evaluation). Augmentation draws from a per-rank generator.
    """

    def __init__(self, data: TensorData, info: DatasetInfo, batch_size: int, device: torch.device,
                 train: bool = True, drop_last: bool = True, seed: int = 0, pad: int = 4,
                 cutout: int = 0, rank: int = 0, world_size: int = 1, augment: bool = True) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.images = data.images.to(device)
        self.labels = data.labels.to(device)
        self.mean = torch.tensor(info.mean, device=device)
        self.std = torch.tensor(info.std, device=device)
        self.batch_size = batch_size
        self.train = train
        self.augment = augment
        self.drop_last = drop_last
        self.pad = pad
        self.device = device
        self.cutout = cutout
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        self.rank, self.world_size = rank, world_size
        # Augmentation: per rank. Order: the same permutation on every rank, so the shards are
        # disjoint; on one process it is the same generator (the single-process stream).
        aug_seed = seed if world_size == 1 else seed + 1_000_003 * (rank + 1)
        self.generator = torch.Generator(device=device).manual_seed(aug_seed)
        self.order_generator = (self.generator if world_size == 1
                                else torch.Generator(device=device).manual_seed(seed))
        self.channels_last = False  # yield NHWC-strided batches (set by the search loop)
        # Where the current pass stands (for checkpoints): its order and the batches handed out.
        self._order: torch.Tensor | None = None
        self.position = 0  # batches of the current pass already yielded
        self._resume = False  # the next iteration continues a restored pass

    def state_dict(self) -> dict[str, object]:
        """The generators, the current pass's order and position: enough to continue the
        stream exactly where it stands (tensors and ints only, ``weights_only``-safe)."""
        state: dict[str, object] = {"generator": self.generator.get_state(),
                                    "position": self.position, "order": self._order}
        if self.order_generator is not self.generator:
            state["order_generator"] = self.order_generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict`: the next batch is the one the saved loader would give."""
        self.generator.set_state(state["generator"])
        if "order_generator" in state and self.order_generator is not self.generator:
            self.order_generator.set_state(state["order_generator"])
        order = state["order"]
        self._order = None if order is None else order.to(self.device)
        self.position = int(state["position"])
        self._resume = True

    @property
    def shard_size(self) -> int:
        """Images this rank visits per pass (training shards are cut to equal sizes)."""
        n = len(self.labels)
        if self.world_size == 1:
            return n
        return n // self.world_size if self.train else len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        n = self.shard_size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self.labels)

    def _draw_order(self) -> torch.Tensor:
        """This rank's order of a new pass ``[shard_size]`` (a fresh permutation in training)."""
        n = len(self.labels)
        if self.train:
            order = torch.randperm(n, generator=self.order_generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        if self.world_size > 1:
            order = order[self.rank::self.world_size][:self.shard_size]
        return order

    def __iter__(self) -> Iterator[Batch]:
        """A new pass; right after :meth:`load_state_dict`, the rest of the restored pass."""
        resume, self._resume = self._resume, False
        if not resume or self._order is None or self.position >= len(self):
            self._order, self.position = self._draw_order(), 0
        order = self._order
        while self.position < len(self):
            i = self.position
            # counted before the yield: a checkpoint taken after this batch resumes at the next
            self.position += 1
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[idx]
            if self.train and self.augment:
                x = random_crop_flip(x, self.pad, self.generator)
            x = normalize(x, self.mean, self.std)
            if self.train and self.cutout:
                x = cutout(x, self.cutout, self.generator)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]

    def full_pass(self, generator: torch.Generator) -> Iterator[Batch]:
        """Every image of this rank's shard once, in order, last batch kept, augmented as the
        stream is (crop and flip, cutout) but from ``generator``: the stream's own order,
        position and generators are left untouched, so scoring a pass changes no run."""
        n = len(self.labels)
        idx_all = torch.arange(n, device=self.device)[self.rank::self.world_size]
        for i in range(0, len(idx_all), self.batch_size):
            idx = idx_all[i:i + self.batch_size]
            x = self.images[idx]
            if self.train and self.augment:
                x = random_crop_flip(x, self.pad, generator)
            x = normalize(x, self.mean, self.std)
            if self.train and self.cutout:
                x = cutout(x, self.cutout, generator)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]

    def head(self, n: int) -> Iterator[Batch]:
        """The first ``n`` images, in order, without augmentation (a fixed evaluation set)."""
        for i in range(0, min(n, len(self.labels)), self.batch_size):
            j = min(i + self.batch_size, n)
            x = normalize(self.images[i:j], self.mean, self.std)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[i:j]


class _PassSampler(torch.utils.data.Sampler):
    """The indices of one pass: a permutation drawn from ``generator`` (``shuffle``), the
    order of ``inner`` (a DistributedSampler) or ``0..n-1``; the first ``skip`` are left out
    once (a resumed pass). Drawn in the main process at the start of every pass."""

    def __init__(self, n: int, shuffle: bool, generator: torch.Generator, inner=None) -> None:
        self.n, self.shuffle, self.generator, self.inner = n, shuffle, generator, inner
        self.skip = 0

    def __len__(self) -> int:
        return len(self.inner) if self.inner is not None else self.n

    def __iter__(self) -> Iterator[int]:
        if self.inner is not None:
            idx = list(self.inner)
        elif self.shuffle:
            idx = torch.randperm(self.n, generator=self.generator).tolist()
        else:
            idx = list(range(self.n))
        skip, self.skip = self.skip, 0
        return iter(idx[skip:])


def _worker_error_line(text: str) -> str:
    """The original one-line message of an error a DataLoader worker raised (the loader
    re-raises it wrapped in the worker's traceback)."""
    lines = [ln for ln in text.splitlines() if ln.startswith(("DataError: ",
                                                                "mimdarts.errors.DataError: "))]
    return lines[-1].split("DataError: ", 1)[1] if lines else text.strip().splitlines()[-1]


class FolderLoader(_Endless):
    """A torch DataLoader (worker processes, host transforms) behind the same interface.

    The order of every pass comes from the loader's own generator (or a DistributedSampler's
    seed and pass number), so a checkpoint can restore the order and the position in a pass
    exactly; the host-side random transforms run in worker processes whose random state is
    not captured, so a resumed pass sees the same images in the same order, not bit-identical
    augmentations.
    """

    def __init__(self, dataset, batch_size: int, device: torch.device, train: bool = True,
                 workers: int = 4, seed: int = 0, sampler=None) -> None:
        self.order_generator = torch.Generator().manual_seed(seed)
        self.device = device
        self.channels_last = False
        self.batch_size, self.workers = batch_size, workers
        self.passes = 0  # reshuffles a DistributedSampler differently at every pass
        self.position = 0  # batches of the current pass already yielded
        self._pass_start = self.order_generator.get_state()  # the order generator at pass start
        self._resume = False
        self.sampler = _PassSampler(len(dataset), train, self.order_generator, sampler)
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=self.sampler, drop_last=train,
            num_workers=workers, generator=torch.Generator().manual_seed(seed + 1),
            pin_memory=device.type == "cuda", persistent_workers=workers > 0)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def num_images(self) -> int:
        return len(self.loader.dataset)

    def state_dict(self) -> dict[str, object]:
        """The pass number, the order generator at the pass's start and the position in it."""
        return {"passes": self.passes, "position": self.position, "pass_start": self._pass_start}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict`: the next pass continues the saved one."""
        self.passes, self.position = int(state["passes"]), int(state["position"])
        self._pass_start = state["pass_start"]
        self._resume = True

    def __iter__(self) -> Iterator[Batch]:
        """A new pass; right after :meth:`load_state_dict`, the rest of the restored pass."""
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        resume, self._resume = self._resume, False
        inner = self.sampler.inner
        if resume and self.passes > 0 and self.position < len(self):
            self.order_generator.set_state(self._pass_start)  # redraw the same order
            self.sampler.skip = self.position * self.batch_size
            pass_index = self.passes - 1
        else:
            self._pass_start = self.order_generator.get_state()
            self.position, pass_index = 0, self.passes
            self.passes += 1
        if hasattr(inner, "set_epoch"):
            inner.set_epoch(pass_index)
        batches = iter(self.loader)
        while True:
            try:
                x, y = next(batches)
            except StopIteration:
                return
            except DataError as e:  # raised in a worker: its line, without the worker's traceback
                raise DataError(_worker_error_line(str(e))) from None
            self.position += 1
            yield (x.to(self.device, non_blocking=True, memory_format=fmt),
                   y.to(self.device, non_blocking=True))

    def head(self, n: int) -> Iterator[Batch]:
        """The first ``n`` images in order (with the loader's own transforms), through a
        separate loader: the shared one may be in the middle of a pass (the α stream)."""
        ds = self.loader.dataset
        yield from self._separate(range(min(n, len(ds))))

    def full_pass(self, generator: torch.Generator) -> Iterator[Batch]:
        """Every image of this rank's shard once, in order, with the dataset's own (random)
        transforms, through a separate loader, so the stream is left as it was. The host
        transforms draw from the workers' random state, not from ``generator``."""
        inner, n = self.sampler.inner, len(self.loader.dataset)
        yield from self._separate(range(n) if inner is None
                                  else range(inner.rank, n, inner.num_replicas))

    def _separate(self, indices: range) -> Iterator[Batch]:
        ds = self.loader.dataset
        first = torch.utils.data.Subset(ds, indices)
        loader = torch.utils.data.DataLoader(first, batch_size=self.batch_size,
                                             num_workers=min(self.workers, 2))
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        for x, y in loader:
            yield x.to(self.device, memory_format=fmt), y.to(self.device)


def sharded_folder_loader(ds: torch.utils.data.Dataset, batch_size: int, device: torch.device,
                          seed: int, rank: int = 0, world_size: int = 1, **kwargs: Any
                          ) -> FolderLoader:
    """A shuffled :class:`FolderLoader` over ``ds``; distributed (``world_size > 1``), each
    rank reads its own disjoint shard through a seeded ``DistributedSampler`` (dropping the
    tail, so every rank has as many batches)."""
    sampler = (torch.utils.data.DistributedSampler(ds, world_size, rank, shuffle=True, seed=seed,
                                                   drop_last=True)
               if world_size > 1 else None)
    return FolderLoader(ds, batch_size, device, seed=seed, sampler=sampler, **kwargs)
