"""Every bad input the CLI handles, in ONE table (the per-module tables of test_cli.py,
test_train.py, test_spaces_nb201.py and test_sweep.py merged here): config values, the same key
given twice in any form, values of the right type outside their meaningful range, blank
names, files of the wrong kind, genotype strings, paths, run folders of the wrong kind,
sweeps, reports, exports and environment variables. Each gives ONE line
`mimdarts: error: ...` naming the bad value and what is accepted, exit status 2, no
traceback, and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from mimdarts.cli import main
from mimdarts.config import resolve_config

NB201_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def _file(tmp: Path, name: str, text: str) -> str:
    p = tmp / name
    p.write_text(text)
    return str(p)


def _run_folder(tmp: Path, checkpoint: bytes | dict | None) -> str:
    """A search run folder holding the tiny preset's config.yaml and ``checkpoint``."""
    run = tmp / "run"
    run.mkdir()
    cfg = resolve_config("tiny")
    (run / "config.yaml").write_text(cfg.to_yaml())
    if isinstance(checkpoint, bytes):
        (run / "checkpoint.pt").write_bytes(checkpoint)
    elif checkpoint is not None:
        torch.save({**checkpoint, "config": cfg.to_json()}, run / "checkpoint.pt")
    return str(run)


def _nb201_genotype(tmp: Path) -> str:
    return _file(tmp, "nb.json", json.dumps({"space": "nb201", "arch": NB201_SKIP}))


# (argv made in a temporary folder, a part of the one-line error[, environment variables])
Case = tuple[Callable[[Path], list[str]], str] | tuple[Callable[[Path], list[str]], str, dict[str, str]]


def _search_run(tmp: Path, finished: bool = True, space: str = "nb201") -> str:
    """A search run folder as a finished (or killed) search leaves it, without a checkpoint."""
    run = tmp / "srch"
    run.mkdir()
    cfg = resolve_config("nb201-tiny" if space == "nb201" else "tiny")
    (run / "config.yaml").write_text(cfg.to_yaml())
    (run / "log.jsonl").write_text(json.dumps({"epoch": 1, "genotype": NB201_SKIP,
                                               "epoch_time_s": 1.0}) + "\n")
    (run / "genotype.json").write_text(json.dumps({"space": "nb201", "arch": NB201_SKIP}))
    if finished:
        (run / "result.json").write_text(json.dumps({
            "space": "nb201", "genotype": {"space": "nb201", "arch": NB201_SKIP},
            "genotype_text": NB201_SKIP, "final_arch": "last", "arch_epoch": 1, "epochs": 1,
            "search_hours": 0.001}))
    return str(run)


def _train_run(tmp: Path) -> str:
    """A training run folder (its config names a network)."""
    from mimdarts.train import TRAIN_PRESETS, TrainConfig
    run = tmp / "trn"
    run.mkdir()
    cfg = resolve_config("train-tiny", root=TrainConfig, presets=TRAIN_PRESETS)
    (run / "config.yaml").write_text(cfg.to_yaml())
    return str(run)


def _bytes(tmp: Path, name: str, data: bytes) -> str:
    p = tmp / name
    p.write_bytes(data)
    return str(p)


def _sweep(*args: str) -> Callable[[Path], list[str]]:
    return lambda t: ["sweep", "--preset", "nb201-tiny", "--out-dir", str(t / "sw"), *args]


