"""The bi-level search loop: per iteration one α step on an α batch, one w step on a w batch."""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .. import distributed
from ..config import SearchConfig
from ..data import DatasetInfo, DeviceLoader, FolderLoader, build_search_loaders
from ..errors import ConfigError
from ..rundir import RunDir
from ..spaces import Architecture, Supernet, get_space
from .architect import Architect
from .objective import LossResult, Objective, accuracy, build_objective, check_objective
from .schedule import cosine_lr


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a clear error for an absent GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class Searcher:
    """Everything a search owns; built once by :func:`build_searcher`."""

    cfg: SearchConfig
    device: torch.device
    info: DatasetInfo
    model: Supernet
    objective: Objective
    architect: Architect
    w_optimizer: torch.optim.SGD
    w_loader: DeviceLoader | FolderLoader
    a_loader: DeviceLoader | FolderLoader
    epoch: int = 0  # completed epochs
    dist: distributed.Dist = field(default_factory=distributed.Dist)  # data-parallel rank
    a_stream: Iterator = field(init=False)

    def __post_init__(self) -> None:
        # One persistent iterator over the α half: never rebuilt per step.
        self.a_stream = self.a_loader.forever()

    @property
    def w_params(self) -> list[torch.nn.Parameter]:
        return self.architect.weights


def build_searcher(cfg: SearchConfig) -> Searcher:
    """Validate names, load data and build model, objective and optimizers (writes nothing)."""
    space = get_space(cfg.model.space)
    check_objective(cfg.objective.objective)
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    dist = distributed.setup(resolve_device(cfg.run.device))  # 1 process unless torchrun
    device = dist.device
    seed_everything(cfg.run.seed)
    info, w_loader, a_loader = build_search_loaders(cfg.data, cfg.optim.batch_size, device,
                                                    cfg.run.seed, dist.rank, dist.world_size)
    model = space.build(cfg.model, info.num_classes).to(device)
    if cfg.run.channels_last:
        model = model.to(memory_format=torch.channels_last)
        w_loader.channels_last = a_loader.channels_last = True
    objective = build_objective(cfg.objective, model, info, cfg.run.seed + 1_000_003 * dist.rank,
                                device)
    dist.broadcast_module(model, objective)  # identical w and α on every rank
    o = cfg.optim
    w_params = model.weight_parameters() + list(objective.parameters())
    w_opt = torch.optim.SGD(w_params, lr=o.w_lr, momentum=o.w_momentum,
                            weight_decay=o.w_weight_decay)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=o.arch_lr,
                             betas=(o.arch_beta1, o.arch_beta2), weight_decay=o.arch_weight_decay)
    architect = Architect(model, objective, a_opt, w_opt, o.order, o.unrolled_eps,
                          grad_sync=dist.average_ if dist.enabled else None)
    return Searcher(cfg, device, info, model, objective, architect, w_opt, w_loader, a_loader,
                    dist=dist)


