"""Every bad input the CLI handles, in one table: config values, genotype strings, paths,
data files and run folders. Each gives ONE line `mimdarts: error: ...` naming the bad value,
exit status 2, and writes nothing. (Older per-module tables stay in test_cli.py,
test_train.py and test_nb201.py.)"""

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


Case = tuple[Callable[[Path], list[str]], str]
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
                                  "genotype is for the 'nb201' space, expected 'darts'"),
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
                                  "must hold a mapping, got list"),
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
                                        "--device", "cpu"],
                             "cuda_graphs=True does nothing in this run: CUDA graphs need one "
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
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_error(case, tmp_path, capsys):
    make, message = BAD_INPUTS[case]
    argv = make(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    if argv[0] in ("search", "train") and "--resume" not in argv:
        argv = [*argv, "--out-dir", str(tmp_path / "out"), "--no-progress"]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse errors exit directly
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert err.count("\n") == 1 and err.startswith("mimdarts: error: "), err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written
