"""Sweep backends: the same tiny sweep run here, as Ray tasks (a Ray started by the sweep)
and as a SLURM job array through submitit's local executor makes the same run folders with
the same numbers; retries; one-line errors. The Ray and submitit runs are slow (a Ray
instance, several processes): marked slow, and skipped without those packages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mimdarts.cli import main
from mimdarts.report import build_tables, find_runs

SWEEP = ["sweep", "--preset", "nb201-tiny", "--seeds", "2", "3", "--set", "eval_images=0",
         "--jobs", "2"]
TIMING = {"epoch_time_s", "images_per_s", "search cost (h)"}  # differ from run to run
# a valid config that fails at run time: the torchvision CIFAR-10 files are not there
FAILING = ["sweep", "--preset", "nb201-tiny", "--seeds", "1", "--set", "dataset=cifar10",
           "download=false"]


def outcome(out: Path) -> tuple[list[str], list[dict], dict[str, list[dict]]]:
    """What must not depend on the backend: the run folders, the report's rows and each
    run's log, timings left out."""
    folders = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    rows = [{k: v for k, v in r.items() if k not in TIMING}
            for t in build_tables(find_runs([out])[0]) for r in t["raw"]]
    logs = {f: [{k: v for k, v in json.loads(line).items() if k not in TIMING}
                for line in (out / f / "log.jsonl").read_text().splitlines()] for f in folders}
    return folders, rows, logs


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert main([*SWEEP, "--out-dir", str(out)]) == 0
    return outcome(out)


@pytest.mark.slow
def test_ray_sweep_equals_local_sweep(local_sweep, tmp_path, capsys):
    pytest.importorskip("ray")
    assert main([*SWEEP, "--out-dir", str(tmp_path), "--backend", "ray"]) == 0
    out = capsys.readouterr().out
    assert "2 to run, as Ray tasks (1 CPU, 0 GPU each)" in out
    assert "[2/2 done, 0 failed, 0 submitted, 0 left]" in out
    folders, rows, logs = outcome(tmp_path)
    assert folders == local_sweep[0] == ["nb201-tiny-eval_images0-s2", "nb201-tiny-eval_images0-s3"]
    assert rows == local_sweep[1] and logs == local_sweep[2]
    assert main([*SWEEP, "--out-dir", str(tmp_path), "--backend", "ray"]) == 0  # all finished
    assert "0 run, 2 skipped, 0 failed" in capsys.readouterr().out


@pytest.mark.slow
def test_ray_places_fractional_gpus_and_refuses_more_than_the_cluster_has(tmp_path, capsys):
    # Ray counts GPUs as resources: a cluster declaring one lets four trials of 0.25 share it
    # (here on CPUs: the trials' device stays the CPU), and a request above what the cluster
    # has is refused at once (Ray itself would wait for it without end)
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, num_gpus=1, include_dashboard=False)
    try:
        assert main([*SWEEP, "--out-dir", str(tmp_path), "--backend", "ray",
                     "--gpus-per-trial", "0.25"]) == 0
        assert "[2/2 done, 0 failed" in capsys.readouterr().out
        assert main([*SWEEP, "--out-dir", str(tmp_path / "more"), "--backend", "ray",
                     "--gpus-per-trial", "2"]) == 2
        assert ("--gpus-per-trial 2 asks for more than the Ray cluster's 1 GPUs; give at most 1"
                in capsys.readouterr().err)
    finally:
        ray.shutdown()
    assert main([*SWEEP, "--out-dir", str(tmp_path / "none"), "--backend", "ray",
                 "--gpus-per-trial", "0.5"]) == 2  # a Ray started by the sweep, on this machine
    if not __import__("torch").cuda.is_available():
        assert "asks for GPUs, and the Ray cluster has none; give 0" in capsys.readouterr().err


@pytest.mark.slow
def test_slurm_sweep_through_submitit_equals_local_sweep(local_sweep, tmp_path, capsys,
                                                         monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("MIMDARTS_SLURM_EXECUTOR", "local")
    assert main([*SWEEP, "--out-dir", str(tmp_path), "--backend", "slurm", "--time", "10",
                 "--partition", "p", "--account", "a", "--slurm-array-parallelism", "2"]) == 0
    assert "[2/2 done, 0 failed, 0 submitted, 0 left]" in capsys.readouterr().out
    folders, rows, logs = outcome(tmp_path)
    assert (folders, rows, logs) == local_sweep
    for f in folders:  # each trial's SLURM log is found from its folder
        run = tmp_path / f
        assert "Job completed successfully" in (run / "slurm.out").read_text()
        assert "SLURM job" in (run / "trial.log").read_text()


@pytest.mark.slow
def test_ray_retries_a_failed_trial_and_names_its_log(tmp_path, capsys):
    pytest.importorskip("ray")
    assert main([*FAILING, f"data_dir={tmp_path / 'nothing'}", "--out-dir", str(tmp_path),
                 "--backend", "ray", "--retries", "1"]) == 1
    out = capsys.readouterr().out
    log = next(tmp_path.glob("*-s1")) / "trial.log"
    assert "FAILED (exit 2, 2 attempts): mimdarts: error:" in out and f"log: {log}" in out
    text = log.read_text()
    assert "attempt 1 of 2" in text and "attempt 2 of 2" in text
    assert "sweep finished: 1 run, 0 skipped, 1 failed" in out


@pytest.mark.slow
def test_local_retries_count_attempts(tmp_path, capsys):
    assert main([*FAILING, f"data_dir={tmp_path / 'nothing'}", "--out-dir", str(tmp_path),
                 "--retries", "1"]) == 1
    out = capsys.readouterr().out
    assert "[0/1 done, 1 failed, 0 running, 0 left]" in out
    assert "FAILED (exit 2, 2 attempts): mimdarts: error:" in out
    log = next(tmp_path.glob("*-s1")) / "trial.log"
    assert log.read_text().count("=== mimdarts sweep: attempt") == 2


@pytest.mark.parametrize("flags, message", [
    (["--backend", "foo"], "unknown sweep backend 'foo'; choose one of local, ray, slurm"),
    (["--gpus-per-trial", "-1"], "--gpus-per-trial must be >= 0 (GPUs each trial holds), got -1"),
    (["--retries", "-1"], "--retries must be >= 0"),
    (["--backend", "slurm", "--gpus-per-trial", "0.5"], "whole number on SLURM, got 0.5"),
    (["--backend", "slurm", "--time", "0"], "--time must be >= 1")])
def test_bad_backend_options_are_one_line_errors(flags, message, capsys, tmp_path):
    assert main(["sweep", "--preset", "nb201-tiny", "--out-dir", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert err == f"mimdarts: error: {err.split('error: ', 1)[1]}" and message in err
    assert err.count("\n") == 1 and not any(tmp_path.iterdir())


@pytest.mark.parametrize("backend, module, extra", [("ray", "ray", "ray"),
                                                    ("slurm", "submitit", "slurm")])
def test_a_missing_package_is_a_one_line_error(backend, module, extra, monkeypatch, capsys,
                                               tmp_path):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    assert main(["sweep", "--preset", "nb201-tiny", "--out-dir", str(tmp_path),
                 "--backend", backend]) == 2
    assert capsys.readouterr().err == (f"mimdarts: error: the {backend} backend needs {module}: "
                                       f"pip install 'mimdarts[{extra}]'\n")


def test_the_cli_loads_no_backend_package():
    code = ("import sys; from mimdarts.cli import main; "
            "main(['sweep', '--preset', 'tiny', '--print-commands', '--backend', 'ray']); "
            "assert not {'ray', 'submitit'} & set(sys.modules), 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
