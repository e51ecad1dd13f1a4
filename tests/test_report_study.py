"""The collapse-study report: per-epoch curves per method, found cells per method, the
"Final cells" section and the α-Hessian column, over synthetic run folders written as the
search loop writes them (config.yaml, meta.json, log.jsonl, genotype.json, result.json)."""

import json
import statistics

import pytest

from mimdarts.cli import main
from mimdarts.config import resolve_config
from mimdarts.errors import RunDirError
from mimdarts.report import (
    HESSIAN_CE_COLUMN,
    HESSIAN_COLUMN,
    build_tables,
    find_runs,
    to_markdown,
    write_pictures,
)
from mimdarts.spaces import load_genotype

PNG = b"\x89PNG\r\n\x1a\n"
EPOCHS = 4
CELLS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|none~2|"]


def _write_run(root, name, cfg, log, arch, arch_epoch=None):
    """A finished run folder as search() leaves it."""
    d = root / name
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(cfg.to_yaml())
    (d / "meta.json").write_text(json.dumps({"seed": cfg.run.seed, "device": "cpu (test, 1 threads)"}))
    (d / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    (d / "genotype.json").write_text(json.dumps(arch))
    chosen = arch_epoch or len(log)
    record = log[chosen - 1]
    (d / "result.json").write_text(json.dumps({
        "space": cfg.model.space, "genotype": arch, "genotype_text": record["genotype"],
        "final_arch": cfg.optim.final_arch, "arch_epoch": chosen, "epochs": len(log),
        "search_hours": sum(r["epoch_time_s"] for r in log) / 3600, "device": "cpu",
        **{k: record[k] for k in record if k.endswith("_acc") or k.startswith("n_")}}))
    return d


def _nb201_log(seed, collapse, hessian_epochs=()):
    """Epoch records: DARTS-like runs drift to skip connections and lose accuracy."""
    log = []
    for e in range(1, EPOCHS + 1):
        n_skip = min(5, e + seed % 2) if collapse else 1
        cell = CELLS[1] if collapse and e == EPOCHS else CELLS[0]
        rec = {"epoch": e, "train_loss": 2.0 - 0.1 * e, "train_acc": 20.0 + e, "val_loss": 2.1,
               "val_acc": 18.0 + e + seed, "lr": 0.02, "epoch_time_s": 1.5 + seed,
               "images_per_s": 100.0, "genotype": cell, "n_skip": n_skip, "n_none": 0,
               "nb201_cifar10_test": (90.0 - 10 * e if collapse else 85.0 + e) + seed,
               "nb201_cifar100_test": 60.0 + e + seed, "nb201_imagenet16_120_test": 30.0 + seed,
               "alpha_weights": {"alpha": [[0.2] * 5 for _ in range(6)]}}
        if e in hessian_epochs:
            rec["hessian_eig"] = 0.1 * e * seed
        log.append(rec)
    return log


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """2 methods x 2 seeds, NAS-Bench-201 space: DARTS (collapses, no curvature monitor) and
    MIM-DARTS with final_arch=best and the monitor on (every 2 epochs, or 4: the same method)."""
    root = tmp_path_factory.mktemp("study")
    for seed in (1, 2):
        cfg = resolve_config("nb201-tiny", overrides={"epochs": EPOCHS, "seed": seed})
        log = _nb201_log(seed, collapse=True)
        _write_run(root, f"darts-s{seed}", cfg, log, {"space": "nb201", "arch": log[-1]["genotype"]})
        cfg = resolve_config("nb201-tiny", overrides={"epochs": EPOCHS, "seed": seed,
                                                      "objective": "mim-darts", "final_arch": "best",
                                                      "hessian_every": 2 * seed})
        log = _nb201_log(seed, collapse=False, hessian_epochs=range(2 * seed, EPOCHS + 1, 2 * seed))
        _write_run(root, f"mim-s{seed}", cfg, log, {"space": "nb201", "arch": CELLS[0]}, arch_epoch=3)
    return root


DARTS = "nb201-tiny objective=cls epochs=4 final_arch=last"
MIM = "nb201-tiny objective=mim-darts epochs=4 final_arch=best"


def _pm(values):
    return f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f}"


