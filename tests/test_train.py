"""Training a found cell: networks, sizes, drop-path, cutout, schedules, the loop, CLI, export."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch import nn

from mimdarts.cli import main
from mimdarts.config import config_from_dict, resolve_config
from mimdarts.data import INFOS, DeviceLoader, cutout, load_sample
from mimdarts.schedules import exponential_lr, linear_warmup_lr
from mimdarts.spaces import GENOTYPES, Genotype
from mimdarts.train import (
    LR_SCHEDULES,
    TRAIN_PRESETS,
    NetworkCIFAR,
    NetworkImageNet,
    TrainConfig,
    count_multiply_adds,
    count_parameters,
    drop_path,
)
from mimdarts.train.config import LR_SCHEDULE_NAMES
from mimdarts.train.networks import EvalCell

V2 = GENOTYPES["DARTS_V2"]


# tiny CPU-bound tensors: one intra-op thread (see conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- sizes


def test_darts_v2_cifar_parameter_count():
    net = NetworkCIFAR(V2, C=36, num_classes=10, layers=20, auxiliary=True)
    n = count_parameters(net)
    # DARTS's own log for this network reports "param size = 3.349342MB" (aux head excluded).
    assert n == 3_349_342
    assert round(n / 1e6, 1) == 3.3
    aux = sum(p.numel() for p in net.aux_head.parameters())
    assert count_parameters(net, exclude_aux=False) == n + aux


def test_darts_v2_imagenet_is_mobile_sized():
    net = NetworkImageNet(V2, C=48, num_classes=1000, layers=14)
    assert round(count_parameters(net) / 1e6, 1) == 4.7  # DARTS paper: 4.7M
    madds = count_multiply_adds(net, 224)
    assert 450e6 < madds < 600e6  # the mobile setting: < 600M multiply-adds


def test_multiply_add_counter_on_a_known_network():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, stride=2, padding=1,
                                                                  groups=8),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
    expected = 8 * 16 * 16 * 3 * 9 + 8 * 8 * 8 * 1 * 9 + 8 * 10
    assert count_multiply_adds(net, 16) == expected
    assert net.training  # mode restored


# ---------------------------------------------------------------- forward, aux, drop-path


def small_net(aux=True):
    return NetworkCIFAR(V2, C=8, num_classes=10, layers=5, auxiliary=aux)


def test_output_shapes_with_and_without_aux():
    x = torch.randn(3, 3, 32, 32)
    net = small_net()
    logits, aux = net.train()(x)
    assert logits.shape == aux.shape == (3, 10)
    logits, aux = net.eval()(x)
    assert logits.shape == (3, 10) and aux is None
    logits, aux = small_net(aux=False).train()(x)
    assert logits.shape == (3, 10) and aux is None
    inet = NetworkImageNet(V2, C=8, num_classes=7, layers=5).train()
    logits, aux = inet(torch.randn(2, 3, 224, 224))
    assert logits.shape == aux.shape == (2, 7)


def test_drop_path_is_inactive_in_eval_mode():
    net = small_net().eval()
    x = torch.randn(4, 3, 32, 32)
    ref = net(x)[0]
    net.drop_path_prob = 0.5
    assert torch.equal(net(x)[0], ref)
    torch.manual_seed(1)
    a = net.train()(x)[0]
    net.drop_path_prob = 0.0
    torch.manual_seed(1)
    b = net(x)[0]
    assert not torch.allclose(a, b)  # and it does act in training


def test_drop_path_function():
    x = torch.ones(4000, 2, 3)
    y = drop_path(x, 0.3, torch.Generator().manual_seed(0))
    per_sample = y[:, 0, 0]
    kept = per_sample > 0
    assert torch.allclose(per_sample[kept], torch.full_like(per_sample[kept], 1 / 0.7))
    assert torch.equal(y.amin((1, 2)), y.amax((1, 2)))  # whole samples, never parts
    assert abs(kept.float().mean().item() - 0.7) < 0.03
    assert torch.equal(drop_path(x, 0.0), x)


def test_drop_path_never_touches_identity_ops():
    # node 2 = skip(c_{k-2}) + skip(c_{k-1}); node 3 = two separable convs
    g = Genotype.make([("skip_connect", 0), ("skip_connect", 1), ("sep_conv_3x3", 0),
                       ("sep_conv_3x3", 1)], [2, 3], [("max_pool_3x3", 0), ("max_pool_3x3", 1),
                                                    ("max_pool_3x3", 0), ("max_pool_3x3", 1)], [2, 3])
    cell = EvalCell(g, 8, 8, 8, reduction=False, reduction_prev=False).train()
    assert cell.droppable == (False, False, True, True)
    s0, s1 = torch.randn(64, 8, 6, 6), torch.randn(64, 8, 6, 6)
    out = cell(s0, s1, drop_prob=0.9)
    assert torch.allclose(out[:, :8], cell.pre0(s0) + cell.pre1(s1))  # never dropped
    dropped = out[:, 8:].flatten(1).abs().amax(1) == 0  # both conv branches dropped
    assert 0.6 < dropped.float().mean() < 0.95  # about 0.9 * 0.9


# ---------------------------------------------------------------- cutout


def test_cutout_zeroes_one_clipped_square_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.ones(2000, 3, 32, 32)
    y = cutout(x, 16, g)
    assert y.shape == x.shape and torch.equal(x, torch.ones_like(x))  # input untouched
    zero = y == 0
    assert torch.equal(zero[:, :1].expand_as(zero), zero)  # all channels alike
    m = zero[:, 0]
    rows, cols = m.any(2).sum(1), m.any(1).sum(1)
    assert torch.equal(m.sum((1, 2)), rows * cols)  # a rectangle...
    assert rows.min() >= 8 and rows.max() == 16 and cols.min() >= 8 and cols.max() == 16
    # ...the clipped 16x16 square around a centre uniform over the image: every pixel,
    # corners included, is covered sometimes; full squares are the common case
    assert m.any(0).all()
    full = (rows == 16) & (cols == 16)
    assert 0.2 < full.float().mean() < 0.35  # (17/32)^2 = 0.28
    assert torch.equal(cutout(x, 0, g), x)


def test_loader_cuts_out_training_images_only():
    data = load_sample("test")
    train = DeviceLoader(data, INFOS["cifar10-sample"], 64, torch.device("cpu"), cutout=16, pad=0)
    x, _ = next(iter(train))
    assert ((x == 0).all(1).flatten(1).sum(1) >= 64).all()
    test = DeviceLoader(data, INFOS["cifar10-sample"], 64, torch.device("cpu"), train=False,
                        cutout=16)
    x, _ = next(iter(test))
    assert ((x == 0).all(1).flatten(1).sum(1) < 64).all()


# ---------------------------------------------------------------- schedules and presets


def test_lr_schedules():
    assert set(LR_SCHEDULES) == set(LR_SCHEDULE_NAMES)
    pc = resolve_config("imagenet-pcdarts", root=TrainConfig, presets=TRAIN_PRESETS).optim
    lrs = [LR_SCHEDULES[pc.lr_schedule](e, pc) for e in range(pc.epochs)]

    # PC-DARTS's train_imagenet.py (batch 1024 > 256, so its 5-epoch warm-up applies):
    #   lr = 0.5 * (250 - 5 - e) / 245            if 250 - e > 5
    #   lr = 0.5 * (250 - e) / (245 * 5)          otherwise
    #   lr *= (e + 1) / 5                         if e < 5
    def theirs(e):
        lr = 0.5 * (245 - e) / 245 if 250 - e > 5 else 0.5 * (250 - e) / (245 * 5)
        return lr * (e + 1) / 5 if e < 5 else lr

    for e in (0, 1, 4, 5, 100, 200, 244, 245, 249):
        assert lrs[e] == pytest.approx(theirs(e), rel=1e-12), e
    assert lrs[100] == pytest.approx(0.29592, abs=1e-5) and lrs[249] == pytest.approx(0.00041, abs=1e-5)
    assert all(a >= b for a, b in zip(lrs[5:], lrs[6:]))  # 244 and 245 both 0.5 / 245
    assert linear_warmup_lr(3, 10, 1.0, 0) == pytest.approx(0.4)  # (10 - 5 - 3) / 5
    assert linear_warmup_lr(1, 2, 0.5, 1) == 0.5  # short runs: a 1-epoch tail
    assert exponential_lr(2, 0.1, 0.97) == pytest.approx(0.1 * 0.97 ** 2)
    c = resolve_config("cifar10", root=TrainConfig, presets=TRAIN_PRESETS).optim
    assert LR_SCHEDULES["cosine"](0, c) == 0.025
    assert LR_SCHEDULES["cosine"](300, c) == pytest.approx(0.0125)


def test_presets_hold_the_published_recipes():
    def cfg(name):
        return resolve_config(name, root=TrainConfig, presets=TRAIN_PRESETS)
    c10 = cfg("cifar10")
    assert (c10.optim.epochs, c10.optim.batch_size, c10.optim.lr, c10.optim.momentum,
            c10.optim.weight_decay, c10.optim.grad_clip, c10.optim.aux_weight, c10.optim.drop_path,
            c10.data.cutout, c10.model.channels, c10.model.layers, c10.model.network) == \
        (600, 96, 0.025, 0.9, 3e-4, 5.0, 0.4, 0.2, 16, 36, 20, "darts-cifar")
    # the authors' script keeps 3e-4 on CIFAR-100 and no auxiliary head on ImageNet
    assert cfg("cifar100").optim.weight_decay == 3e-4 and cfg("cifar100").data.dataset == "cifar100"
    assert not cfg("imagenet-pcdarts").model.auxiliary and cfg("imagenet-darts").model.auxiliary
    pc = cfg("imagenet-pcdarts")
    assert (pc.optim.batch_size, pc.optim.lr, pc.optim.warmup_epochs, pc.optim.weight_decay,
            pc.optim.epochs, pc.optim.label_smoothing, pc.data.color_jitter, pc.data.image_size,
            pc.model.channels, pc.model.layers) == (1024, 0.5, 5, 3e-5, 250, 0.1, 0.4, 224, 48, 14)
    dt = cfg("imagenet-darts")
    assert (dt.optim.batch_size, dt.optim.lr, dt.optim.lr_gamma, dt.optim.lr_schedule) == \
        (128, 0.1, 0.97, "exponential")


# ---------------------------------------------------------------- a real (short) training run

# Bundled real CIFAR-10: 768 training images, 2 epochs, C=8, 3 cells, aux head and
# drop-path on; final-epoch accuracy on 500 bundled test images. Seeds 1..5 gave 16.2% to
# 24.4% (chance: 10%, one standard deviation 1.3 points); the threshold is 14%.
TRAIN_ARGS = ["train", "--preset", "train-tiny", "--train-images", "768", "--test-images", "500",
              "--epochs", "2", "--lr", "0.1", "--channels", "8", "--cutout", "0",
              "--drop-path", "0.2", "--threads", "1", "--seed", "1", "--no-progress"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    code = main([*TRAIN_ARGS, "--out-dir", str(out), "--run-name", "r"])
    assert code == 0
    return out / "r"


def test_short_training_beats_chance_and_writes_a_run_folder(trained_run):
    log = [json.loads(line) for line in (trained_run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[-1]["test_top1"] > 14.0, log
    assert [r["drop_path"] for r in log] == [0.0, pytest.approx(0.1)]  # 0.2 * epoch / epochs
    assert log[0]["lr"] == 0.1 and log[1]["lr"] == pytest.approx(0.05)
    for key in ("train_loss", "train_acc", "test_loss", "test_top5", "epoch_time_s",
                "images_per_s"):
        assert key in log[-1]
    cfg = config_from_dict(yaml.safe_load((trained_run / "config.yaml").read_text()), TrainConfig)
    assert cfg.optim.epochs == 2 and cfg.model.genotype == "DARTS_V2"
    assert Genotype.from_json((trained_run / "genotype.json").read_text()) == V2
    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["final_test_top1"] == log[-1]["test_top1"]
    assert summary["params"] == count_parameters(NetworkCIFAR(V2, 8, 10, 3))
    assert "test set" in summary["best_epoch_test_top1"]["note"]
    ckpt = torch.load(trained_run / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and Genotype.from_json(ckpt["genotype"]) == V2


def test_cli_reports_params_and_final_accuracy(trained_run, tmp_path, capsys):
    assert main(["train", "--preset", "train-tiny", "--print-config", "--genotype", "DARTS_V1"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["genotype"] == "DARTS_V1"
    # the run folder of one search is a valid --genotype
    search_dir = tmp_path / "search"
    search_dir.mkdir()
    (search_dir / "genotype.json").write_text(GENOTYPES["DARTS_V1"].to_json())
    cfg = resolve_config("train-tiny", overrides={"genotype": str(search_dir)}, root=TrainConfig,
                         presets=TRAIN_PRESETS)
    from mimdarts.train.loop import load_architecture
    assert load_architecture(cfg)[1] == GENOTYPES["DARTS_V1"]


def test_imagenet_folder_training(tmp_path):
    # the ImageNet path end to end on a tiny folder: FolderLoader, RandomResizedCrop + jitter,
    # the ImageNet network at 224, warm-up schedule, label smoothing, top-5
    from PIL import Image
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 4), ("val", 2)):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                px = torch.randint(0, 256, (40, 48, 3), generator=g, dtype=torch.uint8).numpy()
                Image.fromarray(px).save(tmp_path / split / c / f"{i}.png")
    cfg = resolve_config("imagenet-pcdarts", overrides={
        "data_dir": str(tmp_path), "workers": 0, "channels": 16, "layers": 5, "batch_size": 4,
        "epochs": 2, "warmup_epochs": 1, "threads": 1, "out_dir": str(tmp_path / "runs"),
        "run_name": "in"}, root=TrainConfig, presets=TRAIN_PRESETS)
    from mimdarts.train import train
    r = train(cfg, progress=False)
    assert r.trainer.info.num_classes == 2  # sized by the folder
    assert r.history[-1]["test_top5"] == 100.0  # top-5 of 2 classes
    assert r.summary["image_size"] == 224 and r.summary["epochs_done"] == 2
    assert [h["lr"] for h in r.history] == [0.5, 0.5]  # 1 warm-up epoch, then decay from 0.5


def test_bf16_autocast_training_runs_in_bf16(tmp_path):
    # run.dtype=bf16 (on CUDA `auto` means bf16): the forward runs under autocast, the loss
    # and the metrics stay fp32 and finite
    from mimdarts.train import train
    from mimdarts.train.loop import build_trainer
    cfg = resolve_config("train-tiny", overrides={
        "dtype": "bf16", "threads": 1, "train_images": 64, "test_images": 32,
        "out_dir": str(tmp_path / "runs"), "run_name": "bf16"}, root=TrainConfig,
        presets=TRAIN_PRESETS)
    t = build_trainer(cfg)
    x, _ = next(iter(t.train_loader))
    with t.autocast():
        logits, _ = t.net(x)
    assert logits.dtype == torch.bfloat16
    r = train(cfg, progress=False)
    h = r.history[-1]
    assert all(torch.isfinite(torch.tensor(h[k])) for k in ("train_loss", "test_loss"))


def test_report_puts_training_runs_in_their_own_table(trained_run, capsys):
    assert main(["report", str(trained_run.parent)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((trained_run / "summary.json").read_text())
    assert "### Training runs" in out and "nfinished" not in out
    row = next(line for line in out.splitlines() if line.startswith("| darts-cifar"))
    assert f"| {summary['final_test_top1']:.2f} |" in row and "| 1 |" in row


def test_resuming_a_finished_training_changes_nothing(trained_run, capsys, tmp_path):
    import shutil
    run = shutil.copytree(trained_run, tmp_path / "r")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "already finished" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


# ---------------------------------------------------------------- export


def test_single_file_model_round_trip(trained_run, tmp_path):
    from mimdarts.train.export import load_trained
    assert main(["export", str(trained_run), "--out", str(tmp_path / "m.pt")]) == 0
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert Genotype.from_json(state["genotype"]) == V2
    m = load_trained(tmp_path / "m.pt")
    assert not m.model.training and m.genotype == V2 and m.epoch == 2
    ref = load_trained(trained_run)  # straight from the run folder's checkpoint
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(m.model(m.normalize(x))[0], ref.model(ref.normalize(x))[0])
    assert m.predict(x).shape == (4,)


def test_onnx_export_matches_pytorch(trained_run, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    from mimdarts.train.export import load_trained
    # into folders that do not exist yet: made first
    assert main(["export", str(trained_run), "--out", str(tmp_path / "a" / "m.pt"),
                 "--onnx", str(tmp_path / "b" / "m.onnx")]) == 0
    # checked before it says so: the ONNX checker and onnxruntime against PyTorch
    assert "(ONNX checker passed; onnxruntime logits equal PyTorch's" in capsys.readouterr().out
    m = load_trained(tmp_path / "a" / "m.pt")
    raw = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    assert torch.equal(m(raw), m.model(m.normalize(raw))[0])  # the model is callable on images
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        ref = m.model(x)[0].numpy()
    sess = ort.InferenceSession(str(tmp_path / "b" / "m.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(["logits"], {"images": x.numpy()})[0]
    assert out.shape == (5, 10)
    assert abs(out - ref).max() < 1e-4 * max(1.0, abs(ref).max())




def test_an_unfinished_search_is_trained_only_when_asked(tmp_path, capsys):
    run = tmp_path / "s"
    run.mkdir()
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    (run / "config.yaml").write_text(resolve_config("nb201-tiny").to_yaml())
    (run / "genotype.json").write_text(json.dumps({"space": "nb201", "arch": cell}))
    (run / "log.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n')
    argv = ["train", "--preset", "nb201-quick", "--genotype", str(run), "--epochs", "1",
            "--train-images", "64", "--test-images", "32", "--out-dir", str(tmp_path / "o"),
            "--no-progress"]
    assert main(argv) == 2
    assert "unfinished search" in capsys.readouterr().err and not (tmp_path / "o").exists()
    assert main([*argv, "--allow-unfinished"]) == 0
    err = capsys.readouterr().err
    assert "warning: training the cell of an unfinished search" in err and "after epoch 2" in err


def test_a_genotype_given_as_text_is_no_run_folder():
    from mimdarts.runrequest import check_search_finished
    from mimdarts.spaces import GENOTYPES
    assert check_search_finished(str(GENOTYPES["DARTS_V2"]) * 3) is None  # too long for a path


@pytest.mark.parametrize("preset, sizes", [("train-tiny", {}), ("nb201", {
    "dataset": "cifar10-sample", "channels": 4, "layers": 1, "epochs": 1})])
def test_a_training_step_reads_nothing_back_to_the_host(preset, sizes, one_thread):
    """Every step of an epoch after the first (data, forward with drop-path and the auxiliary
    head, backward, clipping, SGD, the divergence guard, the epoch sums) with host reads made
    to raise (tests/hostsync.py); only the epoch's end reads its sums."""
    from hostsync import host_reads_raise

    from mimdarts.train.loop import build_trainer, train_epoch
    cfg = resolve_config(preset, overrides={"device": "cpu", "train_images": 128, "test_images": 64,
                                            "batch_size": 32, **sizes}, root=TrainConfig,
                         presets=TRAIN_PRESETS)
    t = build_trainer(cfg)
    steps = {id(st["step"]) for st in t.optimizer.state.values() if "step" in st}  # SGD: none

    armed = []

    def hook(images, terms, rates):
        watch.armed = t.step < t.steps_per_epoch  # the first step made; off before the epoch's end
        armed.append(watch.armed)

    with host_reads_raise(steps, armed=False) as watch:
        out = train_epoch(t, hook)
    assert watch.seen == [] and out["train_loss"] > 0
    assert armed == [True] * (t.steps_per_epoch - 1) + [False]  # steps 2.. were watched
