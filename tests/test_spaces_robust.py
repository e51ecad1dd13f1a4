"""RobustDARTS's reduced spaces S1-S4 (spaces/robust.py) and the `noise` op (spaces/noise.py).

Checked: each space builds in both layouts and takes a search step; a derived cell holds only
its edges' candidates (never `none`); `mimdarts search --space darts-sN` writes such a cell;
the fast path (grouped edges, shared ReLU, folded weights, channels_last) computes the same
loss and α gradients as the reference path in float64, noise included (one draw per cell,
so every layout sees the same samples); the evaluation network trains a cell with noise.
"""

from __future__ import annotations

import json
import re

import pytest
import test_spaces_fastpath as fastpath
import torch

from mimdarts.cli import main
from mimdarts.config import ModelConfig, resolve_config
from mimdarts.search import Architect
from mimdarts.spaces import SPACES, Genotype, derive_genotype, get_space, load_arch
from mimdarts.spaces.candidates import DARTS_OPS
from mimdarts.spaces.ops import Noise
from mimdarts.spaces.robust import ROBUST_SPACES, edge_op_names, outside_space

SPACE_NAMES = ["darts-s1", "darts-s2", "darts-s3", "darts-s4"]
# the 14 edge pairs of S1 as REFERENCE.md section 9 writes them
ABBREV = {"skip": "skip_connect", "dil3": "dil_conv_3x3", "dil5": "dil_conv_5x5",
          "sep3": "sep_conv_3x3", "max": "max_pool_3x3", "avg": "avg_pool_3x3"}
S1_NORMAL = ("skip|dil3, skip|dil5, skip|dil5, skip|sep3, skip|dil3, max|skip, skip|sep3, "
             "skip|sep3, skip|dil3, skip|sep3, max|skip, skip|dil3, dil3|dil5, dil3|dil5")
S1_REDUCE = ("max|avg, max|dil3, max|avg, max|avg, skip|dil5, max|avg, max|sep3, skip|dil3, "
             "skip|dil5, max|avg, max|avg, skip|dil5, skip|dil5, skip|dil5")


def _pairs(text: str) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(ABBREV[op] for op in pair.split("|")) for pair in text.split(", "))


def build(space: str, skip_none: bool = True, share_relu: bool = True, group_edges: bool = False,
          fold_weights: bool = False):
    """A tiny supernet of ``space`` (C=4, 3 cells, 2 nodes), as test_fastpath builds its own."""
    cfg = ModelConfig(space=space, channels=4, layers=3, nodes=2, skip_none=skip_none,
                      share_relu=share_relu, group_edges=str(group_edges).lower(),
                      fold_weights=fold_weights)
    return get_space(space).build(cfg, 10)


def test_the_spaces_are_registered_with_robustdarts_candidates():
    assert set(SPACE_NAMES) <= set(SPACES)
    assert all(SPACES[s].family == "darts" for s in SPACE_NAMES)
    assert edge_op_names("darts-s1", "normal") == _pairs(S1_NORMAL)
    assert edge_op_names("darts-s1", "reduce") == _pairs(S1_REDUCE)
    for cell in ("normal", "reduce"):
        assert set(edge_op_names("darts-s2", cell)) == {("skip_connect", "sep_conv_3x3")}
        assert set(edge_op_names("darts-s3", cell)) == {("none", "skip_connect", "sep_conv_3x3")}
        assert set(edge_op_names("darts-s4", cell)) == {("noise", "sep_conv_3x3")}
    assert len(edge_op_names("darts-s2", "normal", steps=5)) == 20  # one set: any node count
    with pytest.raises(Exception, match="nodes <= 4"):
        edge_op_names("darts-s1", "normal", steps=5)


@pytest.mark.parametrize("space", SPACE_NAMES)
@pytest.mark.parametrize("group_edges", [False, True])
def test_every_space_builds_and_takes_a_search_step(space, group_edges):
    torch.manual_seed(0)
    model = build(space, group_edges=group_edges)
    width = 3 if space == "darts-s3" else 2
    assert model.alpha_normal.shape == model.alpha_reduce.shape == (5, width)
    assert model.space == space
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 10, (4,))
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    for alpha in model.alpha_parameters():
        assert alpha.grad is not None and torch.isfinite(alpha.grad).all() and alpha.grad.abs().sum() > 0
    assert outside_space(space, model.genotype()) == []


@pytest.mark.parametrize("space", SPACE_NAMES)
def test_derived_cells_hold_only_each_edges_candidates(space):
    g = torch.Generator().manual_seed(0)
    for steps in (2, 4):
        ops = {cell: edge_op_names(space, cell, steps) for cell in ("normal", "reduce")}
        n_edges, width = len(ops["normal"]), len(ops["normal"][0])
        for _ in range(20):
            w = torch.softmax(3 * torch.randn(2, n_edges, width, generator=g), dim=-1)
            if space == "darts-s3":
                w[:, :, 0] = 1.0  # `none` strongest everywhere: still never chosen
            genotype = derive_genotype(w[0], w[1], steps, ops)
            assert outside_space(space, genotype) == []
            assert "none" not in {op for op, _ in genotype.normal + genotype.reduce}
    # a DARTS cell with ops outside the space is told apart, edge by edge
    v2 = load_arch("darts", "DARTS_V2")
    assert outside_space("darts-s2", v2) and outside_space("darts-s2", v2)[0].startswith("normal")


