"""The settings that bring the code to the paper and the authors' code: augmentation of the
reconstruction-only ablations, the pixel-space mask fill, the final-architecture choice, the
group_edges rule, and checkpoints of older runs under the new setting types."""

from __future__ import annotations

import json

import pytest
import torch

from mimdarts.config import PRESETS, SearchConfig, apply_overrides, resolve_config
from mimdarts.data import INFOS, DeviceLoader, TensorData, normalize
from mimdarts.errors import ConfigError
from mimdarts.search.algorithm import final_epoch, score_val_half
from mimdarts.search.loop import CHECKPOINT_FORMAT, build_searcher, search
from mimdarts.search.masking import apply_mask, pixel_fill
from mimdarts.switches import CPU_GROUPED_MAX_ELEMENTS, resolve_cuda_graphs, resolve_group_edges


def test_reconstruction_only_presets_see_no_crop_or_flip():
    for name in PRESETS:
        cfg = resolve_config(name)
        expected = name not in ("table7-rec", "table7-rec-mask")
        assert cfg.data.augment is expected, name
    assert resolve_config("table7-rec").objective.objective == "rec"
    assert resolve_config("table7-rec-mask").objective.objective == "mim"


def test_loader_without_augment_yields_the_plain_images():
    info = INFOS["cifar10-sample"]
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.randint(0, 256, (8, 3, 32, 32), generator=g, dtype=torch.uint8),
                      torch.arange(8))
    mean, std = torch.tensor(info.mean), torch.tensor(info.std)
    plain = DeviceLoader(data, info, 4, torch.device("cpu"), augment=False, seed=1)
    for x, y in plain:  # shuffled, not augmented
        assert torch.equal(x, normalize(data.images[y], mean, std))
    augmented = DeviceLoader(data, info, 4, torch.device("cpu"), seed=1)
    assert any(not torch.equal(x, normalize(data.images[y], mean, std)) for x, y in augmented)


def test_pixel_space_fill_is_black():
    info = INFOS["cifar10"]
    fill = pixel_fill(0.0, info.mean, info.std)
    x = torch.randn(2, 3, 8, 8)
    mask = torch.tensor([[True, False, False, False]] * 2)
    out = apply_mask(x, mask, 4, torch.tensor(fill))
    std, mean = torch.tensor(info.std)[:, None, None], torch.tensor(info.mean)[:, None, None]
    pixels = out[:, :, :4, :4] * std + mean
    assert torch.allclose(pixels, torch.zeros_like(pixels), atol=1e-6)
    assert torch.equal(out[:, :, 4:], x[:, :, 4:])
    with pytest.raises(ConfigError, match="mask_fill_space 'rgb'"):
        apply_overrides(SearchConfig(), {"mask_fill_space": "rgb"})


def test_pixel_space_fill_reaches_the_objective():
    cfg = resolve_config("nb201-tiny", overrides={"objective": "cls-masked", "mask_fill": 0.0,
                                                  "mask_fill_space": "pixel"})
    from mimdarts.search.loop import build_searcher
    s = build_searcher(cfg)
    x, y = next(iter(s.train_loader))
    prepared = s.objective.prepare(x, y)
    masked = prepared.extras["mask"][0].nonzero()[0, 0]  # one masked patch of image 0
    P, per_row = 8, 32 // 8
    r, c = divmod(int(masked), per_row)
    patch = prepared.inputs[0, :, r * P:(r + 1) * P, c * P:(c + 1) * P]
    expected = torch.tensor(pixel_fill(0.0, s.info.mean, s.info.std))
    assert torch.allclose(patch, expected[:, None, None].expand_as(patch))


def test_final_epoch_rule():
    log = [{"select_acc": 30.0, "eval_clean_acc": 50.0}, {"select_acc": 40.0},
           {"select_acc": 40.0}, {"select_acc": 35.0}]
    assert final_epoch(log, "last") == 4
    assert final_epoch(log, "best") == 2  # the first of the best
    # reconstruction only: the first epoch with the lowest whole-half loss
    assert final_epoch([{"select_loss": 0.5}, {"select_loss": 0.3}, {"select_loss": 0.3}], "best") == 2
    # logs older than the whole-half score: the val head's accuracy
    assert final_epoch([{"eval_input_acc": 30.0}, {"eval_input_acc": 40.0}], "best") == 2
    assert final_epoch([{"eval_clean_acc": 10.0}, {"eval_clean_acc": 12.0}], "best") == 2


