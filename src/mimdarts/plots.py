"""Pictures of runs as PNG files: cells, α trajectories, per-epoch curves per method (mean
over seeds with a min–max band), skip counts, patch x ratio sweeps.

All functions take plain data (a graph description, log records) and a path, and use the
non-interactive Agg backend, so they work on a headless machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# A graph is (node names, edges as (src, dst, op)); see Genotype.graph / NB201Arch.graph.
Graph = tuple[Sequence[str], Sequence[tuple[int, int, str]]]

_OP_COLORS = {
    "skip_connect": "#d62728", "max_pool_3x3": "#1f77b4", "avg_pool_3x3": "#17becf",
    "sep_conv_3x3": "#2ca02c", "sep_conv_5x5": "#98df8a", "dil_conv_3x3": "#9467bd",
    "dil_conv_5x5": "#c5b0d5", "nor_conv_1x1": "#8c564b", "nor_conv_3x3": "#2ca02c",
    "none": "#7f7f7f",
}


def _layout(n: int, n_inputs: int) -> list[tuple[float, float]]:
    """Inputs stacked on the left, intermediate nodes on an arc (no three in a line, so edges
    do not run through nodes), the output node (the last) on the right."""
    pos = [(0.0, 1.6 * ((n_inputs - 1) / 2 - i)) for i in range(n_inputs)]
    inner = n - n_inputs - 1
    for k in range(inner):
        angle = math.pi * (k + 0.5) / inner
        pos.append((2.0 + 1.7 * k, 0.4 + 2.2 * math.sin(angle) - 1.1))
    pos.append((2.0 + 1.7 * inner + 0.6, -1.6))
    return pos


def draw_cell(ax: plt.Axes, graph: Graph, title: str, n_inputs: int) -> None:
    """Draw one cell: nodes as boxes, edges as arrows labelled (near their head) with the op."""
    names, edges = graph
    pos = _layout(len(names), n_inputs)
    for src, dst, op in edges:
        (x0, y0), (x1, y1) = pos[src], pos[dst]
        color = _OP_COLORS.get(op, "#bbbbbb")
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.6,
                                "shrinkA": 12, "shrinkB": 12})
        if not op:  # structural edge (e.g. concatenation into the output)
            continue
        t = 0.4 + 0.15 * (src % 3)  # stagger labels by source so edges into a node do not collide
        ax.text(x0 + t * (x1 - x0), y0 + t * (y1 - y0), op, fontsize=7, color=color,
                ha="center", va="center",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9})
    for i, (x, y) in enumerate(pos):
        ax.text(x, y, names[i], ha="center", va="center", fontsize=9, zorder=5,
                bbox={"boxstyle": "round,pad=0.3", "fc": "#ffe9a8" if i < n_inputs else "#cfe2ff",
                      "ec": "black"})
    xs, ys = zip(*pos)
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set_title(title)
    ax.axis("off")


def plot_cells(cells: dict[str, tuple[Graph, int]], path: str | Path, title: str = "") -> Path:
    """One panel per cell: ``cells`` maps a cell name to (graph, number of input nodes)."""
    fig, axes = plt.subplots(1, len(cells), figsize=(6.5 * len(cells), 4.2), squeeze=False)
    for ax, (name, (graph, n_inputs)) in zip(axes[0], cells.items()):
        draw_cell(ax, graph, name, n_inputs)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def plot_cell_grid(rows: dict[str, dict[str, tuple[Graph, int]]], path: str | Path,
                   title: str = "") -> Path:
    """The cells of several runs (e.g. one per seed): ``rows`` maps a run label to its cells
    as :func:`plot_cells` takes them. Runs with several cells (DARTS: normal, reduce) get a
    row each; single-cell runs (NAS-Bench-201) are wrapped three to a row."""
    per_run = max(len(cells) for cells in rows.values())
    panels = [(label if len(cells) == 1 else f"{label}: {name}", graph, n_inputs)
              for label, cells in rows.items() for name, (graph, n_inputs) in cells.items()]
    n_cols = per_run if per_run > 1 else min(3, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(6.5 * n_cols, 4.2 * n_rows), squeeze=False)
    flat = [ax for ax_row in axes for ax in ax_row]
    for ax, (name, graph, n_inputs) in zip(flat, panels):
        draw_cell(ax, graph, name, n_inputs)
    for ax in flat[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# A curve of one seed: epoch -> value (only the epochs that logged the value).
Curve = dict[int, float]


def plot_seed_bands(panels: dict[str, dict[str, list[Curve]]], ylabel: str, path: str | Path,
                    title: str = "") -> Path:
    """Per-epoch curves, one line per method (the mean over its seeds) and a shaded min–max
    band over seeds, in the style of the NAS-Bench-201 figures of β-DARTS and DARTS-PT.

    ``panels`` maps a panel title ("" for a single unnamed panel) to method -> one curve per
    seed. At each epoch the mean and band are over the seeds that logged that epoch, so
    values logged only on some epochs (``hessian_eig``) plot at those epochs.
    """
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    methods = list(dict.fromkeys(m for curves in panels.values() for m in curves))
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), squeeze=False,
                             sharey=True)
    for ax, (name, curves) in zip(axes[0], panels.items()):
        for method, seeds in curves.items():
            epochs = sorted({e for c in seeds for e in c})
            if not epochs:
                continue
            at = [[c[e] for c in seeds if e in c] for e in epochs]
            ax.fill_between(epochs, [min(v) for v in at], [max(v) for v in at],
                            color=colors[method], alpha=0.2, lw=0)
            # markers when there are few points (sparse values, short searches), so a value
            # logged on one epoch only still shows
            ax.plot(epochs, [sum(v) / len(v) for v in at], color=colors[method], lw=1.6,
                    marker="o" if len(epochs) <= 30 else None, ms=3,
                    label=f"{method} ({len(seeds)} seed{'s' if len(seeds) != 1 else ''})")
        if name:
            ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    legend: dict[str, Any] = {}  # label -> handle, over all panels (a method may miss one)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    legend["line: mean over seeds; band: min–max over seeds"] = Patch(color="grey", alpha=0.3)
    handles, labels = list(legend.values()), list(legend)
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=7,
               frameon=False, ncol=1)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_alpha_trajectory(log: list[dict[str, Any]], ops: Sequence[str], path: str | Path) -> Path:
    """softmax(α) of every op on every edge over epochs, one panel per edge and α tensor."""
    names = list(log[0]["arch_weights"])
    n_edges = sum(len(log[0]["arch_weights"][n]) for n in names)
    cols = min(7, n_edges)
    rows = math.ceil(n_edges / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.9 * rows), squeeze=False,
                             sharex=True, sharey=True)
    epochs = [r["epoch"] for r in log]
    panel = 0
    for name in names:
        for e in range(len(log[0]["arch_weights"][name])):
            ax = axes[panel // cols][panel % cols]
            for k, op in enumerate(ops):
                ax.plot(epochs, [r["arch_weights"][name][e][k] for r in log],
                        color=_OP_COLORS.get(op), lw=1.2, label=op)
            ax.set_title(f"{name.replace('alpha_', '')} edge {e}", fontsize=7)
            ax.tick_params(labelsize=6)
            panel += 1
    for p in range(panel, rows * cols):
        axes[p // cols][p % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(ops), fontsize=7, frameon=False)
    fig.supxlabel("epoch", fontsize=8)
    fig.supylabel("softmax(α)", fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path)


def plot_skip_counts(runs: dict[str, list[dict[str, Any]]], path: str | Path) -> Path:
    """Skip connections in the derived cell per epoch (collapse made visible), per run."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for label, log in runs.items():
        keys = [k for k in log[0] if k.startswith("n_skip")]
        for key in keys:
            ax.plot([r["epoch"] for r in log], [r[key] for r in log], marker="o", ms=3,
                    label=f"{label} {key.replace('n_skip_', '')}" if len(keys) > 1 else label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("skip connections in the derived cell")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_patch_ratio(points: list[dict[str, float]], metric: str, path: str | Path) -> Path:
    """Figures 6-8 style: ``metric`` (mean ± std over seeds) against mask ratio, one line per
    patch size. ``points``: dicts with patch_size, mask_ratio, mean, std, n."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for p in sorted({pt["patch_size"] for pt in points}):
        pts = sorted((pt for pt in points if pt["patch_size"] == p), key=lambda q: q["mask_ratio"])
        ax.errorbar([q["mask_ratio"] for q in pts], [q["mean"] for q in pts],
                    yerr=[q["std"] for q in pts], marker="o", ms=4, capsize=3, label=f"patch {p}")
    ax.set_xlabel("mask ratio")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    import io

    from .rundir import atomic_write_bytes
    path = Path(path)
    buf = io.BytesIO()  # encoded in memory, then written atomically (disk full: no half PNG)
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