class _Meter:
    """Sums of per-batch figures kept on the device; read (one sync) at the end of an epoch."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, key: str, value: torch.Tensor, n: int = 1) -> None:
        v = value.detach().float() * n
        self.sums[key] = self.sums[key] + v if key in self.sums else v
        self.counts[key] = self.counts.get(key, 0) + n

    def add_result(self, prefix: str, res: LossResult, n: int) -> None:
        self.add(f"{prefix}_loss", res.loss, n)
        for k, v in res.terms.items():
            self.add(f"{prefix}_{k}", v, n)
        if res.logits is not None:
            self.add(f"{prefix}_acc", accuracy(res.logits, res.labels) * (100.0 / n), n)

    def means(self) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = list(self.sums)
        values = torch.stack([self.sums[k] for k in keys]).cpu().tolist()
        return {k: v / self.counts[k] for k, v in zip(keys, values)}


def train_epoch(s: Searcher, bar: tqdm | None = None) -> dict[str, float]:
    """One epoch over the w half; returns mean losses/accuracies of both steps."""
    cfg = s.cfg
    lr = cosine_lr(s.epoch, cfg.optim.epochs, cfg.optim.w_lr, cfg.optim.w_lr_min)
    for g in s.w_optimizer.param_groups:
        g["lr"] = lr
    s.model.train()
    s.objective.train()
    meter = _Meter()
    clip = cfg.optim.w_grad_clip
    for step, (x, y) in enumerate(s.w_loader):
        xa, ya = next(s.a_stream)
        train = s.objective.prepare(x, y)
        val = s.objective.prepare(xa, ya)
        a_res = s.architect.step(train, val, lr)
        s.w_optimizer.zero_grad(set_to_none=True)
        res = s.objective.loss(s.model, train)
        # Only w needs gradients here: α's are not accumulated by this backward.
        torch.autograd.backward(res.loss, inputs=s.w_params)
        s.dist.average_gradients(s.w_params)  # no-op on one process
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(s.w_params, clip)
        s.w_optimizer.step()
        meter.add_result("train", res, len(y))
        meter.add_result("val", a_res, len(ya))
        if bar is not None:
            bar.update((len(y) + len(ya)) * s.dist.world_size)
            if (step + 1) % cfg.run.log_every == 0:
                bar.set_postfix(loss=f"{res.loss.item():.3f}", refresh=False)
    out = meter.means()
    out["lr"] = lr
    return out


def _run_name(cfg: SearchConfig) -> str:
    if cfg.run.run_name:
        return cfg.run.run_name
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (f"{cfg.preset or 'custom'}-{cfg.model.space}-{cfg.objective.objective}"
            f"-s{cfg.run.seed}-{stamp}")


def checkpoint_state(s: Searcher, arch: Architecture) -> dict[str, Any]:
    """A plain dict of tensors, numbers and JSON strings (loadable with weights_only=True)."""
    return {
        "format": "mimdarts-search-v1",
        "epoch": s.epoch,
        "config": s.cfg.to_json(),
        "genotype": json.dumps(arch.to_dict()),
        "model": s.model.state_dict(),
        "objective": s.objective.state_dict(),
        "w_optimizer": s.w_optimizer.state_dict(),
        "a_optimizer": s.architect.optimizer.state_dict(),
    }


@dataclass
class SearchResult:
    genotype: Architecture
    run_dir: Path | None
    history: list[dict[str, Any]]


def search(cfg: SearchConfig, overwrite: bool = False, progress: bool = True,
           write: bool = True) -> SearchResult:
    """Run a whole search; with ``write`` every epoch is logged to a new run folder."""
    s = build_searcher(cfg)
    write = write and s.dist.is_main  # distributed: only rank 0 writes
    run = RunDir.create(Path(cfg.run.out_dir) / _run_name(cfg), overwrite) if write else None
    if run is not None:
        run.write_text("config.yaml", cfg.to_yaml())
    steps = len(s.w_loader)
    images_per_step = 2 * cfg.optim.batch_size  # an α batch and a w batch
    bar = tqdm(total=cfg.optim.epochs * steps * images_per_step,
               disable=not (progress and s.dist.is_main),
               unit="img", dynamic_ncols=True, file=sys.stderr, desc="search")
    history: list[dict[str, Any]] = []
    arch = s.model.genotype()
    try:
        while s.epoch < cfg.optim.epochs:
            bar.set_description(f"epoch {s.epoch + 1}/{cfg.optim.epochs}")
            t0 = time.perf_counter()
            metrics = s.dist.mean_dict(train_epoch(s, bar))
            if s.device.type == "cuda":
                torch.cuda.synchronize(s.device)  # once per epoch, for an honest epoch time
            dt = time.perf_counter() - t0
            s.epoch += 1
            arch = s.model.genotype()
            record = {
                "epoch": s.epoch,
                **{k: round(v, 6) for k, v in metrics.items()},
                "epoch_time_s": round(dt, 3),
                "images_per_s": round(steps * images_per_step / dt, 2),
                "genotype": str(arch),
                **arch.summary(),
                "arch_weights": {k: [[round(x, 5) for x in row] for row in w.cpu().tolist()]
                                 for k, w in s.model.arch_weights().items()},
            }
            history.append(record)
            bar.set_postfix(loss=f"{metrics.get('train_loss', float('nan')):.3f}")
            if run is not None:
                run.append_log(record)
                run.write_text("genotype.json", json.dumps(arch.to_dict(), indent=1))
                run.save_checkpoint(checkpoint_state(s, arch))
    finally:
        bar.close()
    return SearchResult(arch, run.path if run else None, history)
