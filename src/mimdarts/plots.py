"""Pictures of runs as PNG files, sized for a paper (text of 8 pt or more at the saved
size): cells, α trajectories, per-epoch curves per method (a line and an interquartile or
robust band over seeds), skip counts, patch x ratio sweeps.

All functions take plain data (a graph description, log records) and a path, and use the
non-interactive Agg backend, so they work on a headless machine.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

# A graph is (node names, edges as (src, dst, op)); see Genotype.graph / NB201Arch.graph.
Graph = tuple[Sequence[str], Sequence[tuple[int, int, str]]]

_OP_COLORS = {
    "skip_connect": "#d62728", "max_pool_3x3": "#1f77b4", "avg_pool_3x3": "#17becf",
    "sep_conv_3x3": "#2ca02c", "sep_conv_5x5": "#98df8a", "dil_conv_3x3": "#9467bd",
    "dil_conv_5x5": "#c5b0d5", "nor_conv_1x1": "#8c564b", "nor_conv_3x3": "#2ca02c",
    "none": "#7f7f7f",
}


_NODE_FONT, _EDGE_FONT = 9, 8  # points at the saved size: readable when printed
_INCH = 0.42  # inches per layout unit in the saved cell pictures
_NONE_KEY = "an edge not drawn is none (no connection)"


def _mathtext(text: str) -> str:
    """``c_{k-2}`` as matplotlib math (a subscript), the rest as it is."""
    return re.sub(r"(\w+_\{[^}]*\})", r"$\1$", text)


def _layout(n: int, n_inputs: int) -> list[tuple[float, float]]:
    """Node positions. One input (NAS-Bench-201): all nodes on a line, edges that skip a
    node arcing over or under it (see :func:`_bend`), so no two edges cross. Two inputs
    (DARTS): inputs stacked on the left, intermediate nodes zig-zagging up and down, the
    output node (the last) on the right."""
    if n_inputs == 1:
        return [(3.0 * i, 0.0) for i in range(n)]
    pos = [(0.0, 1.4 * ((n_inputs - 1) / 2 - i)) for i in range(n_inputs)]
    inner = n - n_inputs - 1
    pos += [(2.4 * (k + 1), 1.0 if k % 2 == 0 else -1.0) for k in range(inner)]
    pos.append((2.4 * (inner + 1), 0.0))
    return pos


def _bezier(p0: tuple[float, float], p1: tuple[float, float], rad: float,
            t: float) -> tuple[float, float]:
    """The point at ``t`` of matplotlib's ``arc3,rad=rad`` curve from p0 to p1 (a quadratic
    Bézier; the same in data and screen units because the cell axes keep equal aspect)."""
    (x0, y0), (x1, y1) = p0, p1
    cx, cy = (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)
    u = 1 - t
    return u * u * x0 + 2 * u * t * cx + t * t * x1, u * u * y0 + 2 * u * t * cy + t * t * y1


def _bend(pos: list[tuple[float, float]], src: int, dst: int) -> float:
    """The curvature of an edge (arc3's rad; negative arcs over a left-to-right edge).
    Nodes on a line: neighbours straight, an edge skipping one node over it from even
    sources and under it from odd ones, longer skips higher over. Otherwise straight unless
    that runs close past another node, then the bend that keeps furthest from them."""
    if all(y == pos[0][1] for _, y in pos):
        span = dst - src
        return 0.0 if span == 1 else -0.55 if span > 2 else (-0.35 if src % 2 == 0 else 0.35)
    others = [p for i, p in enumerate(pos) if i not in (src, dst)]

    def clearance(rad: float) -> float:
        pts = [_bezier(pos[src], pos[dst], rad, k / 20) for k in range(1, 20)]
        return min((math.dist(p, q) for p in pts for q in others), default=9.0)

    return max((0.0, 0.25, -0.25, 0.45, -0.45), key=lambda r: (min(clearance(r), 0.55), -abs(r)))


def _extent(graph: Graph, n_inputs: int) -> tuple[float, float, float, float]:
    """x0, x1, y0, y1 of a cell's drawing (nodes and curved edges) with room for labels."""
    names, edges = graph
    pos = _layout(len(names), n_inputs)
    pts = pos + [_bezier(pos[s], pos[d], _bend(pos, s, d), 0.5) for s, d, _ in edges]
    xs, ys = zip(*pts)
    return min(xs) - 0.7, max(xs) + 0.7, min(ys) - 0.55, max(ys) + 0.55


def draw_cell(ax: plt.Axes, graph: Graph, title: str, n_inputs: int,
              limits: tuple[float, float, float, float] | None = None) -> Any:
    """Draw one cell's nodes as boxes in ``limits`` (x0, x1, y0, y1; the cell's own extent
    by default). Returns what :func:`finish_cell` needs to draw the edges once the figure's
    geometry is fixed (after a ``fig.canvas.draw()``), so arrows can end at the boxes'
    borders and labels be placed knowing their sizes on the page."""
    names, edges = graph
    pos = _layout(len(names), n_inputs)
    nodes = [ax.text(x, y, _mathtext(names[i]), ha="center", va="center", fontsize=_NODE_FONT,
                     zorder=5, bbox={"boxstyle": "round,pad=0.3", "ec": "black",
                                     "fc": "#ffe9a8" if i < n_inputs else "#cfe2ff"})
             for i, (x, y) in enumerate(pos)]
    x0, x1, y0, y1 = limits or _extent(graph, n_inputs)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax, pos, nodes, edges


def finish_cell(cell: Any) -> None:
    """Draw the edges of a :func:`draw_cell` cell as arrows coloured by op, from box border
    to box border, then label them (:func:`_place_labels`)."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    ax, pos, nodes, edges = cell
    renderer = ax.figure.canvas.get_renderer()
    to_data = ax.transData.inverted()
    boxes = []  # each node's box in data units: arrows clip to it at any saving resolution
    for t in nodes:
        (bx0, by0), (bx1, by1) = to_data.transform(t.get_bbox_patch().get_window_extent(renderer))
        boxes.append(Rectangle((bx0, by0), bx1 - bx0, by1 - by0, transform=ax.transData))
    todo = []
    for src, dst, op in edges:
        rad = _bend(pos, src, dst)
        color = _OP_COLORS.get(op, "#bbbbbb")
        ax.add_patch(FancyArrowPatch(
            pos[src], pos[dst], arrowstyle="-|>", mutation_scale=12, color=color, lw=1.5,
            shrinkA=1, shrinkB=1, patchA=boxes[src], patchB=boxes[dst],
            connectionstyle=f"arc3,rad={rad}", zorder=3))
        if op:  # an unlabelled edge is structural (concatenation into the output)
            todo.append(((pos[src], pos[dst], rad), op, color, boxes[dst]))
    _place_labels(ax, nodes, todo)


def _place_labels(ax: plt.Axes, nodes: list[Any], todo: list[Any]) -> None:
    """Label each edge with its op where the label covers no node, arrowhead or other
    label: for each edge in turn, the first free spot on it (middle first), then beside it;
    else the spot of least overlap. A spot covering fewer other edges wins among equals."""
    renderer = ax.figure.canvas.get_renderer()
    taken = [t.get_window_extent(renderer).expanded(1.05, 1.1) for t in nodes]
    curves = [[ax.transData.transform(_bezier(*edge, k / 60)) for k in range(61)]
              for edge, *_ in todo]
    for curve, (*_, head) in zip(curves, todo):  # each arrowhead: where its curve meets the box
        x, y = next((p for p in reversed(curve)
                     if not head.get_window_extent(renderer).contains(*p)), curve[-1])
        taken.append(Bbox.from_bounds(x - 7, y - 7, 14, 14))
    for n, (edge, op, color, _) in enumerate(todo):
        label = ax.text(0, 0, op, fontsize=_EDGE_FONT, color=_ink(color), ha="center",
                        va="center", zorder=4,
                        bbox={"boxstyle": "round,pad=0.12", "fc": "white", "ec": "none"})
        best: tuple[Any, ...] = ()
        for xy in _label_spots(ax, edge, label.get_window_extent(renderer)):
            label.set_position(xy)
            box = label.get_window_extent(renderer).expanded(1.04, 1.15)
            overlap = sum(_area(box, b) for b in taken)
            crossed = sum(box.contains(*p) for m, c in enumerate(curves) if m != n for p in c)
            if not best or (overlap, crossed) < best[:2]:
                best = (overlap, crossed, xy, box)
            if overlap == 0 and crossed == 0:
                break
        label.set_position(best[2])
        taken.append(best[3])


def _ink(color: str) -> str:
    """A light op colour darkened for text, so labels stay legible in print."""
    from matplotlib.colors import hsv_to_rgb, rgb_to_hsv, to_hex, to_rgb

    h, s, v = rgb_to_hsv(to_rgb(color))
    return to_hex(hsv_to_rgb((h, max(s, 0.6) if s > 0.05 else s, min(v, 0.7))))


def _label_spots(ax: plt.Axes, edge: Any, size: Any) -> list[tuple[float, float]]:
    """Candidate label centres (data units) for an edge, best first: on the edge at the
    middle and on either side of it (never at the arrowhead), then just beside the edge."""
    spots, beside = [], []
    for t in (0.5, 0.4, 0.6, 0.32, 0.68):
        (x, y), (x2, y2) = (ax.transData.transform(_bezier(*edge, u)) for u in (t, t + 0.01))
        length = math.hypot(x2 - x, y2 - y) or 1.0
        nx, ny = -(y2 - y) / length, (x2 - x) / length  # the edge's normal on screen
        shift = (abs(nx) * size.width + abs(ny) * size.height) / 2 + 3
        spots.append((x, y))
        beside += [(x + nx * shift, y + ny * shift), (x - nx * shift, y - ny * shift)]
    to_data = ax.transData.inverted()
    return [tuple(to_data.transform(p)) for p in spots + beside]


def _area(a: Any, b: Any) -> float:
    """The area two display boxes share."""
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def plot_cells(cells: dict[str, tuple[Graph, int]], path: str | Path, title: str = "") -> Path:
    """One panel per cell: ``cells`` maps a cell name to (graph, number of input nodes)."""
    return plot_cell_grid({"": cells}, path, title)


def plot_cell_grid(rows: dict[str, dict[str, tuple[Graph, int]]], path: str | Path,
                   title: str = "") -> Path:
    """The cells of several runs (e.g. one per seed): ``rows`` maps a run label to its cells,
    cell name -> (graph, number of input nodes). Runs with several cells (DARTS: normal,
    reduce) get a row each; single-cell runs (NAS-Bench-201) are wrapped three to a row.
    A key under the panels says what a missing edge means."""
    per_run = max(len(cells) for cells in rows.values())
    panels = [(": ".join(filter(None, (label, name if len(cells) > 1 else ""))), graph, n_inputs)
              for label, cells in rows.items() for name, (graph, n_inputs) in cells.items()]
    n_cols = per_run if per_run > 1 else min(3, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    # one extent for all panels (the union of theirs), so 1 unit is _INCH inches everywhere
    boxes = [_extent(g, k) for _, g, k in panels]
    limits = (min(b[0] for b in boxes), max(b[1] for b in boxes),
              min(b[2] for b in boxes), max(b[3] for b in boxes))
    w, h = limits[1] - limits[0], limits[3] - limits[2]
    fig_w, fig_h = w * _INCH * n_cols, (h * _INCH + 0.3) * n_rows + 0.5  # + titles, key
    fig, axes = plt.subplots(n_rows, n_cols, squeeze=False, figsize=(fig_w, fig_h), gridspec_kw={
        "left": 0, "right": 1, "bottom": 0.3 / fig_h, "top": 1 - 0.5 / fig_h, "wspace": 0.04,
        "hspace": 0.3 / (h * _INCH)})
    flat = [ax for ax_row in axes for ax in ax_row]
    cells = [draw_cell(ax, graph, name, n_inputs, limits)
             for ax, (name, graph, n_inputs) in zip(flat, panels)]
    for ax in flat[len(panels):]:
        ax.axis("off")
    fig.canvas.draw()  # fixes the geometry (equal aspect, box sizes) for the edges
    for cell in cells:
        finish_cell(cell)
    structural = any(not op for _, g, _ in panels for *_, op in g[1])
    key = _NONE_KEY + ("; grey unlabelled arrows: concatenation into the output" if structural else "")
    fig.text(0.5, 0.0, f"Key: {key}.", ha="center", va="bottom", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


# A curve of one seed: epoch -> value (only the epochs that logged the value).
Curve = dict[int, float]


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    """First quartile, median, third quartile (linear between order statistics, so two
    seeds give the middle half of the gap between them; one seed gives its value)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def plot_seed_bands(panels: dict[str, dict[str, list[Curve]]], ylabel: str, path: str | Path,
                    title: str = "", *, robust: bool = False,
                    reference: tuple[float, str] | None = None) -> Path:
    """Per-epoch curves, one line per method and a shaded band over its seeds, in the style
    of the NAS-Bench-201 figures of β-DARTS and DARTS-PT.

    ``panels`` maps a panel title ("" for a single unnamed panel) to method -> one curve per
    seed. At each epoch line and band are over the seeds that logged that epoch, so values
    logged only on some epochs (``hessian_eig``) plot at those epochs. By default the line
    is the mean and the band the interquartile range over seeds. With ``robust`` the line
    is the median, the y axis spans the bulk of all values (:func:`_robust_range`), the
    band the range of the seeds inside it, and a seed beyond it (a collapsed cell at 10%)
    is a triangle at the axis edge instead of stretching the axis and the band.
    ``reference`` (value, label): a horizontal line, e.g. the benchmark's optimum."""
    from matplotlib.ticker import MaxNLocator

    methods = list(dict.fromkeys(m for curves in panels.values() for m in curves))
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False,
                             sharey=True)
    per_epoch = {name: {m: _per_epoch(seeds) for m, seeds in curves.items()}
                 for name, curves in panels.items()}
    limits = _robust_range(per_epoch, reference) if robust else None
    labels, beyond = _seed_labels(panels), []
    for ax, (name, curves) in zip(axes[0], per_epoch.items()):
        for method, (epochs, at) in curves.items():
            beyond += _draw_band(ax, epochs, at, colors[method], limits, labels[method])
        if reference:
            ax.axhline(reference[0], color="black", ls="--", lw=1.0, label=reference[1], zorder=1)
        if limits:
            ax.set_ylim(*limits)
        if name:
            ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if all(float(x).is_integer() for c in panels.values() for s in c.values() for v in s
           for x in v.values()):  # counts (skip edges): whole-number ticks
        axes[0][0].yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0][0].set_ylabel(ylabel)
    if title:
        fig.suptitle(title, fontsize=10)
    what = ("line: median over seeds; band: range of the seeds inside the axis" if robust else
            "line: mean over seeds; band: interquartile range over seeds (25th–75th percentile)")
    _band_legend(fig, axes[0], what, _outlier_key(beyond, limits) if beyond and limits else None)
    return _save(fig, path)


