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
from .spaces.facts import benchmarks

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
    """``epoch 3/30  loss 2.104  val_loss 2.201 ... cell |...|  NB201 C-10 88.21  61.2 s``."""
    parts = [f"epoch {record['epoch']}/{epochs}"]
    parts += [f"{label} {record[k]:.4g}" for k, label in _CONSOLE_KEYS
              if isinstance(record.get(k), (int, float))]
    if "genotype" in record:
        parts.append(f"cell {record['genotype']}")
    for bench in benchmarks():  # the benchmark's score of the derived cell, if it has one
        if bench.key in record:
            parts.append(f"{bench.short} {record[bench.key]:.2f}")
    parts.append(f"{record.get('epoch_time_s', 0.0):.1f} s")
    return "  ".join(parts)


class TensorBoardSink(BaseSink):
    """TensorBoard event files in ``RUN/tensorboard``. Tags, by section: ``step/<figure>``
    (losses and their terms, λ, learning rates, every ``log_every`` steps); ``epoch/<key>``
    (every number of an epoch's record); ``alpha/<cell>/<edge>/<op>`` (softmax(α), edges
    named by node pair: ``2←1`` is the edge from node 1 into node 2), with a custom-scalars
    layout of one chart per edge holding its ops; ``alpha_heatmap/<cell>`` (softmax(α) on a
    fixed 0-1 colour scale); ``pictures/<name>`` (MIM reconstructions); the texts ``config``
    and ``genotype``; at the end the config as hparams with the final figures."""

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
        self.space = ""
        self.hparams: dict[str, Any] = {}
        self._layout_written = False

    def start(self, job: Any, run: Any) -> None:
        self.writer = self._writer_cls(log_dir=str(run.path / "tensorboard"))
        self.op_names = tuple(getattr(getattr(job, "model", None), "op_names", ()))
        self.space = str(getattr(getattr(job.cfg, "model", None), "space", ""))
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
        alphas = record.get("alpha_weights", {})
        if alphas and not self._layout_written:  # the edges are known from the first record
            self.writer.add_custom_scalars(alpha_layout(alphas, self._ops(alphas), self.space))
            self._layout_written = True
        for name, rows in alphas.items():
            self._alphas(name, rows, e)
        if "genotype" in record:
            self.writer.add_text("genotype", f"`{record['genotype']}`", e)
        for name, image in pictures.items():
            self.writer.add_image(f"pictures/{name}", image, e)
        self.writer.flush()

    def _ops(self, alphas: Mapping[str, list[list[float]]]) -> tuple[str, ...]:
        """The op names of α's columns (``op<j>`` when the model did not name them)."""
        k = len(next(iter(alphas.values()))[0])
        return self.op_names if len(self.op_names) == k else tuple(f"op{j}" for j in range(k))

    def _alphas(self, name: str, rows: list[list[float]], epoch: int) -> None:
        ops, cell = self._ops({name: rows}), alpha_cell(name)
        edges = edge_names(self.space, len(rows))
        for edge, row in zip(edges, rows):
            for op, w in zip(ops, row):
                self.writer.add_scalar(alpha_tag(cell, edge, op), w, epoch)
        self.writer.add_figure(f"alpha_heatmap/{cell}",
                               alpha_heatmap(f"{cell}, epoch {epoch}", rows, ops, edges), epoch)

    def close(self, final: Mapping[str, Any] | None = None) -> None:
        if self.writer is None:
            return
        if final:
            metrics = {f"final/{k}": v for k, v in final.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.writer.add_hparams(self.hparams, metrics, run_name="hparams")
        self.writer.close()


def edge_names(space: str, n_edges: int) -> list[str]:
    """Each edge of a cell (the rows of α, in order) named by its node pair ``dst←src``.
    NAS-Bench-201: ``1←0, 2←0, 2←1, 3←0, 3←1, 3←2`` (node 0 the input, 3 the output).
    DARTS: the node names of the cell pictures, ``0←c_{k-2}, 0←c_{k-1}, 1←c_{k-2}, ...,
    1←0, ...`` (inputs ``c_{k-2}``, ``c_{k-1}``; intermediate nodes from 0). ``edge<i>``
    when the space or the edge count is not one of these."""
    from .spaces.facts import space_facts
    from .spaces.nb201_arch import EDGES

    style = space_facts(space).edge_names if space in _known_spaces() else "indexed"
    if style == "nodes" and n_edges == len(EDGES):
        return [f"{dst}←{src}" for dst, src in EDGES]
    steps = next((s for s in range(1, 64) if sum(2 + i for i in range(s)) == n_edges), 0)
    if style == "inputs" and steps:
        names = ["c_{k-2}", "c_{k-1}", *map(str, range(steps))]
        return [f"{i}←{names[j]}" for i in range(steps) for j in range(2 + i)]
    return [f"edge{i}" for i in range(n_edges)]


def _known_spaces() -> set[str]:
    from .spaces import SPACES
    return set(SPACES)


def alpha_cell(name: str) -> str:
    """The cell an α tensor belongs to, as tags and titles name it (``alpha_normal`` ->
    ``normal``; NAS-Bench-201's single ``alpha``, shared by every cell, -> ``cell``)."""
    return "cell" if name == "alpha" else name.removeprefix("alpha_")


def alpha_tag(cell: str, edge: str, op: str) -> str:
    return f"alpha/{cell}/{edge}/{op}"


def alpha_layout(alphas: Mapping[str, list[list[float]]], ops: tuple[str, ...],
                 space: str) -> dict[str, dict[str, list[Any]]]:
    """TensorBoard's custom-scalars layout: a category per α tensor, a chart per edge
    holding softmax(α) of each of its ops (tags matched exactly: they are regexes there)."""
    import re

    layout: dict[str, dict[str, list[Any]]] = {}
    for name, rows in alphas.items():
        cell = alpha_cell(name)
        layout[f"softmax(α) per edge, {cell}"] = {
            f"{cell} {edge}": ["Multiline", [f"^{re.escape(alpha_tag(cell, edge, op))}$" for op in ops]]
            for edge in edge_names(space, len(rows))}
    return layout


def alpha_heatmap(title: str, rows: list[list[float]], ops: tuple[str, ...],
                  edges: list[str] | None = None) -> Any:
    """A matplotlib figure: softmax(α), one row per edge (named by node pair), one column per
    op, each value written in its square, on a fixed 0-1 colour scale (so epochs and runs
    compare) with a colour bar. Made without pyplot, so the caller's matplotlib backend (a
    notebook's) is left as it is."""
    from matplotlib.figure import Figure

    edges = edges or [f"edge{i}" for i in range(len(rows))]
    fig = Figure(figsize=(1.6 + 0.75 * len(ops), 1.0 + 0.32 * len(rows)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(rows, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")
    for i, row in enumerate(rows):
        for j, w in enumerate(row):  # dark squares get white figures
            ax.text(j, i, f"{w:.2f}", ha="center", va="center", fontsize=7,
                    color="black" if w > 0.6 else "white")
    ax.set_xticks(range(len(ops)), ops, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [_mathtext(e) for e in edges], fontsize=7)
    ax.set_ylabel("edge (node←input)", fontsize=7)
    ax.set_title(f"softmax(α) {title}", fontsize=8)
    bar = fig.colorbar(im, ax=ax)
    bar.set_label("softmax(α)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return fig


def _mathtext(text: str) -> str:
    """``c_{k-2}`` as matplotlib math (a subscript), the rest as it is."""
    import re
    return re.sub(r"(\w+_\{[^}]*\})", r"$\1$", text)


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
