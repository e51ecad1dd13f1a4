import itertools
import json

import pytest
import torch
import torch.nn.functional as F

from mimdarts import nasbench201 as nb
from mimdarts.cli import main
from mimdarts.config import ModelConfig, resolve_config
from mimdarts.errors import GenotypeError
from mimdarts.spaces import (
    GENOTYPES,
    NB201Arch,
    NB201Network,
    NB201Supernet,
    derive_nb201,
    get_space,
    load_arch,
    load_nb201_arch,
)
from mimdarts.spaces.candidates import NB201_OPS, NB201_PRIMITIVES
from mimdarts.spaces.nb201 import EDGES, NB201SearchCell

ALL_SKIP = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|"
            "+|skip_connect~0|skip_connect~1|skip_connect~2|")
BEST_C100 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
             "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")


# tiny CPU-bound tensors: one intra-op thread (see conftest.one_thread)
pytestmark = pytest.mark.usefixtures("one_thread")


ALL_CELLS = [NB201Arch(ops) for ops in itertools.product(NB201_PRIMITIVES, repeat=len(EDGES))]


# ---------------------------------------------------------------- ops


def test_nb201_op_order_is_the_benchmarks():
    assert NB201_PRIMITIVES == ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@pytest.mark.parametrize("name", NB201_PRIMITIVES)
@pytest.mark.parametrize("affine", [False, True])
def test_every_nb201_op_keeps_the_shape(name, affine):
    op = NB201_OPS.build(name, 6, 1, affine)
    assert op(torch.randn(2, 6, 8, 8)).shape == (2, 6, 8, 8)


def test_nor_conv_is_relu_conv_bn_and_pool_has_no_bn():
    conv = NB201_OPS.build("nor_conv_3x3", 4, 1, False)
    from mimdarts.spaces.batchnorm import BatchNorm2d  # torch's, with accurate CPU sums
    assert [type(m) for m in conv] == [torch.nn.ReLU, torch.nn.Conv2d, BatchNorm2d]
    assert conv[1].bias is None and conv[1].kernel_size == (3, 3) and not conv[2].affine
    pool = NB201_OPS.build("avg_pool_3x3", 4, 1, False)
    assert isinstance(pool, torch.nn.AvgPool2d) and pool.count_include_pad is False


# ---------------------------------------------------------------- the table


def test_exact_figures_of_the_all_skip_cell():
    r = nb.lookup(ALL_SKIP)
    assert (r.cifar10_valid, r.cifar10_test, r.cifar100_valid, r.cifar100_test,
            r.imagenet16_120_valid, r.imagenet16_120_test) == (
        39.769333, 54.296667, 15.033333, 15.606667, 16.433333, 16.322222)
    assert not r.proxy and r.epochs == 200


def test_exact_figures_of_a_top_cell():
    r = nb.lookup(NB201Arch.parse(BEST_C100))
    assert r.cifar10_test == pytest.approx(94.363, abs=5e-4)
    assert r.cifar100_test == pytest.approx(73.513, abs=5e-4)
    assert r.imagenet16_120_test == pytest.approx(46.344, abs=5e-4)


def test_table_holds_every_cell_once():
    table = nb.load_table()
    assert len(table.rows) == 15_625 == len(table.by_arch)
    assert [r.index for r in table.rows] == list(range(15_625))
    assert {str(a) for a in ALL_CELLS} == set(table.by_arch)


def test_column_maxima_are_the_papers_optimum():
    best = {m: nb.top(1, m)[0] for m in nb.METRICS}
    got = [round(getattr(best[m], m), 2) for m in nb.METRICS]
    assert got == [91.61, 94.37, 73.49, 73.51, 46.73, 47.31]
    assert len({best[m].index for m in ("cifar10_test", "cifar100_valid", "imagenet16_120_test")}) == 3


def test_top_is_sorted_and_validated():
    rows = nb.top(5, "cifar100_test")
    values = [r.cifar100_test for r in rows]
    assert values == sorted(values, reverse=True) and len(rows) == 5
    with pytest.raises(ValueError, match="unknown NAS-Bench-201 metric 'acc'"):
        nb.top(3, "acc")
    with pytest.raises(ValueError, match="must be >= 1, got 0"):
        nb.top(0)