def test_the_noise_count_is_logged_for_s4_only():
    s4 = build("darts-s4").genotype()
    assert set(s4.summary()) == {"n_skip_normal", "n_skip_reduce", "n_noise_normal", "n_noise_reduce"}
    assert s4.summary()["n_noise_normal"] == s4.count("noise")
    assert set(build("darts-s2").genotype().summary()) == {"n_skip_normal", "n_skip_reduce"}
    # the count is no part of the cell: equal to, and written as, a plain genotype
    assert Genotype.from_json(s4.to_json()) == s4 and Genotype.parse(str(s4)) == s4


def test_noise_op_draws_fresh_standard_normal_samples():
    op = DARTS_OPS.build("noise", 4, 2, affine=True)
    assert isinstance(op, Noise) and not list(op.parameters())
    x = torch.randn(64, 4, 16, 16, requires_grad=True)
    y = op(x)
    assert y.shape == (64, 4, 8, 8) and not y.requires_grad
    assert abs(float(y.mean())) < 0.05 and abs(float(y.std()) - 1) < 0.05
    assert not torch.equal(op(x), y)  # fresh on every call
    torch.manual_seed(3)
    a = op(x)
    torch.manual_seed(3)
    assert torch.equal(op(x), a)  # from torch's global generator
    assert DARTS_OPS.names == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
                               "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


@pytest.mark.parametrize("group_edges", [False, True])
def test_a_search_cell_draws_its_noise_once_in_edge_order(group_edges):
    # weights all on noise: node i is the sum of its edges' slices of one draw [E, B, C, H, W]
    torch.manual_seed(0)
    cell = build("darts-s4", group_edges=group_edges).cells[0].double()
    s0 = s1 = torch.randn(2, 12, 8, 8, dtype=torch.float64)
    weights = torch.tensor([[1.0, 0.0]] * 5, dtype=torch.float64)
    torch.manual_seed(7)
    out = cell(s0, s1, weights)
    torch.manual_seed(7)
    draw = torch.randn(5, 2, 4, 8, 8, dtype=torch.float64)
    torch.testing.assert_close(out, torch.cat([draw[0] + draw[1], draw[2] + draw[3] + draw[4]], 1),
                               rtol=0, atol=1e-12)


def _seeded(monkeypatch, seed: int = 11) -> None:
    """test_fastpath's helpers on the S-spaces, the global RNG reseeded before each step so
    both paths draw the same noise (building a grouped supernet consumes other random numbers)."""
    class SeededArchitect(Architect):
        def alpha_grads(self, *args, **kwargs):
            torch.manual_seed(seed)
            return super().alpha_grads(*args, **kwargs)

    monkeypatch.setattr(fastpath, "Architect", SeededArchitect)
    monkeypatch.setattr(fastpath, "build_supernet", lambda space, skip_none, share_relu, group_edges,
                        fold_weights=False: build(space, skip_none, share_relu, group_edges,
                                                  fold_weights))


@pytest.mark.parametrize("space,group_edges,order", [
    ("darts-s1", False, 1), ("darts-s1", True, 1), ("darts-s2", True, 1), ("darts-s3", True, 1),
    ("darts-s4", False, 1), ("darts-s4", True, 1), ("darts-s4", True, 2)])
def test_fast_path_same_math_in_float64_noise_included(monkeypatch, space, group_edges, order):
    _seeded(monkeypatch)
    loss_err, grad_err = fastpath.compare("mim-darts", order, torch.float64, (True, True, True),
                                          group_edges, space, fold_weights=True, merge_decoder=True)
    assert loss_err < 1e-10 and grad_err < 1e-10


def test_s4_agreement_is_not_vacuous(monkeypatch):
    # other samples (another global seed at the step) give another loss
    losses = []
    for seed in (11, 12):
        _seeded(monkeypatch, seed)
        losses.append(fastpath.alpha_grads(False, False, False, "cls", 1, torch.float64,
                                           space="darts-s4")[0])
    assert float((losses[0] - losses[1]).abs()) > 1e-6


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """``mimdarts search --space darts-sN --preset tiny --epochs 1``, one run per space."""
    out = tmp_path_factory.mktemp("robust")
    for space in SPACE_NAMES:
        code = main(["search", "--space", space, "--preset", "tiny", "--epochs", "1", "--threads", "1",
                     "--no-progress", "--out-dir", str(out), "--run-name", space])
        assert code == 0, space
    return out


