"""The bi-level search as a job of the run lifecycle (:mod:`mimdarts.lifecycle`).

Per iteration one α step on a batch of the val half, then one w step on a batch of the
train half (:class:`~mimdarts.search.bilevel.BilevelStep`); after each epoch the val half's
head is scored, optionally the α-Hessian's top eigenvalue is measured, and the cell is
derived.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
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
from ..rundir import RunDir, compose_name, run_metadata, save_png
from ..runtime import autocast_dtype, resolve_device, seed_everything, set_threads
from ..schedules import cosine_lr
from ..spaces import Architecture, Supernet, get_space, load_arch
from ..switches import resolve_group_edges
from ..train.networks import paper_network_params
from .architect import Architect, Regularizer, beta_regularizer
from .bilevel import BilevelStep
from .catalog import OBJECTIVES, check_objective
from .cudagraph import GraphedIteration
from .curvature import EigenResult, alpha_ce_hessian_eigen, alpha_hessian_eigen
from .objectives.base import LossResult, Objective, accuracy, build_objective
from .objectives.classification import ClassificationObjective

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
    meter: _Meter = field(init=False)  # the current epoch's sums so far
    guard: DivergenceGuard = field(init=False)
    nan_step: int = field(init=False)  # fault injection (mimdarts.faults); 0 = off
    result_arch: Architecture | None = None  # the found cell, once finished
    arch_epoch: int = 0  # the epoch (1-based) it comes from

    def __post_init__(self) -> None:
        # One persistent iterator over the val half: never rebuilt per step. It starts lazily,
        # so restoring the val loader's state before the first step continues its stream.
        self.val_stream = self.val_loader.forever()
        self.meter = _Meter()
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
        if self.graphed is not None:  # lr and λ_β change per epoch: the epoch keys the graph
            return self.graphed(x, y, x_val, y_val, lr, regularizer, key=self.epoch)
        hook = poisoned if self.global_step + 1 == self.nan_step else None  # mimdarts.faults
        return self.bilevel(x, y, x_val, y_val, lr, regularizer, hook)

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
            "arch_weights": {k: [[round(x, 5) for x in row] for row in w.cpu().tolist()]
                             for k, w in self.model.arch_weights().items()},
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
    graphs = cfg.run.cuda_graphs and faults.nan_step() == 0  # (refused off one CUDA process)
    bilevel = _build_bilevel(cfg, model, objective, dist, capturable=graphs)
    s = Searcher(cfg, info, model, objective, bilevel, train_loader, val_loader, dist=dist,
                 resolved={"group_edges": grouped})
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
    alpha_opt = torch.optim.Adam(model.arch_parameters(), lr=o.arch_lr,
                                 betas=(o.arch_beta1, o.arch_beta2),
                                 weight_decay=o.arch_weight_decay, capturable=capturable)
    architect = Architect(model, objective, alpha_opt, w_opt, o.order, o.unrolled_eps,
                          amp_dtype=autocast_dtype(cfg.run.dtype, dist.device),
                          grad_sync=dist.average_ if dist.enabled else None)
    return BilevelStep(model, objective, architect, w_opt, o.w_grad_clip, dist)


def poisoned(res: LossResult) -> LossResult:
    """``res`` with a NaN loss and terms: the fault injection of MIMDARTS_FAULT_NAN_STEP
    (:mod:`mimdarts.faults`), applied before the w step's backward as a real divergence."""
    nan = float("nan")
    return LossResult(res.loss * nan, {k: v * nan for k, v in res.terms.items()},
                      res.logits, res.labels)


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

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.sums = {k: v.to(device) for k, v in state["sums"].items()}
        self.counts = dict(state["counts"])

    def means(self) -> dict[str, float]:
        if not self.sums:
            return {}
        keys = list(self.sums)
        values = torch.stack([self.sums[k] for k in keys]).cpu().tolist()
        return {k: v / self.counts[k] for k, v in zip(keys, values)}


def arch_regularizer(s: Searcher) -> Regularizer | None:
    """The β-DARTS term for this epoch, or None: λ_β = beta_weight * epoch / beta_ramp_epochs."""
    o = s.cfg.objective
    if o.beta_weight <= 0:
        return None
    weight = o.beta_weight * s.epoch / o.beta_ramp_epochs
    return lambda alphas: beta_regularizer(alphas, weight)


@torch.no_grad()
def evaluate(s: Searcher) -> dict[str, float]:
    """Top-1 accuracy on the first ``eval_images`` of the val half (of each rank's shard, summed
    over ranks), clean and as the objective transforms them (masked, rotated...), with a fixed
    generator so epochs compare."""
    n = s.cfg.run.eval_images
    if n == 0:
        return {}
    s.model.eval()
    g = torch.Generator(s.device).manual_seed(0)
    correct = {"clean": torch.zeros((), device=s.device), "input": torch.zeros((), device=s.device)}
    total = 0
    for x, y in s.val_loader.head(n):
        correct["clean"] += accuracy(s.model(x), y)
        prepared = s.objective.prepare(x, y, g)
        if prepared.inputs is not x:
            correct["input"] += accuracy(s.model(prepared.inputs), y)
        total += len(y)
    s.model.train()
    # data-parallel: every rank scored the head of its own shard; sum over ranks (one sync)
    counts = torch.stack([correct["clean"], correct["input"],
                          torch.tensor(float(total), device=s.device)])
    clean, transformed, total = s.dist.sum_(counts).tolist()
    out = {"eval_clean_acc": 100.0 * clean / max(total, 1)}
    if transformed > 0:
        out["eval_input_acc"] = 100.0 * transformed / max(total, 1)
    return out


