"""The bi-level search as a job of the run lifecycle (:mod:`mimdarts.lifecycle`): building a
search, its run-folder plumbing (records, epoch files, checkpoints, result files); the
algorithm itself (epochs, evaluations, curvature, the pick of the returned epoch) is in
:mod:`mimdarts.search.algorithm`.

Per iteration one α step on a batch of the val half, then one w step on a batch of the
train half (:class:`~mimdarts.search.bilevel.BilevelStep`); after each epoch the val half's
head is scored, optionally the α-Hessian's top eigenvalue is measured, and the cell is
derived.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .. import distributed, faults
from ..config import SearchConfig, inert_settings, refuse_inert
from ..data import DatasetInfo, DeviceLoader, FolderLoader, build_search_loaders
from ..errors import ConfigError, RunDirError
from ..guard import DivergenceGuard
from ..lifecycle import Sink, StepHook, run_job
from ..nasbench201 import benchmark_figures
from ..resume import capture_rng, restore_rng
from ..rundir import RunDir, default_run_name, run_metadata, save_png
from ..runtime import autocast_dtype, resolve_device, seed_everything, set_threads
from ..spaces import Architecture, Supernet, get_space, load_arch
from ..spaces.facts import space_facts
from ..switches import resolve_cuda_graphs, resolve_group_edges
from ..train.networks import paper_network_params
from .algorithm import (
    EpochMeter,
    epoch_metrics,
    final_epoch,
    poisoned,
    run_epoch,
    selection_text,
    streams_untouched,
)
from .architect import Architect, Regularizer
from .bilevel import BilevelStep
from .catalog import OBJECTIVES, check_objective, objective_settings
from .cudagraph import GraphedIteration
from .objectives.base import LossResult, Objective, build_objective

CHECKPOINT_FORMAT = "mimdarts-search-v1"


@dataclass
class Searcher:
    """A search run: built once by :func:`build_searcher`, driven by the run lifecycle."""

    cfg: SearchConfig
    info: DatasetInfo
    model: Supernet
    objective: Objective
    bilevel: BilevelStep  # one iteration: α step, then w step
    train_loader: DeviceLoader | FolderLoader  # the train half: w steps
    val_loader: DeviceLoader | FolderLoader  # the val half: α steps, evaluation
    dist: distributed.Dist = field(default_factory=distributed.Dist)  # data-parallel rank
    graphed: GraphedIteration | None = None  # run.cuda_graphs on a CUDA device, one process
    resolved: dict[str, Any] = field(default_factory=dict)  # what `auto` settings became
    epoch: int = 0  # completed epochs
    step: int = 0  # iterations done in the current epoch
    kind: str = "search"
    checkpoint_format: str = CHECKPOINT_FORMAT
    val_stream: Iterator = field(init=False)
    meter: EpochMeter = field(init=False)  # the current epoch's sums so far
    guard: DivergenceGuard = field(init=False)
    nan_step: int = field(init=False)  # fault injection (mimdarts.faults); 0 = off
    result_arch: Architecture | None = None  # the found cell, once finished
    arch_epoch: int = 0  # the epoch (1-based) it comes from

    def __post_init__(self) -> None:
        # One persistent iterator over the val half: never rebuilt per step. It starts lazily,
        # so restoring the val loader's state before the first step continues its stream.
        self.val_stream = self.val_loader.forever()
        self.meter = EpochMeter()
        # every rank stops at the first bad step of any rank
        self.guard = DivergenceGuard(self.device, self.dist.min_ if self.dist.enabled else None)
        self.nan_step = faults.nan_step()

    @property
    def device(self) -> torch.device:
        return self.dist.device

    @property
    def architect(self) -> Architect:
        return self.bilevel.architect

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    @property
    def images_per_step(self) -> int:
        return 2 * self.cfg.optim.batch_size  # a train batch and a val batch

    @property
    def global_step(self) -> int:
        """Iterations done since the start of the run."""
        return self.epoch * self.steps_per_epoch + self.step

    def iteration(self, x: torch.Tensor, y: torch.Tensor, x_val: torch.Tensor,
                  y_val: torch.Tensor, lr: float, regularizer: Regularizer | None = None
                  ) -> tuple[LossResult, LossResult]:
        """One bi-level iteration, through the CUDA graph when there is one."""
        if self.global_step + 1 == self.nan_step:  # mimdarts.faults
            x = poisoned(x)
        if self.graphed is not None:  # lr and λ_β change per epoch: the epoch keys the graph
            return self.graphed(x, y, x_val, y_val, lr, regularizer, key=self.epoch)
        return self.bilevel(x, y, x_val, y_val, lr, regularizer)

    # ----------------------------------------------------------- the lifecycle's Job
    def train_epoch(self, hook: StepHook | None = None) -> dict[str, float]:
        return run_epoch(self, hook)

    def evaluate(self) -> dict[str, float]:
        return epoch_metrics(self)

    def run_name(self) -> str:
        return run_name(self.cfg)

    def start_files(self) -> dict[str, str]:
        meta = {**run_metadata(self.cfg.run.seed, str(self.device)), "resolved": self.resolved}
        return {"config.yaml": self.cfg.to_yaml(), "meta.json": json.dumps(meta, indent=1)}

    def record(self, metrics: dict[str, float], train_s: float, eval_s: float) -> dict[str, Any]:
        arch = self.model.genotype()
        return {
            "epoch": self.epoch,
            **{k: round(v, 6) for k, v in metrics.items()},
            "epoch_time_s": round(train_s, 3),  # the search steps only
            "images_per_s": round(self.steps_per_epoch * self.images_per_step / train_s, 2),
            "genotype": str(arch),
            **arch.summary(),
            **benchmark_figures(arch),
            "alpha_weights": {k: [[round(x, 5) for x in row] for row in w.cpu().tolist()]
                             for k, w in self.model.alpha_weights().items()},
        }

    def epoch_files(self, run: RunDir, history: list[dict[str, Any]],
                    pictures: Mapping[str, torch.Tensor]) -> None:
        run.write_text("genotype.json", json.dumps(self.model.genotype().to_dict(), indent=1))
        for name, grid in pictures.items():  # the MIM reconstructions
            save_png(grid, run.path / f"{name}_e{self.epoch:03d}.png")

    def pictures(self) -> dict[str, torch.Tensor]:
        every, epochs = self.cfg.objective.snapshot_every, self.cfg.optim.epochs
        if not every or not (self.epoch % every == 0 or self.epoch == epochs):
            return {}
        with streams_untouched(self.device):  # a picture changes no step of the run
            x, y = next(iter(self.val_loader.head(8)))
            grid = self.objective.snapshot_grid(self.model, x[:8], y[:8])
        return {} if grid is None else {"recon": grid}  # inputs, masked, reconstructed, pasted

    def state(self, log_lines: int = 0, epoch_elapsed_s: float = 0.0) -> dict[str, Any]:
        return checkpoint_state(self, log_lines, epoch_elapsed_s)

    def restore(self, ckpt: dict[str, Any]) -> float:
        return restore_searcher(self, ckpt)

    def finish(self, run: RunDir | None, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Pick the final cell (``optim.final_arch``); with ``run``, write genotype.json and,
        last, result.json (its presence marks a finished run: sweeps skip those)."""
        self.arch_epoch = final_epoch(history, self.cfg.optim.final_arch)
        self.result_arch = self.model.genotype()
        if self.arch_epoch != len(history):
            self.result_arch = load_arch(self.cfg.model.space, history[self.arch_epoch - 1]["genotype"])
        result = result_summary(self, history, self.arch_epoch, self.result_arch)
        if run is not None:
            run.write_text("genotype.json", json.dumps(self.result_arch.to_dict(), indent=1))
            run.write_text("result.json", json.dumps(result, indent=1))
        return result