def _seed_labels(panels: dict[str, dict[str, list[Curve]]]) -> dict[str, str]:
    """method -> its legend label with its number of seeds, per panel where panels differ
    (the plain-CE curvature is logged by newer runs only)."""
    out = {}
    for m in dict.fromkeys(m for curves in panels.values() for m in curves):
        counts = [len(curves.get(m, [])) for curves in panels.values()]
        n = {c for c in counts if c}
        out[m] = (f"{m} ({min(n)} seed{'s' if min(n) != 1 else ''})" if len(n) == 1 else
                  f"{m} (seeds per panel: {', '.join(map(str, counts))})")
    return out


def _per_epoch(seeds: list[Curve]) -> tuple[list[int], list[list[float]]]:
    """The epochs any seed logged, and at each the values of the seeds that logged it."""
    epochs = sorted({e for c in seeds for e in c})
    return epochs, [[c[e] for c in seeds if e in c] for e in epochs]


def _robust_range(per_epoch: dict[str, dict[str, Any]],
                  reference: tuple[float, str] | None) -> tuple[float, float]:
    """A y range for the bulk of the values: every seed value within 3 interquartile ranges
    of the pooled quartiles (Tukey's far fences), every median, the reference; padded."""
    at = [v for curves in per_epoch.values() for _, ats in curves.values() for v in ats]
    values = [x for v in at for x in v]
    if not values:
        return 0.0, 1.0
    q1, _, q3 = _quartiles(values)
    keep = [x for x in values if q1 - 3 * (q3 - q1) <= x <= q3 + 3 * (q3 - q1)]
    keep += [_quartiles(v)[1] for v in at] + ([reference[0]] if reference else [])
    lo, hi = min(keep), max(keep)
    pad = 0.06 * (hi - lo) or 1.0
    return lo - pad, hi + pad