def test_paper_rows_pick_the_best_epoch_baselines_the_last():
    for name in PRESETS:
        cfg = resolve_config(name)
        paper_row = name in ("mim-darts-c10", "mim-darts-c100") or name.startswith(("table6-", "table7-"))
        assert cfg.optim.final_arch == ("best" if paper_row else "last"), name


def _searcher(objective: str, **overrides):
    cfg = resolve_config("nb201-tiny", overrides={"objective": objective, "final_arch": "best",
                                                  "threads": 1, "device": "cpu", **overrides})
    return build_searcher(cfg)


def test_best_scores_the_whole_val_half_with_fresh_masks(monkeypatch):
    s = _searcher("mim-darts", train_images=100)  # val half 50: 3 batches of 16 and one of 2
    seen = []
    prepare = s.objective.prepare
    monkeypatch.setattr(s.objective, "prepare",
                        lambda x, y, g=None: seen.append(y) or prepare(x, y, g))
    stream = s.val_loader.state_dict()
    s.epoch = 1
    first = score_val_half(s)
    labels = torch.cat(seen)
    assert sorted(labels.tolist()) == sorted(s.val_loader.labels.tolist())  # every image once
    assert set(first) == {"select_acc", "select_loss"} and 0 <= first["select_acc"] <= 100
    assert score_val_half(s) == first  # the same epoch: the same masks and crops
    s.epoch = 2  # the next epoch: fresh masks, other figures from the same weights
    assert score_val_half(s)["select_loss"] != first["select_loss"]
    # the search's α stream is where it was
    after = s.val_loader.state_dict()
    assert torch.equal(after["generator"], stream["generator"]) and after["position"] == stream["position"]


def test_best_changes_no_step_of_the_search(tmp_path):
    def run(rule):
        cfg = resolve_config("nb201-tiny", overrides={
            "objective": "cls-masked", "epochs": 3, "eval_images": 32, "final_arch": rule,
            "arch_lr": 0.05, "out_dir": str(tmp_path), "run_name": rule, "threads": 1})
        return search(cfg, progress=False)

    last, best = run("last"), run("best")
    extra = {"select_acc", "select_loss", "epoch_time_s", "images_per_s"}
    assert [{k: v for k, v in r.items() if k not in extra} for r in best.history] == \
        [{k: v for k, v in r.items() if k not in extra} for r in last.history]
    chosen = final_epoch(best.history, "best")
    scores = [r["select_acc"] for r in best.history]
    assert chosen == scores.index(max(scores)) + 1  # the first maximum
    assert best.arch_epoch == chosen and str(best.genotype) == best.history[chosen - 1]["genotype"]
    result = json.loads((tmp_path / "best" / "result.json").read_text())
    assert result["final_arch"] == "best" and result["arch_epoch"] == chosen
    assert result["genotype_text"] == best.history[chosen - 1]["genotype"]
    # both cells, with their epochs, and the reason in words
    assert result["last_epoch"] == 3 and result["last_genotype_text"] == best.history[-1]["genotype"]
    assert f"epoch {chosen}: the highest accuracy on the whole val half" in result["selection"]
    assert "nb201_cifar10_test" in result and "last_nb201_cifar10_test" in result
    genotype = json.loads((tmp_path / "best" / "genotype.json").read_text())
    assert genotype == result["genotype"]
    assert "the last epoch's cell" in json.loads((tmp_path / "last" / "result.json").read_text())["selection"]


def test_best_for_reconstruction_only_picks_the_lowest_val_loss():
    cfg = resolve_config("nb201-tiny", overrides={"final_arch": "best", "objective": "rec",
                                                  "epochs": 3, "arch_lr": 0.05, "threads": 1})
    res = search(cfg, write=False, progress=False)
    losses = [r["select_loss"] for r in res.history]
    assert all("select_acc" not in r for r in res.history)
    assert res.arch_epoch == losses.index(min(losses)) + 1
    assert "lowest loss on the whole val half" in res.summary["selection"]
    with pytest.raises(ConfigError, match="final_arch 'first'"):
        resolve_config("nb201-tiny", overrides={"final_arch": "first"})


