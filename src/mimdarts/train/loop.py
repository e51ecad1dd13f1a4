"""Training a found cell from scratch: a small loop, one epoch at a time.

Per epoch: set the learning rate and the drop-path probability (pure functions of the
epoch), one pass over the training split (cross-entropy + aux_weight * auxiliary
cross-entropy, label smoothing, gradient clipping), then top-1 / top-5 on the test split.
Each epoch appends a line to ``log.jsonl`` and rewrites ``checkpoint.pt`` and
``summary.json`` in the run folder. The reported figure is the test accuracy of the FINAL
epoch; the best epoch is kept in the summary only under a label that says it was picked on
the test set.

Distributed (``torchrun``): one process per device, the model wrapped in DDP, a disjoint
data shard per rank, metrics summed over ranks, files written by rank 0 only.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import distributed, faults
from ..data import DatasetInfo
from ..errors import ConfigError, GenotypeError, RunDirError
from ..guard import DivergenceGuard
from ..lifecycle import Sink, StepHook, run_job
from ..resume import capture_rng, restore_rng
from ..rundir import RunDir, default_run_name
from ..runtime import amp_context, autocast_dtype, resolve_device, seed_everything, set_threads
from ..schedules import lr_at
from ..spaces import GENOTYPES, Architecture, get_space, other_space
from ..spaces.architecture import shorten
from ..spaces.facts import space_facts
from .config import TRAIN_PRESETS, TrainConfig
from .data import Loader, build_train_loaders
from .networks import NETWORKS, NetworkSpec, count_multiply_adds, count_parameters, get_network

CHECKPOINT_FORMAT = "mimdarts-train-v1"


def load_architecture(cfg: TrainConfig) -> tuple[NetworkSpec, Architecture]:
    """The network family and the architecture its ``genotype`` spec names (validated); a
    cell of another space names the network that trains it."""
    spec = get_network(cfg.model.network)
    try:
        return spec, get_space(spec.space).load_arch(cfg.model.genotype)
    except GenotypeError:
        other = other_space(cfg.model.genotype, spec.space)
        if other is None:
            raise
        nets = [n for n, s in NETWORKS.items() if s.space == other]
        hint = f" (or --preset {space_facts(other).train_presets[1]}, its cells' recipe)"
        raise GenotypeError(f"{shorten(cfg.model.genotype)!r} is a {other} cell, but network "
                            f"{cfg.model.network!r} trains {spec.space} cells; train it with "
                            f"--network {nets[0]}{hint}") from None


def build_network(cfg: TrainConfig, arch: Architecture, num_classes: int) -> nn.Module:
    """The evaluation network of ``cfg`` for ``arch`` (returns ``(logits, aux_logits)``)."""
    spec = get_network(cfg.model.network)
    return spec.build(arch, cfg.model.channels, cfg.model.layers, cfg.model.auxiliary, num_classes)


@dataclass
class Trainer:
    """Everything a training run owns; built once by :func:`build_trainer`."""

    cfg: TrainConfig
    dist: distributed.Dist
    info: DatasetInfo
    arch: Architecture
    model: nn.Module  # the network itself (what is saved)
    net: nn.Module  # what is called in training: ``model``, or DDP(model)
    optimizer: torch.optim.SGD
    train_loader: Loader
    test_loader: Loader
    params: int  # without the auxiliary head
    madds: int  # one image at cfg.data.image_size
    epoch: int = 0  # completed epochs
    step: int = 0  # steps done in the current epoch
    sums: torch.Tensor | None = None  # the current epoch's [loss sum, correct, images] so far
    kind: str = "train"
    checkpoint_format: str = CHECKPOINT_FORMAT
    guard: DivergenceGuard = field(init=False)
    nan_step: int = field(init=False)  # fault injection (mimdarts.faults); 0 = off
    # perf_counter() when the build began: the summary's total time counts data loading too
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        # every rank stops at the first bad step of any rank
        self.guard = DivergenceGuard(self.device, self.dist.min_ if self.dist.enabled else None)
        self.nan_step = faults.nan_step()

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    @property
    def images_per_step(self) -> int:
        return self.cfg.optim.batch_size  # all ranks together

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def global_step(self) -> int:
        """Steps done since the start of the run."""
        return self.epoch * len(self.train_loader) + self.step

    def autocast(self) -> torch.autocast:
        """``run.dtype``: bf16 autocast for the forward and the losses (BN and the losses
        stay fp32 under autocast), or plain fp32; ``auto`` is bf16 on CUDA only."""
        return amp_context(self.device, autocast_dtype(self.cfg.run.dtype, self.device))

    # ----------------------------------------------------------- the lifecycle's Job
    def train_epoch(self, hook: StepHook | None = None) -> dict[str, float]:
        return train_epoch(self, hook)

    def evaluate(self) -> dict[str, float]:
        return evaluate(self)

    def run_name(self) -> str:
        return run_name(self.cfg)

    def start_files(self) -> dict[str, str]:
        return {"config.yaml": self.cfg.to_yaml(),
                "genotype.json": json.dumps(self.arch.to_dict(), indent=1)}

    def record(self, metrics: dict[str, float], train_s: float, eval_s: float) -> dict[str, Any]:
        return {"epoch": self.epoch, **_round(metrics),
                "train_time_s": round(train_s, 3), "eval_time_s": round(eval_s, 3),
                "epoch_time_s": round(train_s + eval_s, 3),
                "images_per_s": round(self.steps_per_epoch * self.images_per_step / train_s, 2)}

    def epoch_files(self, run: RunDir, history: list[dict[str, Any]],
                    pictures: Mapping[str, torch.Tensor]) -> None:
        run.write_text("summary.json", json.dumps(summary(self, history), indent=1))

    def pictures(self) -> dict[str, torch.Tensor]:
        return {}

    def finish(self, run: RunDir | None, history: list[dict[str, Any]]) -> dict[str, Any]:
        """The summary (summary.json, rewritten after every epoch, already holds it)."""
        return summary(self, history)

    def state(self, log_lines: int = 0, epoch_elapsed_s: float = 0.0) -> dict[str, Any]:
        return checkpoint_state(self, log_lines, epoch_elapsed_s)

    def restore(self, ckpt: dict[str, Any]) -> float:
        return restore_trainer(self, ckpt)


def build_trainer(cfg: TrainConfig) -> Trainer:
    """Validate the genotype, load data, build the network and optimizer (writes nothing)."""
    started = time.perf_counter()
    _, arch = load_architecture(cfg)  # a bad genotype fails before any data is read
    set_threads(cfg.run.threads)
    dist = distributed.setup(resolve_device(cfg.run.device))
    device = dist.device
    seed_everything(cfg.run.seed)
    batch = dist.split_batch(cfg.optim.batch_size)
    info, train_loader, test_loader = build_train_loaders(
        cfg.data, batch, device, cfg.run.seed, dist.rank, dist.world_size)
    model = build_network(cfg, arch, info.num_classes).to(device)
    params = count_parameters(model)
    madds = count_multiply_adds(model, cfg.data.image_size)
    if cfg.run.channels_last:
        model = model.to(memory_format=torch.channels_last)
        train_loader.channels_last = test_loader.channels_last = True
    net: nn.Module = model
    if dist.enabled:
        dist.broadcast_module(model)
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None)
        seed_everything(cfg.run.seed + 1_000_003 * dist.rank)  # independent drop-path masks
    o = cfg.optim
    optimizer = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum,
                                nesterov=o.nesterov, weight_decay=o.weight_decay)
    return Trainer(cfg, dist, info, arch, model, net, optimizer, train_loader, test_loader,
                   params, madds, started=started)


def train_epoch(t: Trainer, hook: StepHook | None = None) -> dict[str, float]:
    """The rest of the current pass over the training split (all of it unless resumed
    mid-epoch); returns the epoch's mean loss and accuracy. ``hook(images, loss)`` runs after
    every step (progress, mid-epoch checkpoints)."""
    o = t.cfg.optim
    lr = lr_at(t.epoch, o)
    for g in t.optimizer.param_groups:
        g["lr"] = lr
    drop = o.drop_path * t.epoch / o.epochs  # linear ramp from 0
    t.model.drop_path_prob = drop
    rates = {"lr": lr, "drop_path": drop}
    t.net.train()
    dev = t.device
    if t.sums is None:
        t.sums = torch.zeros(3, device=dev)  # loss sum, correct, images
    for x, y in t.train_loader:  # a restored loader continues its pass at step t.step
        step = t.global_step + 1  # 1-based, counted over the run
        with t.autocast():
            logits, aux = t.net(x)
            loss = F.cross_entropy(logits, y, label_smoothing=o.label_smoothing)
            terms = {"cls": loss.detach()}
            if aux is not None:  # also at weight 0, so DDP sees every parameter used
                aux_loss = F.cross_entropy(aux, y, label_smoothing=o.label_smoothing)
                loss = loss + o.aux_weight * aux_loss
                terms["aux"] = aux_loss.detach()
        if step == t.nan_step:  # fault injection: a diverged step
            loss = loss * float("nan")
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if o.grad_clip > 0:
            nn.utils.clip_grad_norm_(t.model.parameters(), o.grad_clip)
        t.optimizer.step()
        terms = {"loss": loss, **terms}
        t.guard.update(step, terms)
        t.sums += torch.stack([loss.detach().float() * len(y),
                               (logits.detach().argmax(1) == y).sum().float(),
                               y.new_full((), len(y), dtype=torch.float)])  # no host copy
        t.step += 1
        if hook is not None:
            hook(len(y), terms, rates)
    loss_total, correct_total, n = t.dist.sum_(t.sums).tolist()
    t.sums, t.step = None, 0
    return {"lr": lr, "drop_path": drop, "train_loss": loss_total / n,
            "train_acc": 100.0 * correct_total / n}


@torch.no_grad()
def evaluate(t: Trainer) -> dict[str, float]:
    """Cross-entropy, top-1 and top-5 accuracy (%) on the whole test split (all ranks)."""
    t.model.eval()
    sums = torch.zeros(3, device=t.device, dtype=torch.float64)  # loss, top-1, top-5 hits
    seen = 0
    k = min(5, t.info.num_classes)
    for x, y in t.test_loader:
        with t.autocast():
            logits, _ = t.model(x)
        logits = logits.float()
        hit = logits.topk(k, dim=1).indices == y[:, None]  # [B, k]
        sums += torch.stack([F.cross_entropy(logits, y, reduction="sum"),
                             hit[:, 0].sum(), hit.any(1).sum()]).double()
        seen += len(y)
    totals = torch.cat([sums, torch.tensor([float(seen)], dtype=torch.float64, device=t.device)])
    loss, top1, top5, n = t.dist.sum_(totals).tolist()
    return {"test_loss": loss / n, "test_top1": 100.0 * top1 / n, "test_top5": 100.0 * top5 / n}


def checkpoint_state(t: Trainer, log_lines: int = 0, epoch_elapsed_s: float = 0.0
                     ) -> dict[str, Any]:
    """Tensors, numbers and JSON strings only (loadable with ``weights_only=True``): the
    network, the optimizer, and under ``resume`` every random state, the training loader's
    position, the epoch's partial sums and how many log lines precede this checkpoint."""
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": t.epoch,
        "step": t.step,
        "network": t.cfg.model.network,
        "num_classes": t.info.num_classes,
        "config": t.cfg.to_json(),
        "genotype": json.dumps(t.arch.to_dict()),
        "model": t.model.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "resume": {
            "device": t.device.type,
            "rng": capture_rng(t.device),
            "train_loader": t.train_loader.state_dict(),
            "sums": t.sums,
            "log_lines": log_lines,
            "epoch_elapsed_s": epoch_elapsed_s,
        },
    }