def _draw_band(ax: plt.Axes, epochs: list[int], at: list[list[float]], color: Any,
               limits: tuple[float, float] | None, label: str) -> list[float]:
    """One method's line and band (see :func:`plot_seed_bands`); with ``limits``, each seed
    value beyond them marked at the axis edge. Returns those values."""
    if not epochs:
        return []
    if limits:
        lo, hi = limits
        inside = [[x for x in v if lo <= x <= hi] or [_quartiles(v)[1]] for v in at]
        band = [(min(v), max(v)) for v in inside]
        line = [_quartiles(v)[1] for v in at]
    else:
        band = [(q[0], q[2]) for q in map(_quartiles, at)]
        line = [sum(v) / len(v) for v in at]
    ax.fill_between(epochs, [b[0] for b in band], [b[1] for b in band], color=color, alpha=0.18, lw=0)
    # markers when there are few points (sparse values, short searches), so a value logged
    # on one epoch only still shows
    ax.plot(epochs, line, color=color, lw=1.6, marker="o" if len(epochs) <= 30 else None, ms=3,
            label=label)
    beyond = [(e, x) for e, v in zip(epochs, at) for x in v if limits and not lo <= x <= hi]
    for e, x in beyond:  # at the edge in axes units, whatever the final limits
        ax.plot([e], [0.02 if x < lo else 0.98], ls="", marker="v" if x < lo else "^", ms=7,
                color=color, mec="black", mew=0.5, clip_on=False, zorder=6,
                transform=ax.get_xaxis_transform())
    return [x for _, x in beyond]