BINARY = b"\x00\xff\xfe\x89PNG"
SEARCH = ["search", "--preset", "nb201-tiny"]
TRAIN = ["train", "--preset", "train-tiny"]
BAD_INPUTS: dict[str, Case] = {
    # ---- config values
    "batch size 0": (lambda t: ["search", "--preset", "tiny", "--batch-size", "0"],
                     "batch_size must be >= 1, got 0"),
    "epochs not an integer": (lambda t: ["search", "--epochs", "1.5"],
                              "optim.epochs: expected an integer, got '1.5'"),
    "not a boolean": (lambda t: ["search", "--download", "maybe"],
                      "data.download: expected true or false, got 'maybe'"),
    "mask ratio 1": (lambda t: ["search", "--mask-ratio", "1"],
                     "mask_ratio must be strictly between 0 and 1, got 1.0"),
    "negative checkpoint_every": (lambda t: ["search", "--checkpoint-every", "-1"],
                                  "checkpoint_every must be >= 0 steps"),
    "fault flags are not user flags": (lambda t: ["search", "--fault-nan-step", "2"],
                                       "unrecognized arguments: --fault-nan-step"),
    "unknown dataset": (lambda t: ["search", "--dataset", "mnist"], "dataset 'mnist' is not known"),
    "unknown device": (lambda t: ["search", "--device", "tpu"], "device 'tpu' is not known"),
    "unknown preset": (lambda t: ["search", "--preset", "nope"], "unknown preset 'nope'"),
    "search preset for train": (lambda t: ["train", "--preset", "quick"], "unknown preset 'quick'"),
    "unknown flag": (lambda t: ["search", "--epochz", "3"], "unrecognized arguments: --epochz"),
    "unknown space": (lambda t: ["search", "--preset", "tiny", "--space", "foo"],
                      "unknown search space"),
    "unknown objective": (lambda t: ["search", "--preset", "tiny", "--objective", "foo"],
                          "unknown objective 'foo'"),
    "unknown network": (lambda t: ["train", "--network", "resnet"], "unknown network 'resnet'"),
    "unknown schedule": (lambda t: ["train", "--lr-schedule", "step"],
                         "lr_schedule 'step' is not known"),
    "batch larger than the data": (lambda t: ["search", "--preset", "tiny", "--batch-size", "100"],
                                   "batch_size=100 is larger than each search half"),
    "run name with a slash": (lambda t: ["search", "--run-name", "a/b"],
                              "run_name must be a plain folder name, got 'a/b'"),
    # ---- genotype strings
    "unknown op": (lambda t: ["genotype", "Genotype(normal=[('conv_9x9', 0), ('sep_conv_3x3', 1)], "
                              "normal_concat=[2], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], "
                              "reduce_concat=[2])"], "unknown op 'conv_9x9'"),
    "malformed genotype": (lambda t: ["genotype", "Genotype(normal=[('sep_conv_3x3', 0)"],
                           "malformed genotype"),
    "unknown genotype name": (lambda t: ["train", "--genotype", "DARTS_V9"],
                              "genotype 'DARTS_V9' is not a known name"),
    "genotype of another space": (lambda t: ["train", "--genotype", _nb201_genotype(t)],
                                  "is a nb201 cell, but network 'darts-cifar' trains darts cells"),
    "NB201 cell with a DARTS op": (
        lambda t: ["nb201", NB201_SKIP.replace("skip_connect~1", "sep_conv_3x3~1")],
        "unknown op 'sep_conv_3x3'"),
    "NB201 cell of two nodes": (lambda t: ["nb201", "|none~0|+|none~0|none~1|"], "has 2 node group(s)"),
    "DARTS genotype as NB201 cell": (lambda t: ["nb201", "DARTS_V2"], "is a darts architecture"),
    # ---- paths
    "missing data folder": (lambda t: ["search", "--dataset", "cifar10", "--data-dir", "/nonexistent/x",
                                       "--download", "false"], "cifar10 not found in '/nonexistent/x/"),
    "missing config file": (lambda t: ["search", "--config", str(t / "none.yaml")],
                            "none.yaml' does not exist"),
    "missing genotype file": (lambda t: ["train", "--genotype", str(t / "no.json")],
                              "no.json' is not a known name"),
    "export of a missing run": (lambda t: ["export", str(t / "none")], "does not exist"),
    "resume of a missing folder": (lambda t: ["search", "--resume", str(t / "none")],
                                   "none' does not exist"),
    "resume of a folder without config": (lambda t: ["train", "--resume", str(t)],
                                          "is not a run folder: it holds no config.yaml"),
    "resume with --overwrite": (lambda t: ["search", "--resume", str(t), "--overwrite"],
                                "give only one of them"),
    "resume with --preset": (lambda t: ["search", "--resume", str(t), "--preset", "tiny"],
                             "do not give --preset or --config with it"),
    # ---- data files
    "config file not YAML": (lambda t: ["search", "--config", _file(t, "c.yaml", "optim: [1,\n")],
                             "is not valid YAML at line 2, column 1"),
    "config file not a mapping": (lambda t: ["search", "--config", _file(t, "c.yaml", "- 1\n")],
                                  "must hold a mapping of settings, got a list"),
    "unknown key in a config file": (lambda t: ["config", "--config",
                                                _file(t, "c.yaml", "optim:\n  epochz: 3\n")],
                                     "unknown config key 'optim.epochz'"),
    "no checkpoint to resume": (lambda t: ["search", "--resume", _run_folder(t, None)],
                                "no checkpoint in"),
    "truncated checkpoint": (lambda t: ["search", "--resume", _run_folder(t, b"PK\x03\x04trunc")],
                             "is unreadable (truncated or corrupted?)"),
    "training checkpoint in a search run": (
        lambda t: ["search", "--resume", _run_folder(t, {"format": "mimdarts-train-v1"})],
        "has format 'mimdarts-train-v1', not 'mimdarts-search-v1'"),
    "checkpoint without resume state": (
        lambda t: ["search", "--resume", _run_folder(t, {"format": "mimdarts-search-v1"})],
        "holds no resume state"),
    # ---- settings that would do nothing
    "--nodes in NAS-Bench-201": (lambda t: ["search", "--preset", "nb201-tiny", "--nodes", "3"],
                                 "nodes=3 does nothing in this run: the NAS-Bench-201 cell is "
                                 "fixed (4 nodes, 6 edges); leave it out"),
    "a mask setting without masks": (lambda t: ["search", "--preset", "nb201-tiny",
                                                "--mask-ratio", "0.4"],
                                     "mask_ratio=0.4 does nothing in this run: objective 'cls' "
                                     "does not use it"),
    "CUDA graphs on a CPU": (lambda t: ["search", "--preset", "nb201-tiny", "--cuda-graphs",
                                        "true", "--device", "cpu"],
                             "cuda_graphs='true' does nothing in this run: CUDA graphs need one "
                             "CUDA process; this run has 1 on cpu"),
    "a mask that leaves nothing visible": (
        lambda t: ["search", "--preset", "nb201-tiny", "--objective", "mim-darts",
                   "--patch-size", "16", "--mask-ratio", "0.99"],
        "patch_size=16 and mask_ratio=0.99 mask all 4 patches of a 32x32 image"),
    "a search-only flag in training": (lambda t: ["train", "--eval-images", "5"],
                                       "unrecognized arguments: --eval-images"),
    "report of a folder without runs": (lambda t: ["report", str(t)],
                                        "no run folders (holding a config.yaml) under"),
    "export of a search run": (lambda t: ["export", _run_folder(t, {"format": "mimdarts-search-v1"})],
                               "'mimdarts-search-v1' is not a training checkpoint"),
    "export without a checkpoint": (lambda t: ["export", str(t)], "no checkpoint in"),
    # ---- the nb201 command
    "nb201: unknown metric": (lambda t: ["nb201", "--top", "3", "--metric", "acc"],
                              "unknown NAS-Bench-201 metric 'acc'"),
    "nb201: blank metric": (lambda t: ["nb201", "--top", "3", "--metric", ""],
                            "unknown NAS-Bench-201 metric ''; choose one of cifar10_valid"),
    "nb201: top 0": (lambda t: ["nb201", "--top", "0"], "must be >= 1, got 0"),
    "nb201: neither cell nor top": (lambda t: ["nb201"], "give either a cell"),
    "nb201: both cell and top": (lambda t: ["nb201", NB201_SKIP, "--top", "2"], "give either a cell"),
    "nb201: index out of range": (lambda t: ["nb201", "15625"],
                                  "index 15625 is out of range; choose 0..15624"),
    # ---- the same key given twice, in any form
    "a flag twice": (lambda t: [*SEARCH, "--epochs", "1", "--epochs", "2"],
                     "--epochs is given twice ('1' and '2'); give it once"),
    "a bool flag twice": (lambda t: [*SEARCH, "--tensorboard", "--tensorboard", "false"],
                          "--tensorboard is given twice"),
    "--preset twice": (lambda t: ["search", "--preset", "tiny", "--preset", "quick"],
                       "--preset is given twice ('tiny' and 'quick')"),
    "--config twice": (lambda t: ["config", "--config", _file(t, "a.yaml", "epochs: 1\n"),
                                  "--config", _file(t, "b.yaml", "epochs: 2\n")],
                       "--config is given twice"),
    "a training flag twice": (lambda t: [*TRAIN, "--lr", "0.1", "--lr", "0.2"],
                              "--lr is given twice"),
    "a YAML key twice": (lambda t: ["config", "--config", _file(t, "c.yaml", "epochs: 1\nepochs: 2\n")],
                         "key 'epochs' is given twice (lines 1 and 2)"),
    "a YAML key twice in a section": (
        lambda t: ["config", "--config", _file(t, "c.yaml", "optim:\n  epochs: 1\n  epochs: 2\n")],
        "key 'epochs' is given twice (lines 2 and 3)"),
    "a YAML key flat and in its section": (
        lambda t: ["config", "--config", _file(t, "c.yaml", "epochs: 1\noptim:\n  epochs: 2\n")],
        "setting 'epochs' is given twice"),
    "sweep: a grid key twice": (_sweep("--grid", "epochs=1,2", "epochs=3"),
                                "'epochs' is given twice (--grid and --grid)"),
    "sweep: a key in --grid and --set": (_sweep("--grid", "epochs=1,2", "--set", "epochs=3"),
                                         "'epochs' is given twice (--grid and --set)"),
    "sweep: a key twice in --set": (_sweep("--set", "epochs=1", "epochs=2"),
                                    "'epochs' is given twice (--set and --set)"),
    "sweep: equal values": (_sweep("--set", "objective=mim-darts", "--grid", "mask_ratio=0.5,0.50"),
                            "'mask_ratio=0.5,0.50' gives the value '0.5' twice (as '0.50')"),
    "sweep: equal booleans": (_sweep("--grid", "augment=true,yes"), "gives the value 'true' twice"),
    "sweep: a seed twice": (_sweep("--seeds", "1", "1"), "--seeds 1 1 gives a seed twice"),
    "sweep: a preset twice": (lambda t: ["sweep", "--preset", "tiny", "tiny", "--out-dir", str(t / "sw")],
                              "--preset tiny tiny gives a preset twice"),
    # ---- sweeps: every trial validated before anything runs
    "sweep: unknown key": (_sweep("--grid", "epochz=1,2"), "unknown config key 'epochz'"),
    "sweep: no values": (_sweep("--grid", "mask_ratio"), "must look like key=value"),
    "sweep: an empty value": (_sweep("--grid", "epochs=1,"), "'epochs=1,' has an empty value"),
    "sweep: value out of range": (_sweep("--set", "objective=mim-darts", "--grid", "mask_ratio=0.4,1.5"),
                                  "mask_ratio must be strictly"),
    "sweep: the seed as a setting": (_sweep("--grid", "seed=1,2"), "set by the sweep"),
    "sweep: a grid over a monitor": (_sweep("--grid", "eval_images=0,16"),
                                     "eval_images changes no result of a search"),
    "sweep: a patch that does not divide": (
        _sweep("--set", "objective=mim-darts", "--grid", "patch_size=3,4"),
        "trial nb201-tiny-objectivemim-darts-patch_size3-s2: patch_size=3 must divide the image size 32"),
    "sweep: nodes in NAS-Bench-201": (_sweep("--set", "nodes=3"),
                                      "trial nb201-tiny-nodes3-s2: nodes=3 does nothing in this run"),
    "sweep: a mask setting without masks": (_sweep("--grid", "mask_ratio=0.2,0.4"),
                                            "mask_ratio=0.2 does nothing in this run"),
    "sweep: jobs 0": (_sweep("--jobs", "0"), "--jobs must be >= 1"),
    "sweep: negative retries": (_sweep("--retries", "-1"), "--retries must be >= 0"),
    "sweep: negative GPUs": (_sweep("--gpus-per-trial", "-1"), "--gpus-per-trial must be >= 0"),
    "sweep: unknown backend": (_sweep("--backend", "foo"),
                               "unknown sweep backend 'foo'; choose one of local"),
    "sweep: out-dir is a file": (lambda t: ["sweep", "--preset", "nb201-tiny", "--out-dir",
                                            _file(t, "f", "x")], "is a file; a sweep writes a folder"),
    # ---- values of the right type outside their meaningful range
    "learning rate 0": (lambda t: [*SEARCH, "--w-lr", "0"], "w_lr must be > 0, got 0.0"),
    "learning rate NaN": (lambda t: [*SEARCH, "--w-lr", "nan"],
                          "optim.w_lr: expected a finite number, got 'nan'"),
    "α learning rate infinite": (lambda t: [*SEARCH, "--arch-lr", "inf"],
                                 "optim.arch_lr: expected a finite number, got 'inf'"),
    "λ NaN": (lambda t: [*SEARCH, "--aux-weight", "nan"], "expected a finite number, got 'nan'"),
    "mask ratio 0": (lambda t: [*SEARCH, "--objective", "mim-darts", "--mask-ratio", "0"],
                     "mask_ratio must be strictly between 0 and 1, got 0.0"),
    "patch size 0": (lambda t: [*SEARCH, "--objective", "mim-darts", "--patch-size", "0"],
                     "patch_size must be >= 1, got 0"),
    "channels 0": (lambda t: [*SEARCH, "--channels", "0"], "channels must be >= 1, got 0"),
    "layers 0": (lambda t: [*SEARCH, "--layers", "0"], "layers must be >= 1, got 0"),
    "threads negative": (lambda t: [*SEARCH, "--threads", "-1"],
                         "threads must be >= 0 (0 = default), got -1"),
    "train images negative": (lambda t: [*SEARCH, "--train-images", "-5"], "train_images must be >= 0"),
    "train images 1": (lambda t: [*SEARCH, "--train-images", "1"], "at least 2 to split in halves"),
    "image size 0": (lambda t: [*SEARCH, "--image-size", "0"], "image_size must be >= 8 pixels, got 0"),
    "momentum 1": (lambda t: [*SEARCH, "--w-momentum", "1"], "w_momentum must be in [0, 1), got 1.0"),
    "epochs 0": (lambda t: [*SEARCH, "--epochs", "0"], "epochs must be >= 1, got 0"),
    "power iterations 0": (lambda t: [*SEARCH, "--hessian-iters", "0"], "hessian_iters must be >= 1, got 0"),
    "negative Hessian period": (lambda t: [*SEARCH, "--hessian-every", "-1"], "hessian_every must be >= 0"),
    "negative seed": (lambda t: [*SEARCH, "--seed", "-1"], "seed must be >= 0, got -1"),
    "log_every 0": (lambda t: [*SEARCH, "--log-every", "0"], "log_every must be >= 1, got 0"),
    "lr floor above lr": (lambda t: [*SEARCH, "--w-lr-min", "1"], "w_lr_min must be in [0, w_lr=0.025]"),
    "finite-difference step 0": (lambda t: [*SEARCH, "--unrolled-eps", "0"], "unrolled_eps must be > 0"),
    "order 3": (lambda t: [*SEARCH, "--order", "3"], "order must be 1 (first order) or 2"),
    "negative β weight": (lambda t: [*SEARCH, "--beta-weight", "-1"], "beta_weight must be >= 0"),
    "β ramp 0": (lambda t: [*SEARCH, "--beta-weight", "1", "--beta-ramp-epochs", "0"],
                 "beta_ramp_epochs must be >= 1"),
    "negative eval images": (lambda t: [*SEARCH, "--eval-images", "-1"], "eval_images must be >= 0"),
    "unknown final_arch": (lambda t: [*SEARCH, "--final-arch", "first"],
                           "final_arch 'first' is not known; choose last or best"),
    "unknown dtype": (lambda t: [*SEARCH, "--dtype", "fp16"], "dtype 'fp16' is not known"),
    "training lr 0": (lambda t: [*TRAIN, "--lr", "0"], "lr must be > 0, got 0.0"),
    "drop-path 1": (lambda t: [*TRAIN, "--drop-path", "1"], "drop_path must be in [0, 1), got 1.0"),
    "label smoothing 1": (lambda t: [*TRAIN, "--label-smoothing", "1"], "label_smoothing must be in [0, 1)"),
    "negative cutout": (lambda t: [*TRAIN, "--cutout", "-1"], "cutout must be >= 0"),
    "negative test images": (lambda t: [*TRAIN, "--test-images", "-1"], "test_images must be >= 0"),
    "weight decay NaN": (lambda t: [*TRAIN, "--weight-decay", "nan"], "expected a finite number, got 'nan'"),
    "training batch 0": (lambda t: [*TRAIN, "--batch-size", "0"], "batch_size must be >= 1, got 0"),
    "training epochs 0": (lambda t: [*TRAIN, "--epochs", "0"], "epochs must be >= 1, got 0"),
    "export opset 5": (lambda t: ["export", _run_folder(t, None), "--onnx", str(t / "m.onnx"),
                                  "--opset", "5"], "--opset 5 is outside what the exporter writes correctly"),
    "export opset 99": (lambda t: ["export", _run_folder(t, None), "--onnx", str(t / "m.onnx"),
                                   "--opset", "99"], "is outside what the exporter writes correctly; choose"),
    # ---- blank names
    "blank run name": (lambda t: [*SEARCH, "--run-name", "  "], "run_name '  ' starts or ends with blanks"),
    "blank preset": (lambda t: ["search", "--preset", ""], "preset '' is blank"),
    "blank training preset": (lambda t: ["train", "--preset", " "], "preset ' ' is blank"),
    "blank out-dir": (lambda t: ["search", "--preset", "nb201-tiny", "--out-dir", " ", "--run-name", "x"],
                      "out_dir ' ' is blank"),
    "blank config file": (lambda t: ["search", "--config", ""], "config file '' is blank"),
    "blank genotype": (lambda t: ["train", "--genotype", " "], "genotype must not be empty"),
    "blank dataset": (lambda t: [*SEARCH, "--dataset", ""], "dataset '' is not known; choose one of"),
    "blank baseline": (lambda t: ["report", _search_run(t), "--baseline", ""],
                       "--baseline '' is none of the runs' methods; choose one of nb201-tiny"),
    # ---- files and folders of the wrong kind
    "binary config file": (lambda t: ["search", "--config", _bytes(t, "c.yaml", BINARY)],
                           "is not a text file (not UTF-8)"),
    "config file is a folder": (lambda t: ["search", "--config", str(t)], "is a folder; give a YAML file"),
    "config file is a number": (lambda t: ["config", "--config", _file(t, "c.yaml", "5\n")],
                                "must hold a mapping of settings, got a int"),
    "binary genotype file": (lambda t: ["train", "--genotype", _bytes(t, "g.json", BINARY)],
                             "genotype file"),
    "binary genotype for the genotype command": (lambda t: ["genotype", _bytes(t, "g.json", BINARY)],
                                                 "is not a text file (not UTF-8)"),
    "a folder without a genotype": (lambda t: ["genotype", str(t)], "has no genotype.json"),
    "report --out onto a file": (lambda t: ["report", _search_run(t), "--out", _file(t, "r.md", "x")],
                                 "is a file; the report writes a folder"),
    "report of a file": (lambda t: ["report", _file(t, "x.txt", "x")], "no run folders"),
    "resume of a file": (lambda t: ["search", "--resume", _file(t, "x.txt", "x")],
                         "does not exist (or is not a folder)"),
    "export of a file": (lambda t: ["export", _file(t, "x.txt", "x")], "does not exist"),
    # ---- run folders of the other kind: the right command named
    "search --resume of a training run": (lambda t: ["search", "--resume", _train_run(t)],
                                          "is a train run; resume it with `mimdarts train --resume"),
    "train --resume of a search run": (lambda t: ["train", "--resume", _search_run(t)],
                                       "is a search run; resume it with `mimdarts search --resume"),
    "an NB201 search trained on the DARTS network": (
        lambda t: ["train", "--genotype", _search_run(t)],
        "is a nb201 cell, but network 'darts-cifar' trains darts cells; train it with --network nb201"),
    "an unfinished search's cell": (lambda t: ["train", "--preset", "nb201-quick", "--genotype",
                                               _search_run(t, finished=False)],
                                    "holds an unfinished search (no result.json"),
    "an NB201 cell to the genotype command, malformed": (lambda t: ["genotype", "|nor_conv_3x3~0|+|"],
                                                         "is no architecture of any search space"),
    # ---- environment variables
    "fault step infinite": (lambda t: SEARCH, "MIMDARTS_FAULT_NAN_STEP='inf' is not a whole number",
                            {"MIMDARTS_FAULT_NAN_STEP": "inf"}),
    "fault step not an integer": (lambda t: SEARCH, "MIMDARTS_FAULT_NAN_STEP='1.5' is not a whole number",
                                  {"MIMDARTS_FAULT_NAN_STEP": "1.5"}),
    "fault step negative": (lambda t: SEARCH, "MIMDARTS_FAULT_NAN_STEP='-2' must be a whole number",
                            {"MIMDARTS_FAULT_NAN_STEP": "-2"}),
    "fault delay NaN": (lambda t: SEARCH, "MIMDARTS_FAULT_CHECKPOINT_DELAY='nan' must be a finite",
                        {"MIMDARTS_FAULT_CHECKPOINT_DELAY": "nan"}),
    "fault delay infinite": (lambda t: TRAIN, "MIMDARTS_FAULT_CHECKPOINT_DELAY='inf' must be a finite",
                             {"MIMDARTS_FAULT_CHECKPOINT_DELAY": "inf"}),
    "fault delay a word": (lambda t: SEARCH, "MIMDARTS_FAULT_CHECKPOINT_DELAY='soon' is not a finite",
                           {"MIMDARTS_FAULT_CHECKPOINT_DELAY": "soon"}),
}


def test_the_table_is_large():
    assert len(BAD_INPUTS) >= 100


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_error(case, tmp_path, capsys, monkeypatch):
    make, message, *env = BAD_INPUTS[case]
    for name, value in (env[0] if env else {}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # a refused run that wrote into the working folder shows up
    argv = make(tmp_path)
    if argv[0] in ("search", "train") and "--resume" not in argv:
        argv = [*argv, *([] if "--out-dir" in argv else ["--out-dir", str(tmp_path / "out")]),
                "--no-progress"]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors exit directly
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("mimdarts: error: "), err
    assert "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