def test_group_edges_auto_rule():
    assert resolve_group_edges("true") and not resolve_group_edges("false")
    assert resolve_group_edges("auto")  # outside a run: grouped
    assert not resolve_group_edges("auto", skip_none=False)
    assert resolve_group_edges("auto", True, "cuda", 256, 16)
    assert resolve_group_edges("auto", True, "cpu", 16, 8)  # bench "small"
    assert not resolve_group_edges("auto", True, "cpu", 64, 16)  # bench "paper"
    n = CPU_GROUPED_MAX_ELEMENTS // (32 * 32)
    assert resolve_group_edges("auto", True, "cpu", n, 1)
    assert not resolve_group_edges("auto", True, "cpu", n + 1, 1)


def test_cuda_graphs_auto_rule():
    # on wherever a graph can be captured (one CUDA process), with the reason meta.json keeps
    assert resolve_cuda_graphs("auto", "cuda") == (True, "on: cuda_graphs=auto, one CUDA process")
    assert resolve_cuda_graphs("true", "cuda")[0]
    assert resolve_cuda_graphs("false", "cuda") == (False, "off: cuda_graphs=false")
    for args in (("auto", "cpu"), ("true", "cpu"), ("auto", "cuda", 2), ("auto", "cuda", 1, False, True)):
        on, why = resolve_cuda_graphs(*args)
        assert not on and why.startswith("off: ")
    assert not resolve_cuda_graphs("auto", "cuda", 1, fault_injection=True)[0]
    assert SearchConfig().run.cuda_graphs == "auto"
    assert apply_overrides(SearchConfig(), {"cuda_graphs": True}).run.cuda_graphs == "true"
    with pytest.raises(ConfigError, match="cuda_graphs 'yes' is not known; choose auto, true, false"):
        apply_overrides(SearchConfig(), {"cuda_graphs": "yes"})


@pytest.mark.parametrize("raw, expected", [(True, "true"), (False, "false"), ("auto", "auto"),
                                           ("false", "false")])
def test_group_edges_reads_bools_and_words(raw, expected):
    assert apply_overrides(SearchConfig(), {"group_edges": raw}).model.group_edges == expected
    from mimdarts.config import ModelConfig
    assert ModelConfig(group_edges=raw).group_edges == expected  # Python callers: bools too
    with pytest.raises(ConfigError, match="group_edges 'maybe'"):
        apply_overrides(SearchConfig(), {"group_edges": "maybe"})


def test_search_resolves_group_edges_by_shape(tmp_path):
    cfg = resolve_config("nb201-tiny", overrides={"out_dir": str(tmp_path), "run_name": "r"})
    search(cfg, progress=False)
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["resolved"] == {"group_edges": True,
                                "cuda_graphs": "off: cpu device (graphs are CUDA's)"}


def test_checkpoint_written_before_group_edges_auto_resumes():
    # runs of earlier versions saved group_edges as a bool (and had no augment, final_arch,
    # mask_fill_space, hessian_*): their checkpoints still match their config.yaml
    from mimdarts.resume import check_checkpoint

    cfg = apply_overrides(SearchConfig(), {"group_edges": "true"})
    old = cfg.to_dict()
    old["model"]["group_edges"] = True
    del old["data"]["augment"], old["optim"]["final_arch"], old["objective"]["mask_fill_space"]
    del old["optim"]["hessian_every"], old["optim"]["hessian_iters"]
    ckpt = {"format": CHECKPOINT_FORMAT, "resume": {"device": "cpu"}, "config": json.dumps(old)}
    check_checkpoint(ckpt, cfg, CHECKPOINT_FORMAT, "c.pt", torch.device("cpu"))
    with pytest.raises(ConfigError, match="model.group_edges"):
        check_checkpoint(ckpt, apply_overrides(cfg, {"group_edges": "false"}), CHECKPOINT_FORMAT,
                         "c.pt", torch.device("cpu"))


def test_resume_refuses_a_checkpoint_of_another_layout(tmp_path):
    # group_edges=auto resolves by device and shape: a checkpoint written with the other
    # layout (another rule, device or batch) is refused by name, not by a state-dict error
    cfg = resolve_config("nb201-tiny", overrides={"out_dir": str(tmp_path), "run_name": "r",
                                                  "eval_images": 0})
    search(cfg, progress=False)
    path = tmp_path / "r" / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    assert json.loads(ckpt["resume"]["resolved"])["group_edges"] is True
    ckpt["resume"]["resolved"] = json.dumps({"group_edges": False})
    torch.save(ckpt, path)
    with pytest.raises(ConfigError, match="holds a per-edge supernet, but group_edges=auto gives "
                                          "a grouped one"):
        search(cfg, progress=False, resume=tmp_path / "r")