def _outlier_key(beyond: list[float], limits: tuple[float, float]) -> tuple[Any, str]:
    """The legend entry of the triangles that mark seeds beyond the axis."""
    from matplotlib.lines import Line2D

    low, high = [x for x in beyond if x < limits[0]], [x for x in beyond if x > limits[1]]
    parts = ([f"▼ below (lowest {min(low):.4g})"] if low else []) + \
        ([f"▲ above (highest {max(high):.4g})"] if high else [])
    return Line2D([], [], ls="", marker="v" if low else "^", ms=7, color="grey", mec="black",
                  mew=0.5), "a seed beyond the axis: " + ", ".join(parts)


def _band_legend(fig: plt.Figure, axes: Sequence[plt.Axes], what: str,
                 extra: tuple[Any, str] | None) -> None:
    """One legend under the panels: each method (over all panels: a method may miss one),
    the reference line, what line and band show, the outlier marker."""
    from matplotlib.patches import Patch

    fig.tight_layout()
    legend: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    legend[what] = Patch(color="grey", alpha=0.3)
    if extra:
        legend[extra[1]] = extra[0]
    fig.legend(list(legend.values()), list(legend), loc="upper center", bbox_to_anchor=(0.5, 0.0),
               fontsize=8, frameon=False, ncol=1)


