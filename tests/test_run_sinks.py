"""Where figures go: the console line per epoch, and TensorBoard event files read back with
TensorBoard's own reader."""

from __future__ import annotations

import json

import pytest

from mimdarts.cli import main
from mimdarts.sinks import alpha_heatmap, console_line, edge_names


def test_console_line_names_what_matters():
    line = console_line({"epoch": 3, "train_loss": 2.1043, "val_loss": 2.2, "train_acc": 23.1,
                         "genotype": "|skip_connect~0|+...", "nb201_cifar10_test": 88.214,
                         "epoch_time_s": 61.23}, 30)
    assert line.startswith("epoch 3/30  loss 2.104  val_loss 2.2  acc 23.1")
    assert "cell |skip_connect~0|+..." in line and "NB201 C-10 88.21" in line
    assert line.endswith("61.2 s")


def test_no_progress_prints_a_line_per_epoch(tmp_path, capsys, one_thread):
    assert main(["search", "--preset", "nb201-tiny", "--epochs", "2", "--no-progress",
                 "--eval-images", "16", "--out-dir", str(tmp_path), "--run-name", "r"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("epoch ")]
    assert [x.split()[1] for x in lines] == ["1/2", "2/2"]
    assert all("NB201 C-10" in x for x in lines)


def _events(path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    acc = event_accumulator.EventAccumulator(str(path), size_guidance={
        "scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_tensorboard_search(tmp_path, one_thread):
    pytest.importorskip("tensorboard")
    assert main(["search", "--preset", "nb201-tiny", "--objective", "mim-darts", "--epochs", "2",
                 "--tensorboard", "--log-every", "2", "--no-progress", "--eval-images", "16",
                 "--out-dir", str(tmp_path), "--run-name", "r"]) == 0
    acc = _events(tmp_path / "r" / "tensorboard")
    scalars = set(acc.Tags()["scalars"])
    steps = 128 // 2 // 16  # images per half / batch: iterations per epoch
    for tag in ("train_loss", "train_cls", "train_rec", "train_lambda", "val_loss", "w_lr",
                "alpha_lr"):
        assert [e.step for e in acc.Scalars(f"step/{tag}")] == list(range(2, 2 * steps + 1, 2))
    for tag in ("train_acc", "val_acc", "eval_clean_acc", "eval_input_acc", "n_skip", "n_none",
                "nb201_cifar10_test", "nb201_cifar100_test", "nb201_imagenet16_120_test"):
        assert [e.step for e in acc.Scalars(f"epoch/{tag}")] == [1, 2], tag
    log = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert acc.Scalars("epoch/nb201_cifar10_test")[-1].value == pytest.approx(
        log[-1]["nb201_cifar10_test"], abs=1e-4)
    alpha = sorted(t for t in scalars if t.startswith("alpha/"))
    assert len(alpha) == 6 * 5 and "alpha/cell/1←0/skip_connect" in alpha
    assert acc.Scalars("alpha/cell/1←0/skip_connect")[-1].value == pytest.approx(
        log[-1]["alpha_weights"]["alpha"][0][1], abs=1e-5)
    images = set(acc.Tags()["images"])
    assert {"alpha_heatmap/cell", "pictures/recon"} <= images
    assert [e.step for e in acc.Images("pictures/recon")] == [2]  # snapshot_every 0: the last epoch
    tensors = set(acc.Tags()["tensors"])
    assert {"config/text_summary", "genotype/text_summary"} <= tensors
    hparams = _events(next((tmp_path / "r" / "tensorboard" / "hparams").glob("*"))
                      if (tmp_path / "r" / "tensorboard" / "hparams").is_dir()
                      else tmp_path / "r" / "tensorboard" / "hparams")
    assert any(t.startswith("final/") for t in hparams.Tags()["scalars"])


def test_tensorboard_training(tmp_path, one_thread):
    pytest.importorskip("tensorboard")
    assert main(["train", "--preset", "train-tiny", "--epochs", "2", "--tensorboard",
                 "--log-every", "4", "--no-progress", "--test-images", "32",
                 "--out-dir", str(tmp_path), "--run-name", "t"]) == 0
    acc = _events(tmp_path / "t" / "tensorboard")
    scalars = set(acc.Tags()["scalars"])
    assert {"step/loss", "step/cls", "step/lr", "step/drop_path"} <= scalars
    assert {"epoch/train_loss", "epoch/train_acc", "epoch/test_top1", "epoch/test_top5",
            "epoch/lr"} <= scalars
    assert [e.step for e in acc.Scalars("epoch/test_top1")] == [1, 2]


def test_tensorboard_without_its_package_writes_nothing(tmp_path, monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if not installed
    assert main(["search", "--preset", "nb201-tiny", "--tensorboard", "--no-progress",
                 "--out-dir", str(tmp_path), "--run-name", "r"]) == 2
    assert "needs the tensorboard package: pip install 'mimdarts[tensorboard]'" in \
        capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_edges_are_named_by_node_pair():
    assert edge_names("nb201", 6) == ["1←0", "2←0", "2←1", "3←0", "3←1", "3←2"]
    darts = edge_names("darts", 14)  # 4 nodes: 2 + 3 + 4 + 5 edges, node by node
    assert darts[:5] == ["0←c_{k-2}", "0←c_{k-1}", "1←c_{k-2}", "1←c_{k-1}", "1←0"]
    assert darts[-1] == "3←2" and len(set(darts)) == 14
    assert edge_names("darts", 5)[-1] == "1←0"  # the 2-node cells of the tiny preset
    assert edge_names("nb201", 4) == ["edge0", "edge1", "edge2", "edge3"]  # not a known shape


def _sink_run(tmp_path, epochs=2):
    """A TensorBoardSink fed two NAS-Bench-201 epoch records directly (no search)."""
    from types import SimpleNamespace

    from mimdarts.config import resolve_config
    from mimdarts.sinks import TensorBoardSink
    from mimdarts.spaces.primitives import NB201_PRIMITIVES

    sink = TensorBoardSink()
    sink.start(SimpleNamespace(cfg=resolve_config("nb201-tiny"),
                               model=SimpleNamespace(op_names=NB201_PRIMITIVES)),
               SimpleNamespace(path=tmp_path))
    for e in range(1, epochs + 1):
        rows = [[0.2 + 0.01 * e * (k == 1) - 0.0025 * e * (k != 1) for k in range(5)] for _ in range(6)]
        sink.epoch({"epoch": e, "val_acc": 10.0 * e, "alpha_weights": {"alpha": rows}}, {})
    sink.close()
    return _events(tmp_path / "tensorboard")


def test_tensorboard_custom_scalars_chart_per_edge(tmp_path):
    import re

    layout_pb2 = pytest.importorskip("tensorboard.plugins.custom_scalar.layout_pb2")
    acc = _sink_run(tmp_path)
    scalars = set(acc.Tags()["scalars"])
    for edge in ("1←0", "2←0", "2←1", "3←0", "3←1", "3←2"):
        assert f"alpha/cell/{edge}/skip_connect" in scalars
    assert [e.step for e in acc.Scalars("alpha/cell/3←2/skip_connect")] == [1, 2]
    config = acc.Tensors("custom_scalars__config__")
    assert len(config) == 1  # written once, with the first record
    layout = layout_pb2.Layout.FromString(config[0].tensor_proto.string_val[0])
    charts = {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}
    assert list(charts) == ["cell 1←0", "cell 2←0", "cell 2←1", "cell 3←0", "cell 3←1", "cell 3←2"]
    for title, regexes in charts.items():  # each chart: the 5 ops of its edge, nothing else
        edge = title.split()[1]
        matched = {t for t in scalars if any(re.match(r, t) for r in regexes)}
        assert matched == {t for t in scalars if t.startswith(f"alpha/cell/{edge}/")}
        assert len(matched) == 5
    assert {"epoch/val_acc"} <= scalars and "alpha_heatmap/cell" in acc.Tags()["images"]


def test_alpha_heatmap_fixed_scale_and_colour_bar():
    rows = [[0.9, 0.05, 0.05], [0.3, 0.3, 0.4]]
    fig = alpha_heatmap("arch, epoch 3", rows, ("none", "skip_connect", "avg_pool_3x3"), ["1←0", "2←0"])
    image = fig.axes[0].images[0]
    assert image.get_clim() == (0.0, 1.0)  # not stretched to the largest weight
    assert len(fig.axes) == 2 and fig.axes[1].get_ylabel() == "softmax(α)"  # the colour bar
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["1←0", "2←0"]
    assert "epoch 3" in fig.axes[0].get_title()
