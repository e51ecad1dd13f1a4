"""The report's pictures as a reader sees them: the figures are kept (not written) and
measured with matplotlib's own renderer: titles, legends clear of the axis labels, shared
y scales, edge labels that do not collide, the benchmark's optimum drawn. Tiny synthetic
logs, so each test takes about a second."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.text import Text

from mimdarts import plots
from mimdarts.config import resolve_config
from mimdarts.report import find_runs, write_pictures
from mimdarts.spaces import load_arch

NB201_EDGES = ["1←0", "2←0", "2←1", "3←0", "3←1", "3←2"]
DARTS = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
         "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
         "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
         "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
         "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])")
DENSE = "|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


def _keeper(kept: dict[str, plt.Figure]):
    """A stand-in for plots._save: draws the figure (as saving would) and keeps it."""
    def keep(fig, path):
        fig.canvas.draw()
        kept[Path(path).name] = fig
        return Path(path)
    return keep


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions make, drawn but not written, by file name."""
    kept: dict[str, plt.Figure] = {}
    monkeypatch.setattr(plots, "_save", _keeper(kept))
    yield kept
    for fig in kept.values():
        plt.close(fig)


def _box(artist):
    return artist.get_window_extent(artist.figure.canvas.get_renderer())


def _texts(fig, text):
    return [t for t in fig.findobj(Text) if t.get_text() == text]


def _write_run(root, name, cfg, top):
    """A finished 3-epoch NAS-Bench-201 run folder; ``top``: skip_connect's last weight; the
    accuracy of seed 2 collapses to 10% at epoch 2."""
    d = root / name
    d.mkdir(parents=True)
    log = []
    for e in (1, 2, 3):
        w = 0.2 + (top - 0.2) * (e - 1) / 2
        rows = [[(1 - w) / 4 if k != 1 else w for k in range(5)] for _ in range(6)]
        acc = 10.0 if cfg.run.seed == 2 and e == 2 else 88.0 + e + cfg.run.seed
        log.append({"epoch": e, "epoch_time_s": 1.0, "val_acc": 20.0, "genotype": DENSE, "n_skip": 2,
                    "nb201_cifar10_test": acc, "alpha_weights": {"alpha": rows}})
    (d / "config.yaml").write_text(cfg.to_yaml())
    (d / "meta.json").write_text(json.dumps({"seed": cfg.run.seed, "device": "cpu"}))
    (d / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    (d / "genotype.json").write_text(json.dumps({"space": "nb201", "arch": DENSE}))
    (d / "result.json").write_text(json.dumps({
        "space": "nb201", "genotype": {"space": "nb201", "arch": DENSE}, "genotype_text": DENSE,
        "arch_epoch": 3, "epochs": 3, "search_hours": 0.001, "device": "cpu"}))


@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """write_pictures over 2 methods x 3 seeds (kept figures by file name)."""
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1, 2):
        _write_run(root, f"darts-s{seed}", resolve_config(
            "nb201-tiny", overrides={"epochs": 3, "seed": seed}), top=0.3 + 0.1 * seed)
        _write_run(root, f"mim-s{seed}", resolve_config(
            "nb201-tiny", overrides={"epochs": 3, "seed": seed, "objective": "mim-darts"}), top=0.25)
    runs, _ = find_runs([root])
    kept: dict[str, plt.Figure] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plots, "_save", _keeper(kept))
        write_pictures(runs, root / "pics")
    yield kept
    for fig in kept.values():
        plt.close(fig)


def test_alpha_pictures_titled_named_by_node_pair_on_one_scale(pictures):
    alpha = {name: fig for name, fig in pictures.items() if name.endswith("-alpha.png")}
    assert len(alpha) == 6
    for name, fig in alpha.items():
        seed = name.split("-s")[1][0]
        title = fig.get_suptitle()
        assert title.startswith("nb201-tiny") and f"seed {seed}" in title, title
        assert ("objective=mim-darts" in title) == name.startswith("mim")
        panels = [ax for ax in fig.axes if ax.axison]
        assert [ax.get_title() for ax in panels] == NB201_EDGES
        assert {ax.get_ylim() for ax in panels} == {(0.0, 0.5)}  # the largest weight is 0.5, in darts-s2
        legend, (xlabel,) = fig.legends[0], _texts(fig, "epoch")
        assert not _box(legend).overlaps(_box(xlabel))
        assert not any(_box(legend).overlaps(ax.get_window_extent()) for ax in panels)


