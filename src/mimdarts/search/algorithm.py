"""The algorithm of a search, apart from its run folder: the epoch loop over the train half,
the β-DARTS term of an epoch, the evaluations after an epoch (the val head, the whole val
half that ``final_arch=best`` picks by, the α-Hessian curvature) and the rule that picks the
returned epoch. The run-folder plumbing (records, files, checkpoints, results) is the job's,
in :mod:`mimdarts.search.loop`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch

from ..lifecycle import StepHook
from ..schedules import cosine_lr
from .architect import Regularizer, beta_regularizer
from .curvature import EigenResult, alpha_ce_hessian_eigen, alpha_hessian_eigen
from .objectives.base import LossResult, accuracy
from .objectives.classification import ClassificationObjective

if TYPE_CHECKING:
    from .loop import Searcher


def poisoned(x: torch.Tensor) -> torch.Tensor:
    """A train batch of NaN images: the fault injection of MIMDARTS_FAULT_NAN_STEP
    (:mod:`mimdarts.faults`). The w step's loss and gradients turn NaN as in a real
    divergence, without a hook in the bi-level step."""
    return x * float("nan")


class EpochMeter:
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


def alpha_regularizer(s: Searcher) -> Regularizer | None:
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


def hessian_eigenvalues(s: Searcher) -> tuple[EigenResult, EigenResult]:
    """(the objective's, the plain cross-entropy's) largest α-Hessian eigenvalue, both on the
    same val-half batch and both with the α L2 term. The objective's: its loss plus Adam's L2
    term on α, ``arch_weight_decay / 2 · ||α||²``, as RobustDARTS adds it (a β-DARTS term is
    not included), on the val half's first batch, masks drawn from a generator seeded 0 so
    that epochs compare; in fp32. The
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
    regularizer = alpha_regularizer(s)
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
    s.meter, s.step = EpochMeter(), 0
    out["lr"] = lr
    return out


@contextlib.contextmanager
def streams_untouched(device: torch.device) -> Iterator[None]:
    """Around a pass that only looks (evaluations, curvature, pictures): torch's global random
    streams come back as they were, so the pass changes no step of the run even where the
    forward itself draws from them (the `noise` op of RobustDARTS's S4; an ImageNet folder's
    separate DataLoader seeds its workers from the global generator)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        yield


def epoch_metrics(s: Searcher) -> dict[str, float]:
    """After an epoch (``s.epoch`` counts it): the val head's accuracies and, every
    ``hessian_every`` epochs and at the last, the α-Hessian's top eigenvalue."""
    with streams_untouched(s.device):
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