def test_table_uses_returned_cell_and_last_hessian(study):
    runs, unfinished = find_runs([study])
    assert len(runs) == 4 and not unfinished
    (table,) = build_tables(runs)
    assert [r["method"] for r in table["raw"]] == [DARTS, MIM]  # monitor settings do not split
    header = table["header"]
    assert HESSIAN_COLUMN in header
    rows = {r[0]: r for r in table["rows"]}
    col = header.index("NB201 cifar10 test (%)")
    # DARTS: the last epoch's cell; MIM (final_arch=best): the cell of arch_epoch 3
    assert rows[DARTS][col] == _pm([90.0 - 40 + 1, 90.0 - 40 + 2])
    assert rows[MIM][col] == _pm([85.0 + 3 + 1, 85.0 + 3 + 2])
    assert rows[MIM][header.index("skip edges")] == "1.00 ± 0.00"
    # last logged eigenvalue: epoch 4 for both seeds (every 2 and every 4 epochs)
    assert rows[MIM][header.index(HESSIAN_COLUMN)] == _pm([0.4, 0.8])
    assert rows[DARTS][header.index(HESSIAN_COLUMN)] == "—"
    assert rows[MIM][header.index("search cost (h)")] == (
        f"{statistics.fmean([4 * 2.5 / 3600, 4 * 3.5 / 3600]):.3f} ± "
        f"{statistics.stdev([4 * 2.5 / 3600, 4 * 3.5 / 3600]):.3f}")
    best = [r for r in table["rows"] if "best of" in r[0]]
    label = " — best of 2 seeds by NB201 cifar10 test (seed 2), not an average"
    assert [r[0] for r in best] == [DARTS + label, MIM + label]
    assert best[1][col] == f"{85.0 + 3 + 2:.2f}" and best[1][1] == "1"


def test_markdown_has_final_cells_and_labels(study):
    runs, _ = find_runs([study])
    md = to_markdown(build_tables(runs))
    assert "best of N seeds" in md and "oracle pick, not an average" in md
    assert "#### Final cells" in md
    section = md[md.index("#### Final cells"):]
    assert f"**{DARTS}**" in section and f"**{MIM}**" in section
    assert f"- seed 1: `{CELLS[1]}` (NB201 cifar10 test 51.00%, 5 skip connections in the cell)" in section
    assert f"- seed 2: `{CELLS[0]}` (from epoch 3 of 4, final_arch=best, NB201 cifar10 test " \
           "90.00%, 1 skip connection in the cell)" in section
    assert section.count("- seed ") == 4


