"""The bi-level search loop: per iteration one α step on an α batch, one w step on a w batch."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .. import distributed
from ..config import SearchConfig
from ..data import DatasetInfo, DeviceLoader, FolderLoader, build_search_loaders
from ..errors import ConfigError, RunDirError
from ..resume import (
    DivergenceGuard,
    capture_rng,
    check_resume_request,
    checkpoint_due,
    kept_checkpoint,
    restore_rng,
    resume_run,
)
from ..rundir import RunDir, run_metadata
from ..runtime import autocast_dtype, resolve_device, seed_everything, set_threads
from ..schedules import cosine_lr
from ..spaces import Architecture, Supernet, get_space, load_arch
from ..switches import resolve_group_edges
from .architect import Architect, Regularizer
from .cudagraph import GraphedIteration
from .curvature import EigenResult, alpha_hessian_eigen
from .objective import LossResult, Objective, accuracy, beta_regularizer, build_objective, check_objective


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
    step: int = 0  # iterations done in the current epoch
    meter: _Meter = field(init=False)  # the current epoch's sums so far
    guard: DivergenceGuard = field(init=False)
    graphed: GraphedIteration | None = None  # run.cuda_graphs on a CUDA device, one process
    resolved: dict[str, Any] = field(default_factory=dict)  # what `auto` settings became

    def __post_init__(self) -> None:
        # One persistent iterator over the α half: never rebuilt per step. It starts lazily,
        # so restoring the α loader's state before the first step continues its stream.
        self.a_stream = self.a_loader.forever()
        self.meter = _Meter()
        self.guard = DivergenceGuard(self.device)

    @property
    def global_step(self) -> int:
        """Iterations done since the start of the run."""
        return self.epoch * len(self.w_loader) + self.step

    @property
    def w_params(self) -> list[torch.nn.Parameter]:
        return self.architect.weights


def build_searcher(cfg: SearchConfig) -> Searcher:
    """Validate names, load data and build model, objective and optimizers (writes nothing)."""
    space = get_space(cfg.model.space)
    check_objective(cfg.objective.objective)
    set_threads(cfg.run.threads)
    dist = distributed.setup(resolve_device(cfg.run.device))  # 1 process unless torchrun
    device = dist.device
    seed_everything(cfg.run.seed)
    info, w_loader, a_loader = build_search_loaders(cfg.data, cfg.optim.batch_size, device,
                                                    cfg.run.seed, dist.rank, dist.world_size)
    grouped = resolve_group_edges(cfg.model.group_edges, cfg.model.skip_none, device.type,
                                  cfg.optim.batch_size // dist.world_size, cfg.model.channels,
                                  info.image_size)
    model_cfg = replace(cfg.model, group_edges=str(grouped).lower())
    model = space.build(model_cfg, info.num_classes).to(device)
    if cfg.run.channels_last:
        model = model.to(memory_format=torch.channels_last)
        w_loader.channels_last = a_loader.channels_last = True
    objective = build_objective(cfg.objective, model, info, cfg.run.seed + 1_000_003 * dist.rank,
                                device)
    if cfg.optim.final_arch == "best" and not objective.classifies:
        raise ConfigError(f"final_arch=best picks the epoch by its α-half accuracy, but objective "
                          f"{cfg.objective.objective!r} trains no classifier; use final_arch=last")
    if cfg.run.channels_last:  # its heads (the MIM decoder...) read channels_last features
        objective = objective.to(memory_format=torch.channels_last)
    dist.broadcast_module(model, objective)  # identical w and α on every rank
    o = cfg.optim
    w_params = model.weight_parameters() + list(objective.parameters())
    w_opt = torch.optim.SGD(w_params, lr=o.w_lr, momentum=o.w_momentum,
                            weight_decay=o.w_weight_decay)
    graphs = (cfg.run.cuda_graphs and device.type == "cuda" and not dist.enabled
              and cfg.run.fault_nan_step == 0)
    # capturable: Adam keeps its step count on the device, so a CUDA graph can replay it
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=o.arch_lr,
                             betas=(o.arch_beta1, o.arch_beta2), weight_decay=o.arch_weight_decay,
                             capturable=graphs)
    architect = Architect(model, objective, a_opt, w_opt, o.order, o.unrolled_eps,
                          amp_dtype=autocast_dtype(cfg.run.dtype, device),
                          grad_sync=dist.average_ if dist.enabled else None)
    s = Searcher(cfg, device, info, model, objective, architect, w_opt, w_loader, a_loader,
                 dist=dist, resolved={"group_edges": grouped})
    if graphs:
        s.graphed = GraphedIteration(
            lambda x, y, xa, ya, lr, reg: search_iteration(s, x, y, xa, ya, lr, reg),
            device, [objective.generator])
    return s


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
    """Top-1 accuracy on the first ``eval_images`` of the α half (of each rank's shard, summed
    over ranks), clean and as the objective transforms them (masked, rotated...), with a fixed
    generator so epochs compare."""
    n = s.cfg.run.eval_images
    if n == 0:
        return {}
    s.model.eval()
    g = torch.Generator(s.device).manual_seed(0)
    correct = {"clean": torch.zeros((), device=s.device), "input": torch.zeros((), device=s.device)}
    total = 0
    for x, y in s.a_loader.head(n):
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


def hessian_eigenvalue(s: Searcher) -> EigenResult:
    """The largest eigenvalue of the Hessian w.r.t. α of the α-half loss: the objective's loss
    plus Adam's L2 term on α, ``arch_weight_decay / 2 · ||α||²``, as RobustDARTS adds it (a
    β-DARTS term is not included), on the α half's first batch (the same images every epoch
    from the device loader; an ImageNet folder's are re-read through its transforms), its
    masks and other randomness drawn from a generator seeded 0 so that epochs compare; in
    fp32. Leaves weights, α, buffers and every random stream as they were."""
    x, y = next(iter(s.a_loader.head(s.cfg.optim.batch_size // s.dist.world_size)))
    batch = s.objective.prepare(x, y, torch.Generator(s.device).manual_seed(0))
    top = alpha_hessian_eigen(s.model, s.objective, batch, iters=s.cfg.optim.hessian_iters,
                              algebraic=True)
    # the L2 term adds wd to every eigenvalue
    return replace(top, eigenvalue=top.eigenvalue + s.cfg.optim.arch_weight_decay)


def poisoned(res: LossResult) -> LossResult:
    """``res`` with a NaN loss and terms (the ``fault_nan_step`` testing aid)."""
    nan = float("nan")
    return LossResult(res.loss * nan, {k: v * nan for k, v in res.terms.items()},
                      res.logits, res.labels)


def search_iteration(s: Searcher, x: torch.Tensor, y: torch.Tensor, xa: torch.Tensor,
                     ya: torch.Tensor, lr: float, regularizer: Regularizer | None = None,
                     fault: bool = False) -> tuple[LossResult, LossResult]:
    """One bi-level iteration: an α step on (xa, ya), then a w step on (x, y).
    ``fault``: make the w loss NaN (a testing aid)."""
    train = s.objective.prepare(x, y)
    val = s.objective.prepare(xa, ya)
    a_res = s.architect.step(train, val, lr, regularizer)
    s.w_optimizer.zero_grad(set_to_none=True)
    with s.architect.autocast():
        res = s.objective.loss(s.model, train)
    if fault:
        res = poisoned(res)
    # Only w needs gradients here: α's are not accumulated by this backward.
    torch.autograd.backward(res.loss, inputs=s.w_params)
    s.dist.average_gradients(s.w_params)  # no-op on one process
    if s.cfg.optim.w_grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(s.w_params, s.cfg.optim.w_grad_clip)
    s.w_optimizer.step()
    return res, a_res


def train_epoch(s: Searcher, bar: tqdm | None = None,
                on_step: Callable[[Searcher], None] | None = None) -> dict[str, float]:
    """The rest of the current epoch over the w half (all of it unless resumed mid-epoch);
    returns mean losses/accuracies of both steps. ``on_step(s)`` runs after every iteration
    (mid-epoch checkpoints)."""
    cfg = s.cfg
    lr = cosine_lr(s.epoch, cfg.optim.epochs, cfg.optim.w_lr, cfg.optim.w_lr_min)
    for g in s.w_optimizer.param_groups:
        g["lr"] = lr
    s.model.train()
    s.objective.train()
    regularizer = arch_regularizer(s)
    for x, y in s.w_loader:  # a restored loader continues its pass at step s.step
        xa, ya = next(s.a_stream)
        step = s.global_step + 1  # 1-based, counted over the run
        if s.graphed is not None:  # lr and λ_β change per epoch: the epoch keys the graph
            res, a_res = s.graphed(x, y, xa, ya, lr, regularizer, key=s.epoch)
        else:
            res, a_res = search_iteration(s, x, y, xa, ya, lr, regularizer,
                                          fault=step == cfg.run.fault_nan_step)
        s.meter.add_result("train", res, len(y))
        s.meter.add_result("val", a_res, len(ya))
        s.guard.update(step, {"train_loss": res.loss,
                              **{f"train_{k}": v for k, v in res.terms.items()},
                              "val_loss": a_res.loss,
                              **{f"val_{k}": v for k, v in a_res.terms.items()}})
        s.step += 1
        if bar is not None:
            bar.update((len(y) + len(ya)) * s.dist.world_size)
            if s.step % cfg.run.log_every == 0:
                bar.set_postfix(loss=f"{res.loss.item():.3f}", refresh=False)
        if on_step is not None:
            on_step(s)
    out = s.meter.means()
    s.meter, s.step = _Meter(), 0
    out["lr"] = lr
    return out


def _run_name(cfg: SearchConfig) -> str:
    if cfg.run.run_name:
        return cfg.run.run_name
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (f"{cfg.preset or 'custom'}-{cfg.model.space}-{cfg.objective.objective}"
            f"-s{cfg.run.seed}-{stamp}")


CHECKPOINT_FORMAT = "mimdarts-search-v1"


def checkpoint_state(s: Searcher, arch: Architecture, log_lines: int = 0,
                     epoch_elapsed_s: float = 0.0) -> dict[str, Any]:
    """A plain dict of tensors, numbers and JSON strings (loadable with weights_only=True):
    weights, α, objective, optimizers, and under ``resume`` every random state, both loaders'
    positions, the epoch's partial sums and how many log lines precede this checkpoint."""
    return {
        "format": CHECKPOINT_FORMAT,
        "epoch": s.epoch,
        "step": s.step,
        "config": s.cfg.to_json(),
        "genotype": json.dumps(arch.to_dict()),
        "model": s.model.state_dict(),
        "objective": s.objective.state_dict(),
        "w_optimizer": s.w_optimizer.state_dict(),
        "a_optimizer": s.architect.optimizer.state_dict(),
        "resume": {
            "device": s.device.type,
            "rng": capture_rng(s.device),
            "objective_generator": s.objective.generator.get_state(),
            "w_loader": s.w_loader.state_dict(),
            "a_loader": s.a_loader.state_dict(),
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
        s.w_optimizer.load_state_dict(ckpt["w_optimizer"])
        s.architect.optimizer.load_state_dict(ckpt["a_optimizer"])
    except (RuntimeError, ValueError, KeyError) as e:
        raise RunDirError(f"the checkpoint does not fit this run's model: "
                          f"{str(e).splitlines()[0][:200]}") from None
    # Adam's param groups come back as saved, `capturable` included: keep this run's
    # setting (a run may be resumed with cuda_graphs switched), its step count on the device
    capturable = s.graphed is not None
    for group in s.architect.optimizer.param_groups:
        group["capturable"] = capturable
        for p in group["params"]:
            state = s.architect.optimizer.state.get(p, {})
            if "step" in state:
                state["step"] = state["step"].to(p.device if capturable else "cpu")
    restore_rng(r["rng"], s.device)
    s.objective.generator.set_state(r["objective_generator"])
    s.w_loader.load_state_dict(r["w_loader"])
    s.a_loader.load_state_dict(r["a_loader"])
    s.meter.load_state_dict(r["meter"], s.device)
    s.epoch, s.step = int(ckpt["epoch"]), int(ckpt["step"])
    return float(r["epoch_elapsed_s"])


@dataclass
class SearchResult:
    genotype: Architecture  # the found cell (of epoch `arch_epoch`, see optim.final_arch)
    run_dir: Path | None
    history: list[dict[str, Any]]
    arch_epoch: int = 0  # the epoch (1-based) the genotype comes from


def _open_run(cfg: SearchConfig, s: Searcher, overwrite: bool, resume: str | Path | None
              ) -> tuple[RunDir, list[dict[str, Any]], float]:
    """A new run folder, or the resumed one with its state loaded: (run, log so far, seconds
    the current epoch had run)."""
    if resume is None:
        run = RunDir.create(Path(cfg.run.out_dir) / _run_name(cfg), overwrite)
        run.write_text("config.yaml", cfg.to_yaml())
        run.write_text("meta.json", json.dumps({**run_metadata(cfg.run.seed, str(s.device)),
                                                "resolved": s.resolved}, indent=1))
        return run, [], 0.0
    return resume_run(resume, cfg, CHECKPOINT_FORMAT, s.device,
                      lambda ckpt: restore_searcher(s, ckpt))


def search(cfg: SearchConfig, overwrite: bool = False, progress: bool = True,
           write: bool = True, resume: str | Path | None = None) -> SearchResult:
    """Run a whole search; with ``write`` every epoch is logged to a new run folder.

    ``resume``: a run folder whose checkpoint.pt to continue from (``cfg`` must be the
    run's config, up to fields that change nothing computed); the run then ends exactly
    as the uninterrupted run would have. Raises :class:`DivergenceError` when the loss
    becomes NaN or infinite, keeping the last good checkpoint.
    """
    s = build_searcher(cfg)
    check_resume_request(resume, overwrite, s.dist.enabled)
    write = (write or resume is not None) and s.dist.is_main  # distributed: only rank 0 writes
    run, history, elapsed = _open_run(cfg, s, overwrite, resume) if write else (None, [], 0.0)
    steps = len(s.w_loader)
    images_per_step = 2 * cfg.optim.batch_size  # an α batch and a w batch
    bar = tqdm(total=cfg.optim.epochs * steps * images_per_step,
               initial=s.global_step * images_per_step,
               disable=not (progress and s.dist.is_main),
               unit="img", dynamic_ncols=True, file=sys.stderr, desc="search")
    arch = s.model.genotype()

    t0 = 0.0

    def on_step(s: Searcher) -> None:
        if not checkpoint_due(cfg.run.checkpoint_every, s.global_step, s.step, steps):
            return
        s.guard.check(steps, kept_checkpoint(run))  # never save a diverged state
        if run is not None:
            run.save_checkpoint(checkpoint_state(s, s.model.genotype(), len(history),
                                                 time.perf_counter() - t0),
                                cfg.run.fault_checkpoint_delay)

    try:
        while s.epoch < cfg.optim.epochs:
            bar.set_description(f"epoch {s.epoch + 1}/{cfg.optim.epochs}")
            t0 = time.perf_counter() - elapsed  # a resumed epoch counts its earlier part
            elapsed = 0.0
            metrics = s.dist.mean_dict(train_epoch(s, bar, on_step))
            if s.device.type == "cuda":
                torch.cuda.synchronize(s.device)  # once per epoch, for an honest epoch time
            dt = time.perf_counter() - t0
            s.guard.check(steps, kept_checkpoint(run))
            s.epoch += 1
            metrics.update(evaluate(s))
            hessian_every = cfg.optim.hessian_every
            if hessian_every and (s.epoch % hessian_every == 0 or s.epoch == cfg.optim.epochs):
                top = hessian_eigenvalue(s)
                # not converged: a lower bound (the two largest eigenvalues are close)
                metrics.update(hessian_eig=top.eigenvalue, hessian_converged=float(top.converged))
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
                # Log first, checkpoint last: a checkpoint counts the log lines before it, and
                # a resume drops any line written after the checkpoint it starts from.
                run.append_log(record)
                run.write_text("genotype.json", json.dumps(arch.to_dict(), indent=1))
                snap_every = cfg.objective.snapshot_every
                if snap_every and (s.epoch % snap_every == 0 or s.epoch == cfg.optim.epochs):
                    x, y = next(iter(s.a_loader.head(8)))
                    s.objective.snapshot(s.model, x[:8], y[:8], run.path / f"recon_e{s.epoch:03d}.png")
                run.save_checkpoint(checkpoint_state(s, arch, len(history)),
                                    cfg.run.fault_checkpoint_delay)
    finally:
        bar.close()
    chosen = final_epoch(history, cfg.optim.final_arch)
    record = history[chosen - 1]
    if chosen != len(history):
        arch = load_arch(cfg.model.space, record["genotype"])
    if run is not None:  # written last: its presence marks a finished run (sweeps skip those)
        run.write_text("genotype.json", json.dumps(arch.to_dict(), indent=1))
        run.write_text("result.json", json.dumps({
            "space": cfg.model.space, "genotype": arch.to_dict(), "genotype_text": str(arch),
            "final_arch": cfg.optim.final_arch, "arch_epoch": chosen,
            "epochs": s.epoch, "search_hours": sum(r["epoch_time_s"] for r in history) / 3600,
            "device": str(s.device), **{k: record[k] for k in record
                                        if k.endswith("_acc") or k.startswith("n_")}}, indent=1))
    return SearchResult(arch, run.path if run else None, history, chosen)


def final_epoch(history: list[dict[str, Any]], rule: str) -> int:
    """The epoch (1-based) whose cell a search returns: the last one, or under ``best`` the
    first epoch with the highest α-half accuracy as the objective sees its inputs
    (``eval_input_acc``, masked for MIM), or clean (``eval_clean_acc``) when the objective
    does not transform them."""
    if rule == "last" or not history:
        return len(history)

    def score(r: dict[str, Any]) -> float:
        return r.get("eval_input_acc", r.get("eval_clean_acc", float("-inf")))

    return max(range(len(history)), key=lambda i: (score(history[i]), -i)) + 1