def restore_trainer(t: Trainer, ckpt: dict[str, Any]) -> float:
    """Load a :func:`checkpoint_state` into a freshly built trainer; returns the seconds
    the interrupted epoch had already run."""
    r = ckpt["resume"]
    if json.loads(ckpt["genotype"]) != t.arch.to_dict():  # e.g. a genotype file rewritten since
        raise ConfigError(f"the genotype {t.cfg.model.genotype!r} names another cell than the "
                          f"checkpoint's ({json.loads(ckpt['genotype'])}); restore it to resume")
    try:
        t.model.load_state_dict(ckpt["model"])
        t.optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunDirError(f"the checkpoint does not fit this run's network: "
                          f"{str(e).splitlines()[0][:200]}") from None
    restore_rng(r["rng"], t.device)
    t.train_loader.load_state_dict(r["train_loader"])
    t.sums = None if r["sums"] is None else r["sums"].to(t.device)
    t.epoch, t.step = int(ckpt["epoch"]), int(ckpt["step"])
    return float(r["epoch_elapsed_s"])


def _genotype_label(spec: str) -> str:
    if spec in GENOTYPES:
        return spec
    p = Path(spec)
    label = p.stem if p.exists() else "genotype"
    if p.is_dir():
        label = p.resolve().name
    return re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:40] or "genotype"