@torch.no_grad()
def score_val_half(s: Searcher) -> dict[str, float]:
    """The figure ``final_arch=best`` picks by, as the authors' search script computes it after
    every epoch: the objective's loss and accuracy over the WHOLE val half (every rank its
    shard, summed), in eval mode, with the search's augmentation and fresh masks (rotations,
    ...) each epoch. They come from a generator seeded by the run's seed and the epoch, apart
    from the search's streams: scoring changes no step of the run.

    Returns ``select_loss`` (mean per image) and, when the objective classifies,
    ``select_acc`` (%)."""
    s.model.eval()
    s.objective.eval()
    g = torch.Generator(s.device).manual_seed(s.cfg.run.seed * 100_003 + s.epoch)
    sums = torch.zeros(3, device=s.device)  # correct, loss x images, images
    with s.architect.autocast():
        for x, y in s.val_loader.full_pass(g):
            res = s.objective.loss(s.model, s.objective.prepare(x, y, g))
            if res.logits is not None:
                sums[0] += accuracy(res.logits, res.labels)
            sums[1] += res.loss.detach().float() * len(y)
            sums[2] += len(y)
    s.model.train()
    s.objective.train()
    correct, loss, n = s.dist.sum_(sums).tolist()  # one sync per epoch
    out = {"select_loss": loss / max(n, 1)}
    if s.objective.classifies:
        out["select_acc"] = 100.0 * correct / max(n, 1)
    return out


def hessian_eigenvalue(s: Searcher) -> EigenResult:
    """The largest eigenvalue of the Hessian w.r.t. α of the val-half loss: the objective's loss
    plus Adam's L2 term on α, ``arch_weight_decay / 2 · ||α||²``, as RobustDARTS adds it (a
    β-DARTS term is not included), on the val half's first batch (the same images every epoch
    from the device loader; an ImageNet folder's are re-read through its transforms), its
    masks and other randomness drawn from a generator seeded 0 so that epochs compare; in
    fp32. Leaves weights, α, buffers and every random stream as they were."""
    return hessian_eigenvalues(s)[0]


