"""Where a run's figures go besides log.jsonl: a line per epoch on the console, TensorBoard.

Each is a sink of the run lifecycle (:mod:`mimdarts.lifecycle`): it gets the run at the
start, the step figures every ``log_every`` steps (if it asks for them), each epoch's
record and pictures, and the final figures at the end. Sinks run on rank 0 only, never
change what a run computes, and read no random stream.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

import torch

from .errors import ConfigError

# record keys shown on the console line, in this order, with their short labels
_CONSOLE_KEYS = (
    ("train_loss", "loss"), ("val_loss", "val_loss"), ("train_acc", "acc"), ("val_acc", "val_acc"),
    ("eval_clean_acc", "eval"), ("select_acc", "select"), ("select_loss", "select_loss"),
    ("test_top1", "top1"), ("test_top5", "top5"), ("hessian_eig", "hessian"),
    ("hessian_eig_ce", "hessian_ce"),
)


class BaseSink:
    """Does nothing; sinks override what they need."""

    wants_steps = False  # step figures cost a host sync every log_every steps
    wants_pictures = False  # pictures cost a forward pass per picture epoch

    def start(self, job: Any, run: Any) -> None:
        pass

    def step(self, step: int, scalars: Mapping[str, float]) -> None:
        pass

    def epoch(self, record: dict[str, Any], pictures: Mapping[str, torch.Tensor]) -> None:
        pass

    def close(self, final: Mapping[str, Any] | None = None) -> None:
        pass


class ConsoleSink(BaseSink):
    """One line per epoch (for runs without a progress bar: --no-progress, sweeps, batch
    jobs): the epoch, losses, accuracies, the derived cell and its benchmark accuracy, time."""

    def __init__(self, epochs: int, stream: TextIO | None = None) -> None:
        self.epochs = epochs
        self.stream = stream

    def epoch(self, record: dict[str, Any], pictures: Mapping[str, torch.Tensor]) -> None:
        print(console_line(record, self.epochs), file=self.stream or sys.stdout, flush=True)


def console_line(record: Mapping[str, Any], epochs: int) -> str:
    """``epoch 3/30  loss 2.104  val_loss 2.201 ... cell |...|  nb201 C-10 88.21  61.2 s``."""
    parts = [f"epoch {record['epoch']}/{epochs}"]
    parts += [f"{label} {record[k]:.4g}" for k, label in _CONSOLE_KEYS
              if isinstance(record.get(k), (int, float))]
    if "genotype" in record:
        parts.append(f"cell {record['genotype']}")
    if "nb201_cifar10_test" in record:
        parts.append(f"nb201 C-10 {record['nb201_cifar10_test']:.2f}")
    parts.append(f"{record.get('epoch_time_s', 0.0):.1f} s")
    return "  ".join(parts)


class TensorBoardSink(BaseSink):
    """TensorBoard event files in ``RUN/tensorboard``: the step figures (losses and their
    terms, λ, learning rates) every ``log_every`` steps; per epoch every number of the
    record (accuracies, benchmark figures, skip/none counts...), softmax(α) of every edge as
    scalars and as a heatmap per α tensor, the cell as text, the epoch's pictures (MIM
    reconstructions); at the end the config as hparams with the final figures."""

    wants_steps = True
    wants_pictures = True

    def __init__(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("tensorboard=true needs the tensorboard package: "
                              "pip install 'mimdarts[tensorboard]'") from None
        self._writer_cls = SummaryWriter
        self.writer: Any = None
        self.op_names: tuple[str, ...] = ()
        self.hparams: dict[str, Any] = {}

    def start(self, job: Any, run: Any) -> None:
        self.writer = self._writer_cls(log_dir=str(run.path / "tensorboard"))
        self.op_names = tuple(getattr(getattr(job, "model", None), "op_names", ()))
        self.hparams = _hparams(job.cfg.to_dict())
        self.writer.add_text("config", "```\n" + job.cfg.to_yaml() + "\n```", 0)

    def step(self, step: int, scalars: Mapping[str, float]) -> None:
        for k, v in scalars.items():
            self.writer.add_scalar(f"step/{k}", v, step)

    def epoch(self, record: dict[str, Any], pictures: Mapping[str, torch.Tensor]) -> None:
        e = record["epoch"]
        for k, v in record.items():
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(f"epoch/{k}", v, e)
        for name, rows in record.get("arch_weights", {}).items():
            self._alphas(name, rows, e)
        if "genotype" in record:
            self.writer.add_text("genotype", f"`{record['genotype']}`", e)
        for name, image in pictures.items():
            self.writer.add_image(name, image, e)
        self.writer.flush()

    def _alphas(self, name: str, rows: list[list[float]], epoch: int) -> None:
        ops = self.op_names if len(self.op_names) == len(rows[0]) else tuple(
            f"op{j}" for j in range(len(rows[0])))
        for i, row in enumerate(rows):
            for op, w in zip(ops, row):
                self.writer.add_scalar(f"alpha/{name}/edge{i}/{op}", w, epoch)
        self.writer.add_figure(f"alpha_heatmap/{name}", alpha_heatmap(name, rows, ops), epoch)

    def close(self, final: Mapping[str, Any] | None = None) -> None:
        if self.writer is None:
            return
        if final:
            metrics = {f"final/{k}": v for k, v in final.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.writer.add_hparams(self.hparams, metrics, run_name="hparams")
        self.writer.close()


def alpha_heatmap(name: str, rows: list[list[float]], ops: tuple[str, ...]) -> Any:
    """A matplotlib figure: softmax(α), one row per edge, one column per op. Made without
    pyplot, so the caller's matplotlib backend (a notebook's) is left as it is."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.0 + 0.6 * len(ops), 0.8 + 0.3 * len(rows)))
    ax = fig.subplots()
    im = ax.imshow(rows, vmin=0.0, vmax=max(max(r) for r in rows), cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(ops)), ops, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [f"edge {i}" for i in range(len(rows))], fontsize=7)
    ax.set_title(f"softmax(α) {name}", fontsize=8)
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def _hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The config flattened to the scalars and strings TensorBoard's hparams accept."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, Mapping):
            out.update(_hparams(v, f"{prefix}{k}."))
        elif isinstance(v, (bool, int, float, str)):
            out[f"{prefix}{k}"] = v
        elif v is not None:
            out[f"{prefix}{k}"] = str(v)
    return out