def test_accuracy_picture_robust_with_optimum(pictures):
    from mimdarts import nasbench201

    fig = next(f for n, f in pictures.items() if n.startswith("nb201-acc-per-epoch"))
    ax = fig.axes[0]
    best = nasbench201.top(1, "cifar10_test")[0].cifar10_test
    optimum = [line for line in ax.get_lines() if "optimum" in line.get_label()]
    assert len(optimum) == 1 and set(optimum[0].get_ydata()) == {best}
    assert f"{best:.2f}" in optimum[0].get_label()
    low, high = ax.get_ylim()
    assert low > 80 and high >= best  # the collapsed seed (10%) does not stretch the axis...
    marks = [line for line in ax.get_lines() if line.get_marker() == "v"]
    assert len(marks) == 2  # ...it is marked, once per method, at epoch 2
    assert all(list(line.get_xdata()) == [2] for line in marks)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("median" in t and "inside the axis" in t for t in legend)
    assert any("lowest 10" in t for t in legend)
    assert not _box(fig.legends[0]).overlaps(_box(_texts(fig, "epoch")[0]))


def test_skip_picture_mean_and_interquartile_band(pictures):
    fig = next(f for n, f in pictures.items() if n.startswith("skips-per-epoch"))
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("mean" in t and "interquartile" in t for t in legend)
    # legend names: the preset and what differs from it (the table's also name objective=cls)
    assert "nb201-tiny epochs=3 (3 seeds)" in legend
    assert "nb201-tiny objective=mim-darts epochs=3 (3 seeds)" in legend
    assert not any("optimum" in line.get_label() for line in fig.axes[0].get_lines())


def test_interquartile_band_ignores_one_collapsed_seed_of_four(figures):
    seeds = [{1: 90.0, 2: 91.0}, {1: 91.0, 2: 92.0}, {1: 92.0, 2: 10.0}, {1: 89.0, 2: 90.0}]
    plots.plot_seed_bands({"": {"m": seeds}}, "acc", "band.png")
    band = figures["band.png"].axes[0].collections[0].get_paths()[0].vertices
    assert band[:, 1].min() > 60  # quartiles of (10, 90, 91, 92): 70 and 91.25


def _label_boxes(fig):
    """Every non-empty text in the cell panels (node names and edge labels)."""
    return [(t.get_text(), _box(t)) for ax in fig.axes for t in ax.texts if t.get_text()]


@pytest.mark.parametrize("space,cells", [
    ("nb201", {"seed 0": DENSE, "seed 1": "|skip_connect~0|+|none~0|skip_connect~1|+|"
                                          "skip_connect~0|none~1|avg_pool_3x3~2|"}),
    ("darts", {"seed 0": DARTS}),
])
def test_cell_labels_do_not_collide_and_key_says_none(figures, space, cells):
    plots.plot_cell_grid({k: load_arch(space, v).graph() for k, v in cells.items()}, "cells.png", "found")
    fig = figures["cells.png"]
    boxes = _label_boxes(fig)
    n_edges = sum(1 for v in cells.values() for *_, op in
                  (e for g, _ in load_arch(space, v).graph().values() for e in g[1]) if op)
    assert len(boxes) >= n_edges  # every labelled edge has its label
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            assert not box_a.overlaps(box_b), (a, b)
    assert all(t.get_fontsize() >= 8 for t in fig.findobj(Text) if t.get_text().strip())
    assert any("not drawn is none" in t.get_text() for t in fig.texts)


def test_alpha_picture_darts_edges(figures):
    rows = [[0.125] * 8 for _ in range(5)]  # the tiny preset's 2-node cells
    log = [{"epoch": e, "alpha_weights": {"alpha_normal": rows, "alpha_reduce": rows}} for e in (1, 2)]
    from mimdarts.sinks import edge_names
    from mimdarts.spaces.primitives import DARTS_PRIMITIVES

    plots.plot_alpha_trajectory(log, DARTS_PRIMITIVES, "a.png", "tiny, seed 0", edge_names("darts", 5))
    titles = [ax.get_title() for ax in figures["a.png"].axes if ax.axison]
    assert titles[0] == "normal 0←$c_{k-2}$" and titles[-1] == "reduce 1←0" and len(titles) == 10


def test_seed_counts_per_panel_when_they_differ(figures):
    curve = {3: 1.0, 6: 2.0}
    plots.plot_seed_bands({"objective": {"a": [curve, curve], "b": [curve]}, "plain CE": {"a": [curve]}},
                          "eig", "h.png")
    legend = [t.get_text() for t in figures["h.png"].legends[0].get_texts()]
    assert legend[:2] == ["a (seeds per panel: 2, 1)", "b (1 seed)"]