@pytest.mark.parametrize("space", SPACE_NAMES)
def test_cli_search_writes_a_cell_of_the_space(searched, space):
    run = searched / space
    genotype = Genotype.from_json((run / "genotype.json").read_text())
    assert outside_space(space, genotype) == []
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert ("n_noise_normal" in log[-1]) is (space == "darts-s4")
    width = 3 if space == "darts-s3" else 2
    assert all(len(row) == width for row in log[-1]["alpha_weights"]["alpha_normal"])
    result = json.loads((run / "result.json").read_text())
    assert result["space"] == space and Genotype.from_dict(result["genotype"]) == genotype


def test_presets_name_the_spaces():
    for n, space in enumerate(SPACE_NAMES, start=1):
        for name, objective in ((f"s{n}-darts", "cls"), (f"s{n}-mim-darts", "mim-darts")):
            cfg = resolve_config(name)
            m = cfg.model
            assert (m.space, m.channels, m.layers, m.nodes) == (space, 16, 8, 4)
            assert (cfg.optim.epochs, cfg.optim.batch_size, cfg.optim.order) == (50, 64, 1)
            assert cfg.objective.objective == objective and cfg.optim.final_arch == "last"
        quick = resolve_config(f"s{n}-quick")
        assert quick.model.space == space and quick.data.dataset == "cifar10-sample"
    assert sorted(ROBUST_SPACES) == SPACE_NAMES


def test_s4_search_killed_mid_epoch_resumes_to_the_same_noise(tmp_path):
    # the noise comes from the global torch RNG, which checkpoints save: a resumed search
    # draws what the uninterrupted one drew (test_resume's harness, on S4)
    import test_run_resume as rs
    argv = ["search", "--preset", "tiny", "--space", "darts-s4", "--epochs", "2", "--threads", "1",
            "--eval-images", "32", "--device", "cpu", "--no-progress"]
    rs.finish(rs.start(argv, tmp_path, "ref"))
    p = rs.start(argv, tmp_path, "run", "--checkpoint-every", "1", checkpoint_delay=0.2)
    run = tmp_path / "run"
    rs.kill_when(p, lambda: (rs.checkpoint_at(run) or (0, 0)) >= (1, 1))  # in the second epoch
    assert 0 < rs.checkpoint_at(run)[1] < 4  # a mid-epoch checkpoint
    rs.resume("search", run)
    rs.assert_same_run(run, tmp_path / "ref")


def test_training_a_cell_with_noise_ops(searched, tmp_path):
    # an S4 cell where noise won half the edges: the evaluation network builds and trains it
    cell = [("noise", 0), ("sep_conv_3x3", 1), ("noise", 1), ("sep_conv_3x3", 0)]
    genotype = Genotype.make(cell, [2, 3], cell, [2, 3])
    assert outside_space("darts-s4", genotype) == []
    path = tmp_path / "s4-cell.json"
    path.write_text(genotype.to_json())
    for spec, name in ((str(path), "hand"), (str(searched / "darts-s4"), "searched")):
        code = main(["train", "--preset", "train-tiny", "--genotype", spec, "--epochs", "1",
                     "--threads", "1", "--no-progress", "--out-dir", str(tmp_path), "--run-name", name])
        assert code == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["final_test_top1"] >= 0
    from mimdarts.train.networks import NetworkCIFAR
    net = NetworkCIFAR(genotype, 4, 10, 3).eval()
    assert sum(isinstance(m, Noise) for m in net.modules()) == 6  # 2 per cell
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert not torch.equal(net(x)[0], net(x)[0])  # noise in evaluation too (RobustDARTS)


def test_the_report_reads_an_s4_run(tmp_path, capsys):
    """α pictures label S4's two columns by their ops; the table has the noise count, not the
    skip count (S4 holds no skip connection), and so do the found cells and the curves."""
    from mimdarts.cli import main
    assert main(["search", "--preset", "tiny", "--space", "darts-s4", "--out-dir", str(tmp_path),
                 "--run-name", "a", "--no-progress"]) == 0
    assert main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "| noise normal |" in out and "darts-s4 space" in out and "skips normal" not in out
    assert re.search(r"\(\d+ noise ops? in the normal cell\)", out) and "skip connection" not in out
    assert (tmp_path / "rep" / "a-alpha.png").is_file()
    assert (tmp_path / "rep" / "noise-per-epoch-darts-s4-cifar10-sample.png").is_file()
    assert not (tmp_path / "rep" / "skips-per-epoch-darts-s4-cifar10-sample.png").exists()


def test_looking_changes_no_step_of_an_s4_search():
    """S4's noise draws from torch's generator: the evaluations after an epoch (the val head,
    the whole val half of final_arch=best, the curvature) must leave it as it was."""
    from mimdarts.config import resolve_config
    from mimdarts.search.loop import search

    def alphas(**overrides):
        cfg = resolve_config("tiny", overrides={"space": "darts-s4", "epochs": 2, "threads": 1,
                                                "device": "cpu", **overrides})
        return [r["alpha_weights"] for r in search(cfg, write=False, progress=False).history]

    plain = alphas(eval_images=0)
    assert alphas(eval_images=16, final_arch="best", hessian_every=1) == plain