def build_searcher(cfg: SearchConfig) -> Searcher:
    """Validate names, load data and build model, objective and optimizers (writes nothing)."""
    space = get_space(cfg.model.space)
    check_objective(cfg.objective.objective)
    set_threads(cfg.run.threads)
    dist = distributed.setup(resolve_device(cfg.run.device))  # 1 process unless torchrun
    device = dist.device
    refuse_inert(cfg, inert_settings(cfg, OBJECTIVES[cfg.objective.objective].reads,
                                     device.type, dist.world_size))
    objective_settings(cfg.objective)  # its own settings: a bad name or value stops here
    seed_everything(cfg.run.seed)
    info, train_loader, val_loader = build_search_loaders(
        cfg.data, cfg.optim.batch_size, device, cfg.run.seed, dist.rank, dist.world_size)
    grouped = resolve_group_edges(cfg.model.group_edges, cfg.model.skip_none, device.type,
                                  cfg.optim.batch_size // dist.world_size, cfg.model.channels,
                                  info.image_size)
    model = space.build(replace(cfg.model, group_edges=str(grouped).lower()),
                        info.num_classes).to(device)
    if cfg.run.channels_last:
        model = model.to(memory_format=torch.channels_last)
        train_loader.channels_last = val_loader.channels_last = True
    objective = build_objective(cfg.objective, model, info, cfg.run.seed + 1_000_003 * dist.rank,
                                device)
    if cfg.run.channels_last:  # its heads (the MIM decoder...) read channels_last features
        objective = objective.to(memory_format=torch.channels_last)
    dist.broadcast_module(model, objective)  # identical w and α on every rank
    graphs, why_graphs = resolve_cuda_graphs(cfg.run.cuda_graphs, device.type, dist.world_size,
                                             fault_injection=faults.nan_step() != 0,
                                             process_group=dist.enabled)
    bilevel = _build_bilevel(cfg, model, objective, dist, capturable=graphs)
    s = Searcher(cfg, info, model, objective, bilevel, train_loader, val_loader, dist=dist,
                 resolved={"group_edges": grouped, "cuda_graphs": why_graphs})
    if graphs:
        s.graphed = GraphedIteration(bilevel, device, [objective.generator])
    return s