def test_cli_writes_study_pictures(study, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", str(study), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    tag = "nb201-cifar10-sample"
    expected = {f"nb201-acc-per-epoch-{tag}.png", f"skips-per-epoch-{tag}.png",
                f"hessian-per-epoch-{tag}.png",
                f"cells-{tag}-nb201-tiny-objective-cls-epochs-4-final_arch-last.png".replace("_", "-"),
                f"cells-{tag}-nb201-tiny-objective-mim-darts-epochs-4-final_arch-best.png".replace("_", "-"),
                "report.md", "report.csv"}
    assert expected <= names, names - expected
    assert not any(n.endswith("-cells.png") for n in names)  # per-method grids replace per-run cells
    for name in names - {"report.md", "report.csv"}:
        assert (out / name).read_bytes()[:8] == PNG
        assert f"wrote {out / name}" in printed
    assert "#### Final cells" in (out / "report.md").read_text()


def test_no_hessian_picture_or_column_without_monitor(tmp_path):
    """DARTS space, monitor off: no Hessian column or picture; skip curves per cell type, and
    the per-run skip plot kept."""
    g = load_genotype("DARTS_V2")
    for seed in (1,):  # one: the per-run α picture of the DARTS space is slow to draw
        cfg = resolve_config("tiny", overrides={"epochs": 2, "seed": seed, "nodes": 4})
        log = [{"epoch": e, "train_acc": 30.0 + e, "val_acc": 25.0 + e, "epoch_time_s": 2.0,
                "genotype": str(g), **g.summary(),
                "alpha_weights": {"alpha_normal": [[0.125] * 8] * 14,
                                 "alpha_reduce": [[0.125] * 8] * 14}} for e in (1, 2)]
        _write_run(tmp_path / "runs", f"darts-s{seed}", cfg, log, g.to_dict())
    runs, _ = find_runs([tmp_path / "runs"])
    (table,) = build_tables(runs)
    assert HESSIAN_COLUMN not in table["header"]
    assert not any("best of" in r[0] for r in table["rows"])  # NB201 only
    md = to_markdown([table])
    assert f"- seed 1: `{g}` (2 skip connections in the normal cell)" in md
    names = {p.name for p in write_pictures(runs, tmp_path / "pics")}
    tag = "darts-cifar10-sample"
    assert {f"skips-per-epoch-{tag}.png", f"skips-{tag}.png",
            f"cells-{tag}-tiny-nodes-4-epochs-2.png"} <= names
    assert not any(n.startswith(("hessian-", "nb201-acc-")) for n in names)


def test_baseline_comparison_and_its_errors(study, tmp_path, capsys):
    runs, _ = find_runs([study])
    with pytest.raises(RunDirError, match="matches 2 methods"):  # both runs are nb201-tiny
        build_tables(runs, "nb201-tiny")
    with pytest.raises(RunDirError, match="'study-darts' is none of the runs' methods; "
                                          "choose one of nb201-tiny"):
        build_tables(runs, "study-darts")
    (table,) = build_tables(runs, DARTS)
    got = {c["figure"]: c["result"] for c in table["comparisons"]}
    assert [c["method"] for c in table["comparisons"]] == [MIM, MIM]
    acc = got["NB201 cifar10 test (%)"]  # MIM 89, 90 against DARTS 51, 52
    assert (acc.diff, acc.low, acc.high) == pytest.approx((38.0, 37.0, 39.0))
    assert acc.p == pytest.approx(2 / 6) and "cannot be separated: with 2 and 2 seeds" in acc.verdict
    assert got["skip edges"].diff == pytest.approx(1 - (5 + 4) / 2)  # DARTS ends with 5 and 4
    md = to_markdown([table])
    assert f"#### Against the baseline: {DARTS}" in md and "| +38.00 | [+37.00, +39.00] | 0.333 |" in md
    assert main(["report", str(study), "--baseline", DARTS, "--no-pictures", "--out", str(tmp_path)]) == 0
    assert "baseline,method,figure" in (tmp_path / "report.csv").read_text()
    capsys.readouterr()
    assert main(["report", str(study), "--baseline", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope' is none of the runs' methods" in err and "Traceback" not in err


def test_one_baseline_per_space(study, tmp_path):
    """Several --baseline names: each table compares with the one that names its method;
    two names for one table, or a name of no table, are one-line errors."""
    g = load_genotype("DARTS_V2")
    for seed in (1, 2):
        for objective, skips in (("cls", 2 + seed), ("mim-darts", seed)):
            cfg = resolve_config("tiny", overrides={"epochs": 2, "seed": seed, "nodes": 4,
                                                    "objective": objective})
            log = [{"epoch": e, "train_acc": 30.0, "val_acc": 25.0 + seed, "epoch_time_s": 2.0,
                    "genotype": str(g), **g.summary(), "n_skip_normal": skips} for e in (1, 2)]
            _write_run(tmp_path / "darts", f"{objective}-s{seed}", cfg, log, g.to_dict())
    runs, _ = find_runs([study, tmp_path / "darts"])
    names = {t["space"]: [r["method"] for r in t["raw"]] for t in build_tables(runs)}
    darts_cls = next(m for m in names["darts"] if "objective=cls" in m)
    tables = {t["space"]: t for t in build_tables(runs, [DARTS, darts_cls])}
    assert tables["nb201"]["baseline"] == DARTS and tables["darts"]["baseline"] == darts_cls
    (skips,) = [c["result"] for c in tables["darts"]["comparisons"] if c["figure"] == "skips normal"]
    assert skips.diff == pytest.approx(1.5 - 3.5)  # MIM-DARTS 1, 2 against 3, 4
    with pytest.raises(RunDirError, match="names 2 methods of the nb201 / cifar10-sample table"):
        build_tables(runs, [DARTS, MIM])
    with pytest.raises(RunDirError, match="'nope' is none of the runs' methods"):
        build_tables(runs, [DARTS, "nope"])


def test_unconverged_hessian_is_marked(tmp_path):
    cfg = resolve_config("nb201-tiny", overrides={"epochs": EPOCHS, "hessian_every": 2})
    for seed, flag in ((1, 0.0), (2, 1.0)):
        log = _nb201_log(seed, collapse=False, hessian_epochs=(2, 4))
        for rec in log:
            if "hessian_eig" in rec:
                rec.update(hessian_converged=flag, hessian_eig_ce=0.5, hessian_ce_converged=1.0)
        _write_run(tmp_path, f"s{seed}", cfg.__class__(**{**cfg.__dict__, "run": cfg.run.__class__(
            **{**cfg.run.__dict__, "seed": seed})}), log, {"space": "nb201", "arch": CELLS[0]})
    (table,) = build_tables(find_runs([tmp_path])[0])
    row = table["rows"][0]
    assert row[table["header"].index(HESSIAN_COLUMN)].endswith("(1 of 2 not converged: lower bounds)")
    assert row[table["header"].index(HESSIAN_CE_COLUMN)] == "0.50 ± 0.00"


def test_a_run_reached_twice_is_one_run(study):
    runs, _ = find_runs([study, study, study / "darts-s1", str(study) + "/"])
    assert len(runs) == 4  # not 7 "seeds"


def test_monitoring_and_speed_settings_do_not_split_a_method(tmp_path):
    # seeds that differ only in settings that change no result (monitors, resources, exact
    # or rounding speed switches, the device) are one method
    for seed, extra in ((1, {"tensorboard": True}), (2, {"cuda_graphs": True}),
                        (3, {"checkpoint_every": 5, "threads": 1}),
                        (4, {"group_edges": "false", "channels_last": False, "device": "cpu"})):
        cfg = resolve_config("nb201-tiny", overrides={"epochs": EPOCHS, "seed": seed, **extra})
        log = _nb201_log(seed, collapse=False)
        _write_run(tmp_path, f"s{seed}", cfg, log, {"space": "nb201", "arch": CELLS[0]})
    (table,) = build_tables(find_runs([tmp_path])[0])
    assert [r["seeds"] for r in table["raw"]] == [[1, 2, 3, 4]]
    # a sweep over a rounding switch runs one seed twice: its runs stay apart, by that switch
    cfg = resolve_config("nb201-tiny", overrides={"epochs": EPOCHS, "seed": 1, "channels_last": False})
    _write_run(tmp_path, "s1-nchw", cfg, _nb201_log(1, collapse=False), {"space": "nb201", "arch": CELLS[0]})
    (table,) = build_tables(find_runs([tmp_path])[0])
    assert [(r["method"], r["seeds"]) for r in table["raw"]] == [
        ("nb201-tiny group_edges=auto epochs=4 channels_last=False", [1]),
        ("nb201-tiny group_edges=auto epochs=4 channels_last=True", [1, 2, 3]),
        ("nb201-tiny group_edges=false epochs=4 channels_last=False", [4])]


def test_long_method_names_are_cut_between_words():
    # a file name cut inside a value would misread it ("epochs-100" as "epochs-10")
    from mimdarts.report import _slug

    name = "study-mim-darts layers=5 objective=mim-darts beta_weight=0.0 beta_ramp_epochs=100"
    slug = _slug(name, set())
    assert len(slug) <= 80 and name.replace("=", "-").replace(" ", "-").replace(
        "_", "-").startswith(slug + "-")
    assert _slug("short name", set()) == "short-name"