def plot_alpha_trajectory(log: list[dict[str, Any]], ops: Sequence[str], path: str | Path,
                          title: str = "", edges: Sequence[str] | None = None,
                          ymax: float | None = None, ylabel: str = "softmax(α)") -> Path:
    """softmax(α) of every op on every edge over epochs: one panel per edge, titled by its
    node pair (``edges``, in α's row order; ``edge i`` without), the panels of each α tensor
    (DARTS: normal, reduce) on rows of their own. ``ymax``: the top of every panel's y axis
    (give the same to every run of a set so they compare); the legend sits to the right."""
    names = list(log[0]["alpha_weights"])
    per = len(log[0]["alpha_weights"][names[0]])
    cols = 3 if per == 6 else min(7, per)  # NAS-Bench-201's 6 edges as 2 x 3
    rows_per = math.ceil(per / cols)
    fig, axes = plt.subplots(rows_per * len(names), cols, squeeze=False, sharex=True, sharey=True,
                             figsize=(2.3 * cols + 1.9, 1.65 * rows_per * len(names) + 0.7),
                             layout="constrained")
    epochs = [r["epoch"] for r in log]
    for t, name in enumerate(names):
        cell = name.removeprefix("alpha_")
        for e in range(rows_per * cols):
            ax = axes[t * rows_per + e // cols][e % cols]
            if e >= per:
                ax.axis("off")
                axes[t * rows_per + e // cols - 1][e % cols].tick_params(labelbottom=True)
                continue
            for k, op in enumerate(ops):
                ax.plot(epochs, [r["alpha_weights"][name][e][k] for r in log],
                        color=_OP_COLORS.get(op), lw=1.3, label=op)
            edge = _mathtext(edges[e]) if edges else f"edge {e}"
            ax.set_title(f"{cell} {edge}" if len(names) > 1 else edge, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    axes[0][0].set_ylim(0.0, ymax)  # shared by all panels
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False, title="op",
               title_fontsize=8)
    fig.supxlabel("epoch", fontsize=9)
    fig.supylabel(ylabel, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
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