def _build_bilevel(cfg: SearchConfig, model: Supernet, objective: Objective,
                   dist: distributed.Dist, capturable: bool) -> BilevelStep:
    """The two optimizers (SGD on w, Adam on α), the architect and the iteration."""
    o = cfg.optim
    w_params = model.weight_parameters() + list(objective.parameters())
    w_opt = torch.optim.SGD(w_params, lr=o.w_lr, momentum=o.w_momentum,
                            weight_decay=o.w_weight_decay)
    # capturable: Adam keeps its step count on the device, so a CUDA graph can replay it
    alpha_opt = torch.optim.Adam(model.alpha_parameters(), lr=o.arch_lr,
                                 betas=(o.arch_beta1, o.arch_beta2),
                                 weight_decay=o.arch_weight_decay, capturable=capturable)
    architect = Architect(model, objective, alpha_opt, w_opt, o.order, o.unrolled_eps,
                          # dtype=auto: fp32 for a search on CUDA too. On an H200 at the DARTS
                          # paper shape the fp32 graphed iteration took 0.137 s and the bf16
                          # one over 3 s (docs/speed.md, "GPU"); bf16 stays a choice
                          amp_dtype=autocast_dtype(cfg.run.dtype, dist.device, bf16_on_cuda=False),
                          grad_sync=dist.average_ if dist.enabled else None)
    return BilevelStep(model, objective, architect, w_opt, o.w_grad_clip, dist)


def run_name(cfg: SearchConfig) -> str:
    if cfg.run.run_name:
        return cfg.run.run_name
    return default_run_name(cfg, cfg.model.space, cfg.objective.objective)


def checkpoint_state(s: Searcher, log_lines: int = 0, epoch_elapsed_s: float = 0.0
                     ) -> dict[str, Any]:
    """A plain dict of tensors, numbers and JSON strings (loadable with weights_only=True):
    weights, α, objective, optimizers, and under ``resume`` every random state, both loaders'
    positions, the epoch's partial sums and how many log lines precede this checkpoint."""
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": s.epoch,
        "step": s.step,
        "config": s.cfg.to_json(),
        "genotype": json.dumps(s.model.genotype().to_dict()),
        "model": s.model.state_dict(),
        "objective": s.objective.state_dict(),
        "w_optimizer": s.bilevel.w_optimizer.state_dict(),
        "alpha_optimizer": s.bilevel.alpha_optimizer.state_dict(),
        "resume": {
            "device": s.device.type,
            "rng": capture_rng(s.device),
            "objective_generator": s.objective.generator.get_state(),
            "train_loader": s.train_loader.state_dict(),
            "val_loader": s.val_loader.state_dict(),
            "meter": s.meter.state_dict(),
            "log_lines": log_lines,
            "epoch_elapsed_s": epoch_elapsed_s,
            "resolved": json.dumps(s.resolved),  # what `auto` settings became (the layout)
        },
    }