def test_proxy_table_is_separate_and_labelled():
    full, proxy = nb.lookup(ALL_SKIP), nb.lookup(ALL_SKIP, proxy=True)
    assert proxy.proxy and proxy.epochs == 12 and proxy.index == full.index
    assert proxy.cifar10_test != full.cifar10_test
    assert "PROXY" in nb.format_result(proxy) and "PROXY" not in nb.format_result(full)
    assert "PROXY" in proxy.to_dict()["source"]
    assert "PROXY" in nb.format_top(nb.top(2, proxy=True), "cifar10_test")


# ---------------------------------------------------------------- the architecture type


def test_string_round_trip_for_every_cell():
    for a in ALL_CELLS:
        assert NB201Arch.parse(str(a)) == a


def test_json_round_trip_and_run_folder(tmp_path):
    a = NB201Arch.parse(BEST_C100)
    assert a.to_dict() == {"space": "nb201", "arch": BEST_C100}
    assert NB201Arch.from_json(a.to_json()) == a
    (tmp_path / "genotype.json").write_text(json.dumps(a.to_dict()))
    assert load_nb201_arch(str(tmp_path)) == a == load_nb201_arch(f"  {BEST_C100}\n")
    (tmp_path / "cell.txt").write_text(BEST_C100 + "\n")
    assert load_nb201_arch(str(tmp_path / "cell.txt")) == a