def run_name(cfg: TrainConfig) -> str:
    if cfg.run.run_name:
        return cfg.run.run_name
    return default_run_name(cfg, cfg.model.network, _genotype_label(cfg.model.genotype))


@dataclass
class TrainResult:
    summary: dict[str, Any]  # what summary.json holds (final-epoch figures, size, time)
    history: list[dict[str, Any]]  # one record per epoch (what log.jsonl holds)
    run_dir: Path | None
    trainer: Trainer  # the network (trainer.model), optimizer, loaders
    done_before: bool = False  # a resumed run that had already finished: nothing changed


def summary(t: Trainer, history: list[dict[str, Any]]) -> dict[str, Any]:
    """What summary.json holds: the network, its size, and the FINAL epoch's test figures."""
    last = history[-1] if history else {}
    out: dict[str, Any] = {
        "network": t.cfg.model.network,
        "genotype": str(t.arch),
        "dataset": t.info.name,
        "preset": t.cfg.preset,
        "smoke_test": "smoke test" in (TRAIN_PRESETS[t.cfg.preset][0] if t.cfg.preset in TRAIN_PRESETS
                                       else ""),
        "params": t.params,
        "params_M": round(t.params / 1e6, 3),  # without the auxiliary head
        "madds_M": round(t.madds / 1e6, 1),  # one image at image_size
        "image_size": t.cfg.data.image_size,
        "epochs": t.cfg.optim.epochs,
        "epochs_done": t.epoch,
        "test_images": t.test_loader.num_images,  # the test accuracy's denominator
        "world_size": t.dist.world_size,
        "final_test_top1": last.get("test_top1"),
        "final_test_top5": last.get("test_top5"),
        "final_test_loss": last.get("test_loss"),
        "train_time_s": round(sum(r["train_time_s"] for r in history), 2),
        "total_time_s": round(time.perf_counter() - t.started, 2),
    }
    if history:
        best = max(history, key=lambda r: r["test_top1"])
        out["best_epoch_test_top1"] = {
            "epoch": best["epoch"], "test_top1": best["test_top1"],
            "note": "best epoch picked on the test set: optimistic, not the reported figure"}
    return out


def _round(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in d.items()}


def train(cfg: TrainConfig, overwrite: bool = False, progress: bool = True,
          write: bool = True, resume: str | Path | None = None,
          sinks: Sequence[Sink] = ()) -> TrainResult:
    """Train ``cfg.model.genotype`` from scratch; with ``write``, rank 0 fills a run folder.

    ``resume``: a run folder whose checkpoint.pt to continue from (``cfg`` must be the run's
    config, up to fields that change nothing computed); the run then ends exactly as the
    uninterrupted one would have. ``sinks``: loggers that get each epoch's record. Raises
    :class:`DivergenceError` when the loss becomes NaN or infinite, keeping the last good
    checkpoint.
    """
    out = run_job(lambda: build_trainer(cfg), write=write, overwrite=overwrite, resume=resume,
                  progress=progress, sinks=sinks)
    return TrainResult(out.final or {}, out.history, out.run.path if out.run else None, out.job,
                       out.done_before)