def restore_searcher(s: Searcher, ckpt: dict[str, Any]) -> float:
    """Load a :func:`checkpoint_state` into a freshly built searcher; returns the seconds
    the interrupted epoch had already run."""
    r = ckpt["resume"]
    saved = json.loads(r.get("resolved", "{}"))  # absent before group_edges=auto existed
    if "group_edges" in saved and saved["group_edges"] != s.resolved["group_edges"]:
        was, now = (("grouped" if g else "per-edge") for g in (saved["group_edges"],
                                                                s.resolved["group_edges"]))
        raise ConfigError(f"the checkpoint holds a {was} supernet, but group_edges="
                          f"{s.cfg.model.group_edges} gives a {now} one here (another device, "
                          "batch or mimdarts version); resume where it was written")
    try:
        s.model.load_state_dict(ckpt["model"])
        s.objective.load_state_dict(ckpt["objective"])
        s.bilevel.w_optimizer.load_state_dict(ckpt["w_optimizer"])
        # (`a_optimizer` in checkpoints written before α had one name, up to 2026-12)
        s.bilevel.alpha_optimizer.load_state_dict(ckpt.get("alpha_optimizer", ckpt.get("a_optimizer")))
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunDirError(f"the checkpoint does not fit this run's model: "
                          f"{str(e).splitlines()[0][:200]}") from None
    # Adam's param groups come back as saved, `capturable` included: keep this run's
    # setting (a run may be resumed with cuda_graphs switched), its step count on the device
    capturable = s.graphed is not None
    alpha_opt = s.bilevel.alpha_optimizer
    for group in alpha_opt.param_groups:
        group["capturable"] = capturable
        for p in group["params"]:
            state = alpha_opt.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(p.device if capturable else "cpu")
    restore_rng(r["rng"], s.device)
    s.objective.generator.set_state(r["objective_generator"])
    # checkpoints written before the halves were named train/val call them w_/a_loader
    s.train_loader.load_state_dict(r["train_loader"] if "train_loader" in r else r["w_loader"])
    s.val_loader.load_state_dict(r["val_loader"] if "val_loader" in r else r["a_loader"])
    s.meter.load_state_dict(r["meter"], s.device)
    s.epoch, s.step = int(ckpt["epoch"]), int(ckpt["step"])
    return float(r["epoch_elapsed_s"])


@dataclass
class SearchResult:
    genotype: Architecture  # the found cell (of epoch `arch_epoch`, see optim.final_arch)
    run_dir: Path | None
    history: list[dict[str, Any]]  # one record per epoch (what log.jsonl holds)
    arch_epoch: int = 0  # the epoch (1-based) the genotype comes from
    summary: dict[str, Any] = field(default_factory=dict)  # what result.json holds
    searcher: Searcher | None = None  # the supernet (searcher.model), objective, optimizers
    done_before: bool = False  # a resumed run that had already finished: nothing changed

    @property
    def supernet(self) -> Supernet | None:
        return None if self.searcher is None else self.searcher.model


def search(cfg: SearchConfig, overwrite: bool = False, progress: bool = True,
           write: bool = True, resume: str | Path | None = None,
           sinks: Sequence[Sink] = ()) -> SearchResult:
    """Run a whole search; with ``write`` every epoch is logged to a new run folder.

    ``resume``: a run folder whose checkpoint.pt to continue from (``cfg`` must be the
    run's config, up to fields that change nothing computed); the run then ends exactly
    as the uninterrupted run would have (a finished one is left as it is). ``sinks``:
    loggers that get each epoch's record. Raises :class:`DivergenceError` when the loss
    becomes NaN or infinite, keeping the last good checkpoint.
    """
    out = run_job(lambda: build_searcher(cfg), write=write, overwrite=overwrite, resume=resume,
                  progress=progress, sinks=sinks)
    s = out.job
    assert s.result_arch is not None  # set by finish()
    return SearchResult(s.result_arch, out.run.path if out.run else None, out.history,
                        s.arch_epoch, out.final or {}, s, out.done_before)


def result_summary(s: Searcher, history: list[dict[str, Any]], chosen: int,
                   arch: Architecture) -> dict[str, Any]:
    """What result.json holds: the found cell, the epoch it comes from, the search cost and
    that epoch's accuracies and counts."""
    record = history[chosen - 1] if history else {}
    last = s.model.genotype()
    bench = space_facts(s.cfg.model.space).benchmark  # its figures are kept, if it has one
    return {"space": s.cfg.model.space, "dataset": s.cfg.data.dataset, "preset": s.cfg.preset,
            "smoke_test": "smoke test" in _preset_description(s.cfg.preset),
            "genotype": arch.to_dict(), "genotype_text": str(arch),
            "final_arch": s.cfg.optim.final_arch, "arch_epoch": chosen, "epochs": s.epoch,
            "selection": selection_text(s.cfg.optim.final_arch, history, chosen),
            "last_epoch": len(history), "last_genotype": last.to_dict(),
            "last_genotype_text": str(last),
            **{f"last_{k}": v for k, v in (history[-1] if history else {}).items()
               if bench and k.startswith(bench.prefix)},
            "search_hours": sum(r["epoch_time_s"] for r in history) / 3600,
            "device": str(s.device),
            **_eval_network(arch, s.info.num_classes),
            **{k: record[k] for k in record
               if k.endswith("_acc") or k.startswith(("n_", *([bench.prefix] if bench else [])))}}


def _preset_description(name: str) -> str:
    from ..config import PRESETS
    return PRESETS[name][0] if name in PRESETS else ""


def _eval_network(arch: Architecture, num_classes: int) -> dict[str, Any]:
    """The size of the found cell's evaluation network at the papers' shape."""
    params, network = paper_network_params(arch, num_classes)
    return {"eval_params_M": round(params / 1e6, 4), "eval_network": network}