MALFORMED = {
    "unknown op": ("|conv_9x9~0|+|skip_connect~0|skip_connect~1|+|none~0|none~1|none~2|",
                   "unknown op 'conv_9x9'; choose one of none, skip_connect, nor_conv_1x1"),
    "darts op": ("|sep_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|none~0|none~1|none~2|",
                 "unknown op 'sep_conv_3x3'"),
    "two nodes": ("|none~0|+|none~0|none~1|", "has 2 node group(s)"),
    "four nodes": ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|", "has 4 node group(s)"),
    "missing edge": ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 has 1 edge(s), expected 2"),
    "extra edge": ("|none~0|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                   "node 1 has 2 edge(s), expected 1"),
    "wrong input": ("|none~0|+|none~1|none~0|+|none~0|none~1|none~2|", "it must be ~0"),
    "input out of range": ("|none~0|+|none~0|none~1|+|none~0|none~1|none~3|", "it must be ~2"),
    "no tilde": ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "expected op~input"),
    "no bars": ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "malformed NAS-Bench-201 cell"),
    "empty": ("", "has 1 node group(s)"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_strings_are_clear_errors(case):
    text, message = MALFORMED[case]
    with pytest.raises(GenotypeError) as e:
        NB201Arch.parse(text)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_wrong_space_is_a_clear_error(tmp_path):
    with pytest.raises(GenotypeError, match="'DARTS_V2' is a darts architecture, but the search space "
                                            "is 'nb201'"):
        load_arch("nb201", "DARTS_V2")
    with pytest.raises(GenotypeError, match="is a nb201 architecture, but the search space is 'darts'"):
        load_arch("darts", ALL_SKIP)
    (tmp_path / "genotype.json").write_text(GENOTYPES["DARTS_V2"].to_json())
    with pytest.raises(GenotypeError, match="genotype is for the 'darts' space, expected 'nb201'"):
        get_space("nb201").load_arch(str(tmp_path))
    with pytest.raises(GenotypeError, match="genotype is for the 'nb201' space, expected 'darts'"):
        get_space("darts").load_arch(NB201Arch.parse(ALL_SKIP).to_json())


def test_summary_holds_the_edge_counts():
    assert NB201Arch.parse(ALL_SKIP).summary() == {"n_skip": 6, "n_none": 0}
    assert NB201Arch.parse(BEST_C100).summary() == {"n_skip": 1, "n_none": 0}


def test_benchmark_figures_are_the_200_epoch_accuracies():
    s = nb.benchmark_figures(NB201Arch.parse(ALL_SKIP))
    assert s["nb201_cifar10_test"] == 54.296667 and s["nb201_imagenet16_120_valid"] == 16.433333
    assert s == {f"nb201_{k}": v for k, v in nb.lookup(ALL_SKIP).accuracies().items()}
    assert nb.benchmark_figures(GENOTYPES["DARTS_V2"]) == {}  # another space: nothing


def test_the_space_does_not_import_the_benchmark():
    # one-way: mimdarts.nasbench201 reads cells with the space's parser, never the reverse
    import ast
    from pathlib import Path

    import mimdarts.spaces

    for path in Path(mimdarts.spaces.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any("nasbench201" in n for n in names), (path, ast.unparse(node))


def test_derivation_is_argmax_with_none_included():
    w = torch.full((6, 5), 0.1)
    w[0, 0] = 0.6  # none wins edge 1<-0
    for e in range(1, 6):
        w[e, 1 + e % 4] = 0.6
    assert str(derive_nb201(w)) == ("|none~0|+|nor_conv_1x1~0|nor_conv_3x3~1|"
                                    "+|avg_pool_3x3~0|skip_connect~1|nor_conv_1x1~2|")
    assert derive_nb201(torch.zeros(6, 5)).ops == ("none",) * 6  # ties: lowest index
    with pytest.raises(ValueError, match=r"shape \[6, 5\]"):
        derive_nb201(torch.zeros(14, 8))


def test_every_derived_cell_is_in_the_table():
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        a = derive_nb201(torch.randn(6, 5, generator=g).softmax(-1))
        assert nb.lookup(a).arch == str(a)


# ---------------------------------------------------------------- networks


def test_supernet_shapes_and_every_parameter_gets_a_gradient():
    m = NB201Supernet(C=4, num_classes=10, N=1)
    assert m.alpha.shape == (6, 5) and m.alpha_parameters() == [m.alpha]
    # a checkpoint written when α was called `arch` loads into it
    old = {("arch" if k == "alpha" else k): v + 1 if k == "alpha" else v for k, v in m.state_dict().items()}
    m.load_state_dict(old)
    assert torch.equal(m.alpha, old["arch"])
    assert m.feature_channels == 16 and m.feature_stride == 4
    x, y = torch.randn(3, 3, 16, 16), torch.randint(0, 10, (3,))
    feats = m.features(x)
    assert feats.shape == (3, 16, 4, 4) and (feats >= 0).all()  # ends with BN + ReLU
    F.cross_entropy(m.classify(feats), y).backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and torch.count_nonzero(p.grad) > 0, n
    assert len(m.weight_parameters()) + 1 == len(list(m.parameters()))


def test_supernet_cells_are_not_affine_and_share_alpha():
    m = get_space("nb201").build(ModelConfig(space="nb201", channels=4, layers=2), 10)
    cells = [layer for layer in m.body.layers if isinstance(layer, NB201SearchCell)]
    assert len(cells) == 6 and len(m.body.layers) == 8  # 3 stages of 2 cells + 2 blocks
    cell_bns = [b for c in cells for b in c.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert cell_bns and not any(b.affine for b in cell_bns)
    assert isinstance(m.genotype(), NB201Arch)


def test_skipping_none_is_exact():
    torch.manual_seed(0)
    a = NB201Supernet(C=4, N=1, skip_none=True)
    b = NB201Supernet(C=4, N=1, skip_none=False)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-6)


def test_evaluation_network_of_the_benchmark_size():
    net = NB201Network("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                       "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    # The benchmark's largest cell: 1.53 M parameters on CIFAR-10.
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 2) == 1.53
    bns = [b for b in net.modules() if isinstance(b, torch.nn.BatchNorm2d)]
    assert all(b.affine for b in bns)
    small = NB201Network(ALL_SKIP, C=4, N=1, num_classes=3)
    feats = small.features(torch.randn(2, 3, 16, 16))
    assert feats.shape == (2, 16, 4, 4) and small.classify(feats).shape == (2, 3)


# ---------------------------------------------------------------- presets, search and CLI


def test_presets_follow_the_protocol():
    v1, v2 = resolve_config("nb201-darts-v1"), resolve_config("nb201-darts-v2")
    for cfg in (v1, v2):
        assert (cfg.model.space, cfg.model.channels, cfg.model.layers) == ("nb201", 16, 5)
        assert (cfg.optim.epochs, cfg.optim.batch_size, cfg.data.dataset) == (100, 64, "cifar10")
        assert (cfg.optim.w_lr, cfg.optim.arch_lr) == (0.025, 3e-4)
    assert (v1.optim.order, v2.optim.order) == (1, 2)
    assert resolve_config("nb201-quick").data.dataset == "cifar10-sample"


def test_tiny_nb201_search_logs_benchmark_figures(tmp_path, capsys):
    argv = ["search", "--preset", "nb201-tiny", "--epochs", "2", "--no-progress",
            "--out-dir", str(tmp_path), "--run-name", "nb"]
    assert main(argv) == 0
    run = tmp_path / "nb"
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    for rec in log:
        bench = nb.lookup(rec["genotype"])
        for m in nb.METRICS:
            assert rec[f"nb201_{m}"] == getattr(bench, m)
        assert rec["n_skip"] == rec["genotype"].count("skip_connect")
        assert len(rec["alpha_weights"]["alpha"]) == 6
    arch = load_nb201_arch(str(run))
    assert str(arch) == log[-1]["genotype"] and str(arch) in capsys.readouterr().out
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["model"]["alpha"].shape == (6, 5)
    # the CLI looks the found cell up from the run folder
    assert main(["nb201", str(run)]) == 0
    assert f"{nb.lookup(arch).cifar10_test:.2f}" in capsys.readouterr().out


def test_nb201_command_prints_a_cell_and_the_top(capsys):
    assert main(["nb201", ALL_SKIP]) == 0
    out = capsys.readouterr().out
    assert "200-epoch" in out and "index 1835" in out
    assert "39.77" in out and "54.30" in out and "16.32" in out
    assert main(["nb201", "--top", "3", "--metric", "cifar100_valid"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "best 3 by cifar100_valid" in lines[0] and len(lines) == 5
    assert "73.49" in lines[2]
    assert main(["nb201", ALL_SKIP, "--json", "--proxy"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["epochs"] == 12 and "PROXY" in data["source"]


def test_mim_darts_search_on_nb201_logs_benchmark_figures(tmp_path):
    from mimdarts.cli import main
    assert main(["search", "--preset", "nb201-tiny", "--objective", "mim-darts", "--no-progress",
                 "--out-dir", str(tmp_path), "--run-name", "m", "--snapshot-every", "1"]) == 0
    rec = json.loads((tmp_path / "m" / "log.jsonl").read_text().splitlines()[-1])
    assert "train_rec" in rec and "nb201_cifar10_test" in rec
    assert (tmp_path / "m" / "recon_e001.png").is_file()


def test_train_an_nb201_cell(tmp_path):
    from mimdarts.cli import main
    cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert main(["train", "--preset", "train-tiny", "--network", "nb201", "--genotype", cell,
                 "--channels", "4", "--layers", "1", "--no-progress", "--out-dir", str(tmp_path),
                 "--run-name", "t"]) == 0
    assert (tmp_path / "t" / "summary.json").is_file()
    assert main(["train", "--preset", "train-tiny", "--network", "nb201", "--genotype", "DARTS_V2",
                 "--layers", "1", "--out-dir", str(tmp_path), "--run-name", "u"]) == 2


def test_lookup_by_index_and_its_errors(capsys):
    from mimdarts.cli import main
    from mimdarts.errors import ConfigError
    from mimdarts.nasbench201 import lookup
    best = lookup(6111)
    assert best.index == 6111 and lookup(best.arch) == best
    with pytest.raises(ConfigError, match="index 15625 is out of range; choose 0..15624"):
        lookup(15625)
    assert main(["nb201", "6111", "--json"]) == 0
    assert '"index": 6111' in capsys.readouterr().out