def hessian_eigenvalues(s: Searcher) -> tuple[EigenResult, EigenResult]:
    """(the objective's, the plain cross-entropy's) largest α-Hessian eigenvalue, both on the
    same val-half batch and both with the α L2 term (see :func:`hessian_eigenvalue`). The
    second is the cross-entropy on the clean images whatever the objective: one function
    for every method, so curves of DARTS and MIM-DARTS compare like with like. For plain
    DARTS (``cls`` on clean images) the two are the same function: computed once."""
    x, y = next(iter(s.val_loader.head(s.cfg.optim.batch_size // s.dist.world_size)))
    batch = s.objective.prepare(x, y, torch.Generator(s.device).manual_seed(0))
    iters, wd = s.cfg.optim.hessian_iters, s.cfg.optim.arch_weight_decay
    own = alpha_hessian_eigen(s.model, s.objective, batch, iters=iters, algebraic=True)
    if type(s.objective) is ClassificationObjective and batch.inputs is x:
        ce = own
    else:
        ce = alpha_ce_hessian_eigen(s.model, x, y, iters=iters, algebraic=True)
    # the L2 term adds wd to every eigenvalue
    return tuple(replace(r, eigenvalue=r.eigenvalue + wd) for r in (own, ce))  # type: ignore[return-value]


def run_epoch(s: Searcher, hook: StepHook | None = None) -> dict[str, float]:
    """The rest of the current epoch over the train half (all of it unless resumed
    mid-epoch); returns the mean losses/accuracies of both steps, averaged over ranks.
    ``hook(images, loss)`` runs after every iteration (progress, mid-epoch checkpoints)."""
    cfg = s.cfg
    lr = cosine_lr(s.epoch, cfg.optim.epochs, cfg.optim.w_lr, cfg.optim.w_lr_min)
    for g in s.bilevel.w_optimizer.param_groups:
        g["lr"] = lr
    s.model.train()
    s.objective.train()
    regularizer = arch_regularizer(s)
    rates = {"w_lr": lr, "alpha_lr": cfg.optim.arch_lr}
    for x, y in s.train_loader:  # a restored loader continues its pass at step s.step
        x_val, y_val = next(s.val_stream)
        res, val_res = s.iteration(x, y, x_val, y_val, lr, regularizer)
        s.meter.add_result("train", res, len(y))
        s.meter.add_result("val", val_res, len(y_val))
        terms = {"train_loss": res.loss, **{f"train_{k}": v for k, v in res.terms.items()},
                 "val_loss": val_res.loss, **{f"val_{k}": v for k, v in val_res.terms.items()}}
        s.guard.update(s.global_step + 1, terms)  # 1-based, counted over the run
        s.step += 1
        if hook is not None:
            hook(len(y) + len(y_val), terms, rates)
    out = s.dist.mean_dict(s.meter.means())
    s.meter, s.step = _Meter(), 0
    out["lr"] = lr
    return out


def epoch_metrics(s: Searcher) -> dict[str, float]:
    """After an epoch (``s.epoch`` counts it): the val head's accuracies and, every
    ``hessian_every`` epochs and at the last, the α-Hessian's top eigenvalue."""
    out = evaluate(s)
    if s.cfg.optim.final_arch == "best":
        out.update(score_val_half(s))
    every = s.cfg.optim.hessian_every
    if every and (s.epoch % every == 0 or s.epoch == s.cfg.optim.epochs):
        top, ce = hessian_eigenvalues(s)
        # not converged: a lower bound (the two largest eigenvalues are close)
        out.update(hessian_eig=top.eigenvalue, hessian_converged=float(top.converged),
                   hessian_eig_ce=ce.eigenvalue, hessian_ce_converged=float(ce.converged))
    return out


def run_name(cfg: SearchConfig) -> str:
    if cfg.run.run_name:
        return cfg.run.run_name
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return compose_name(cfg.preset or "custom", cfg.model.space, cfg.objective.objective
                        ) + f"-s{cfg.run.seed}-{stamp}"


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
        "a_optimizer": s.bilevel.alpha_optimizer.state_dict(),
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
        s.bilevel.alpha_optimizer.load_state_dict(ckpt["a_optimizer"])
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
    return {"space": s.cfg.model.space, "dataset": s.cfg.data.dataset, "preset": s.cfg.preset,
            "smoke_test": "smoke test" in _preset_description(s.cfg.preset),
            "genotype": arch.to_dict(), "genotype_text": str(arch),
            "final_arch": s.cfg.optim.final_arch, "arch_epoch": chosen, "epochs": s.epoch,
            "selection": selection_text(s.cfg.optim.final_arch, history, chosen),
            "last_epoch": len(history), "last_genotype": last.to_dict(),
            "last_genotype_text": str(last),
            **{f"last_{k}": v for k, v in (history[-1] if history else {}).items()
               if k.startswith("nb201_")},
            "search_hours": sum(r["epoch_time_s"] for r in history) / 3600,
            "device": str(s.device),
            **_eval_network(arch, s.info.num_classes),
            **{k: record[k] for k in record
               if k.endswith("_acc") or k.startswith(("n_", "nb201_"))}}


def _preset_description(name: str) -> str:
    from ..config import PRESETS
    return PRESETS[name][0] if name in PRESETS else ""


def _eval_network(arch: Architecture, num_classes: int) -> dict[str, Any]:
    """The size of the found cell's evaluation network at the papers' shape."""
    params, network = paper_network_params(arch, num_classes)
    return {"eval_params_M": round(params / 1e6, 4), "eval_network": network}


def final_epoch(history: list[dict[str, Any]], rule: str) -> int:
    """The epoch (1-based) whose cell a search returns: the last one, or under ``best`` the
    first epoch with the highest ``select_acc`` (the whole val half as the objective sees it,
    :func:`score_val_half`), or for an objective that does not classify the first with the
    lowest ``select_loss``. Logs written before the whole-half score existed are ranked by
    the val head's accuracy (``eval_input_acc``, else ``eval_clean_acc``)."""
    if rule == "last" or not history:
        return len(history)
    first = history[0]
    if "select_acc" in first:
        key = lambda r: r["select_acc"]  # noqa: E731
    elif "select_loss" in first:
        key = lambda r: -r["select_loss"]  # noqa: E731
    else:
        key = lambda r: r.get("eval_input_acc", r.get("eval_clean_acc", float("-inf")))  # noqa: E731
    return max(range(len(history)), key=lambda i: (key(history[i]), -i)) + 1


def selection_text(rule: str, history: list[dict[str, Any]], chosen: int) -> str:
    """Why this epoch's cell was returned, in words (result.json and the run's last lines)."""
    if rule == "last" or not history:
        return f"the last epoch's cell ({chosen}), as the DARTS and NAS-Bench-201 scripts return"
    r = history[chosen - 1]
    if "select_acc" in r:
        why = f"the highest accuracy on the whole val half, {r['select_acc']:.2f}%"
    elif "select_loss" in r:
        why = f"the lowest loss on the whole val half, {r['select_loss']:.4g}"
    else:
        why = "the highest accuracy on the val head (a log older than the whole-half score)"
    return (f"epoch {chosen}: {why}, as seen by the objective (first such epoch), as the "
            f"authors' search script picks")
