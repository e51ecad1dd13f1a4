"""Runs that survive: SIGKILL mid-epoch or mid-checkpoint, or a preemption signal (SIGTERM,
SIGUSR1), then --resume, ends exactly as an uninterrupted run; bad checkpoints, NaN losses and
full disks give clear errors."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import mimdarts
from mimdarts import faults
from mimdarts.cli import main
from mimdarts.errors import RunDirError
from mimdarts.rundir import RunDir, atomic_write_text

SRC = str(Path(mimdarts.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
TIMING = {"epoch_time_s", "images_per_s", "train_time_s", "eval_time_s"}

# 4 iterations per epoch (64 + 64 images, batch 16), MIM-DARTS: masks, a decoder, both loaders.
SEARCH = ["search", "--preset", "tiny", "--objective", "mim-darts", "--epochs", "2",
          "--threads", "1", "--eval-images", "32", "--device", "cpu", "--no-progress"]
# 8 steps per epoch (256 images, batch 32), drop-path and cutout drawing random numbers.
TRAIN = ["train", "--preset", "train-tiny", "--epochs", "2", "--drop-path", "0.2",
         "--test-images", "64", "--threads", "1", "--device", "cpu", "--no-progress"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mimdarts", *args]


def start(argv: list[str], out: Path, name: str, *extra: str,
          checkpoint_delay: float = 0.0) -> subprocess.Popen:
    """The run in a subprocess; ``checkpoint_delay``: seconds each checkpoint waits before its
    rename (fault injection, so that the test can kill it while it writes)."""
    env = {**ENV, faults.CHECKPOINT_DELAY: str(checkpoint_delay)}
    return subprocess.Popen(cli(*argv, "--out-dir", str(out), "--run-name", name, *extra),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(p: subprocess.Popen) -> None:
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err


def kill_when(p: subprocess.Popen, ready, timeout: float = 90.0) -> None:
    """SIGKILL ``p`` as soon as ``ready()`` holds; fail if it ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert p.poll() is None, f"the run ended before it could be killed: {p.stderr.read()}"
        assert time.monotonic() < deadline, "timed out waiting to kill the run"
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    assert p.returncode == -signal.SIGKILL


def checkpoint_at(run: Path) -> tuple[int, int] | None:
    """(epoch, step) of run/checkpoint.pt, or None while there is none."""
    try:
        c = torch.load(run / "checkpoint.pt", weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return None
    return c["epoch"], c["step"]


def resume(command: str, run: Path) -> None:
    """``mimdarts COMMAND --resume RUN`` in this process (saves a start-up; the run's own
    config sets one thread, undone afterwards)."""
    threads = torch.get_num_threads()
    try:
        assert main([command, "--resume", str(run), "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)


def log_without_timing(run: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines]


def assert_same_run(a: Path, b: Path) -> None:
    ca, cb = (torch.load(r / "checkpoint.pt", weights_only=True) for r in (a, b))
    assert ca["model"].keys() == cb["model"].keys()
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    assert ca["genotype"] == cb["genotype"]
    assert log_without_timing(a) == log_without_timing(b)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    """Uninterrupted search and training runs, started together (one thread each)."""
    out = tmp_path_factory.mktemp("ref")
    procs = [start(SEARCH, out, "search"), start(TRAIN, out, "train")]
    for p in procs:
        finish(p)
    return out / "search", out / "train"


def test_search_killed_mid_epoch_resumes_to_the_same_result(tmp_path, references):
    ref = references[0]
    p = start(SEARCH, tmp_path, "run", "--checkpoint-every", "1", checkpoint_delay=0.2)
    run = tmp_path / "run"
    kill_when(p, lambda: (checkpoint_at(run) or (0, 0)) >= (1, 1))  # in the second epoch
    epoch, step = checkpoint_at(run)
    assert epoch == 1 and 0 < step < 4  # a mid-epoch checkpoint
    with open(run / "log.jsonl", "a") as f:  # a line written after the checkpoint: dropped
        f.write('{"epoch": 99}\n')
    resume("search", run)
    assert_same_run(run, ref)
    a, b = (torch.load(r / "checkpoint.pt", weights_only=True) for r in (run, ref))
    for k in ("alpha_normal", "alpha_reduce"):
        assert torch.equal(a["model"][k], b["model"][k])
    assert (run / "genotype.json").read_text() == (ref / "genotype.json").read_text()
    assert [r["epoch"] for r in log_without_timing(run)] == [1, 2]
    assert json.loads((run / "result.json").read_text())["genotype"] == \
        json.loads((ref / "result.json").read_text())["genotype"]


@pytest.mark.parametrize("kind", ["search", pytest.param("train", marks=pytest.mark.slow)])
def test_sigterm_checkpoints_at_the_next_step_and_resumes_to_the_same_result(tmp_path, references,
                                                                           kind):
    # the process sends itself SIGTERM after global step 6 (epoch 2, step 2 of 4 for the
    # search; epoch 1, step 6 of 8 for the training), as a cluster's preemption would
    ref = references[0 if kind == "search" else 1]
    argv = SEARCH if kind == "search" else TRAIN
    env = {**ENV, faults.SIGNAL_STEP: "6"}
    p = subprocess.run(cli(*argv, "--out-dir", str(tmp_path), "--run-name", "run"), env=env,
                       capture_output=True, text=True, timeout=120)
    run = tmp_path / "run"
    assert p.returncode == 128 + signal.SIGTERM, p.stderr
    where = "epoch 2, step 2" if kind == "search" else "epoch 1, step 6"
    assert p.stderr.strip().splitlines()[-1] == (
        f"mimdarts: stopped by SIGTERM after {where}: checkpoint {str(run / 'checkpoint.pt')!r} "
        f"written; resumable: rerun with --resume auto (the same command) or --resume {run}")
    assert checkpoint_at(run) == ((1, 2) if kind == "search" else (0, 6))
    assert not (run / "result.json").exists() and not (run / "summary.json").exists()
    p = subprocess.run(cli(*argv, "--out-dir", str(tmp_path), "--run-name", "run",
                           "--resume", "auto"), env=ENV, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert_same_run(run, ref)


def test_sigusr1_from_outside_stops_the_search_resumably(tmp_path, references):
    # SLURM's --signal=USR1@120: sent by another process while the search runs (each step
    # waits 0.2 s in its checkpoint, so the signal lands mid-epoch)
    p = start(SEARCH, tmp_path, "run", "--checkpoint-every", "1", checkpoint_delay=0.2)
    run = tmp_path / "run"
    deadline = time.monotonic() + 90
    while (checkpoint_at(run) or (0, 0)) < (0, 1):
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
        time.sleep(0.01)
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGUSR1, err
    assert "stopped by SIGUSR1 after epoch" in err and "resumable: rerun with --resume auto" in err
    resume("search", run)
    assert_same_run(run, references[0])


@pytest.mark.parametrize("kind", ["search", "train"])
def test_a_checkpoint_of_the_previous_format_resumes(tmp_path, references, kind):
    """Checkpoints written before the run lifecycle (main of 2026-11-29) name a search's data
    halves w_loader/a_loader and carry the retired fault_* fields (and, in a training's
    config, the search-only eval_images and cuda_graphs); those before α had one name (up to
    2026-12) call its optimizer a_optimizer: the end-of-epoch-1 checkpoint of the reference,
    rewritten that way, resumes to the same run."""
    ref = references[0 if kind == "search" else 1]
    run = Path(shutil.copytree(ref, tmp_path / "old"))
    old = torch.load(run / "checkpoint.prev.pt", weights_only=True)  # after epoch 1
    assert old["epoch"] == 1
    config = json.loads(old["config"])
    config["run"].update(fault_nan_step=0, fault_checkpoint_delay=0.0)
    if kind == "search":
        r = old["resume"]
        r["w_loader"], r["a_loader"] = r.pop("train_loader"), r.pop("val_loader")
        old["a_optimizer"] = old.pop("alpha_optimizer")
        (run / "result.json").unlink()
    else:
        config["run"].update(eval_images=512, cuda_graphs=False)
    old["config"] = json.dumps(config)
    torch.save(old, run / "checkpoint.pt")
    # the run folder's config.yaml as that version wrote it, retired fields included
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    resume(kind, run)
    assert_same_run(run, ref)


def test_training_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, references):
    ref = references[1]
    p = start(TRAIN, tmp_path, "run", "--checkpoint-every", "3", checkpoint_delay=0.2)
    run = tmp_path / "run"
    kill_when(p, lambda: (checkpoint_at(run) or (0, 0)) >= (1, 1))
    epoch, step = checkpoint_at(run)
    assert epoch == 1 and 0 < step < 8
    resume("train", run)
    assert_same_run(run, ref)
    assert json.loads((run / "summary.json").read_text())["final_test_top1"] == \
        json.loads((ref / "summary.json").read_text())["final_test_top1"]


def test_kill_while_a_checkpoint_is_written_keeps_the_previous_one(tmp_path, references):
    ref = references[0]
    p = start(SEARCH, tmp_path, "run", "--checkpoint-every", "2", checkpoint_delay=0.5)
    run = tmp_path / "run"
    # The first checkpoint (step 2) is complete and the next one sits in its temporary file.
    kill_when(p, lambda: checkpoint_at(run) is not None and any(run.glob(".checkpoint.pt.*.tmp")))
    assert checkpoint_at(run) == (0, 2)  # the previous, complete checkpoint
    resume("search", run)
    assert not any(run.glob(".*.tmp"))
    assert_same_run(run, ref)


# ---------------------------------------------------------------- failures, in process


def tiny_search(tmp_path: Path, name: str, *extra: str) -> int:
    return main(["search", "--preset", "tiny", "--no-progress", "--eval-images", "16", "--device", "cpu",
                 "--out-dir", str(tmp_path), "--run-name", name, *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mimdarts: error: "), err
    return err


def test_nan_loss_stops_the_search_and_keeps_the_last_good_checkpoint(tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setenv(faults.NAN_STEP, "3")
    code = tiny_search(tmp_path, "nan", "--epochs", "2", "--checkpoint-every", "2")
    assert code == 2
    err = one_line_error(capsys)
    assert "the loss is not finite at step 3 (epoch 1, step 3 of 4)" in err
    assert "train_loss=nan" in err and "val_loss=" in err and "is kept" in err
    c = torch.load(tmp_path / "nan" / "checkpoint.pt", weights_only=True)
    assert (c["epoch"], c["step"]) == (0, 2)
    assert all(torch.isfinite(v).all() for v in c["model"].values() if v.is_floating_point())
    assert not (tmp_path / "nan" / "log.jsonl").exists()  # no epoch was logged


def test_nan_loss_stops_training(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(faults.NAN_STEP, "5")
    code = main(["train", "--preset", "train-tiny", "--no-progress", "--test-images", "32", "--device", "cpu",
                 "--out-dir", str(tmp_path), "--run-name", "nan"])
    assert code == 2
    err = one_line_error(capsys)
    assert "the loss is not finite at step 5 (epoch 1, step 5 of 8): loss=nan, cls=" in err
    assert "no checkpoint was written" in err
    assert not (tmp_path / "nan" / "checkpoint.pt").exists()


@pytest.fixture(scope="module")
def _finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    assert tiny_search(out, "done") == 0
    return out / "done"


@pytest.fixture
def finished_search(_finished, tmp_path):
    """A copy of a finished tiny search (1 epoch, 4 iterations) to damage."""
    return Path(shutil.copytree(_finished, tmp_path / "done"))


def test_truncated_checkpoint_is_refused(finished_search, capsys):
    run = finished_search
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    assert main(["search", "--resume", str(run), "--no-progress"]) == 2
    assert "is unreadable (truncated or corrupted?)" in one_line_error(capsys)
    assert (run / "checkpoint.pt").read_bytes() == data[: len(data) // 2]  # not replaced


def test_checkpoint_of_another_space_or_config_is_refused(finished_search, tmp_path, capsys):
    run = finished_search
    assert main(["search", "--preset", "nb201-tiny", "--no-progress", "--eval-images", "16",
                 "--device", "cpu", "--out-dir", str(tmp_path), "--run-name", "nb"]) == 0
    mine = (run / "checkpoint.pt").read_bytes()
    shutil.copy(tmp_path / "nb" / "checkpoint.pt", run / "checkpoint.pt")
    assert main(["search", "--resume", str(run), "--no-progress"]) == 2
    assert "is from the 'nb201' space, but the run's config.yaml says 'darts'" in one_line_error(capsys)
    (run / "checkpoint.pt").write_bytes(mine)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["optim"]["w_lr"] = 0.5
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["search", "--resume", str(run), "--no-progress"]) == 2
    assert "another config: optim.w_lr=0.025 in the checkpoint, 0.5 now" in one_line_error(capsys)


# ---------------------------------------------------------------- full disk


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_full_disk_leaves_old_files_whole(tmp_path, monkeypatch):
    run = RunDir.create(tmp_path / "r")
    run.append_log({"epoch": 1})
    run.save_checkpoint({"format": "x", "epoch": 1})
    monkeypatch.setattr(os, "fsync", enospc)
    with pytest.raises(RunDirError, match="cannot write .*log.jsonl.*No space left on device"):
        run.append_log({"epoch": 2})
    with pytest.raises(RunDirError, match="cannot write .*checkpoint.pt.*No space left"):
        run.save_checkpoint({"format": "x", "epoch": 2})
    with pytest.raises(RunDirError, match="No space left"):
        atomic_write_text(run.path / "summary.json", "{}")
    monkeypatch.undo()
    assert run.read_log() == [{"epoch": 1}]
    assert run.load_checkpoint()["epoch"] == 1
    assert sorted(p.name for p in run.path.iterdir()) == ["checkpoint.pt", "log.jsonl"]


FSIZE_WORKER = """
import resource, sys
from mimdarts.config import resolve_config
from mimdarts.search.loop import search
from mimdarts.sinks import BaseSink
out, mode = sys.argv[1], sys.argv[2]


def limit(n):  # what a full disk does to the next write: EFBIG (Python ignores SIGXFSZ)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


class Fill(BaseSink):
    wants_steps = True

    def step(self, step, scalars):  # mid-epoch 2: the log's next rewrite will not fit
        if mode == "log" and step == 6:
            import os
            limit(os.path.getsize(out + "/run/log.jsonl") + 50)

    def epoch(self, record, pictures):  # epoch 2 logged: its checkpoint will not fit
        if mode == "checkpoint" and record["epoch"] == 2:
            limit(64 * 1024)


cfg = resolve_config("tiny", overrides={"objective": "mim-darts", "epochs": 2, "threads": 1,
                     "eval_images": 32, "device": "cpu", "log_every": 1, "out_dir": out,
                     "run_name": "run"})
try:
    search(cfg, progress=False, sinks=[Fill()])
except Exception as e:
    print(f"{type(e).__name__}: {e}", file=sys.stderr)
    sys.exit(2)
"""


@pytest.mark.parametrize("mode", ["log", pytest.param("checkpoint", marks=pytest.mark.slow)])
def test_a_write_past_the_disks_end_keeps_the_run_resumable(tmp_path, references, mode):
    # a real failed write (RLIMIT_FSIZE in the run's process, set mid-run): one line, the
    # previous checkpoint and a log without a torn line; then, with space back, the resume
    # ends as the uninterrupted run
    p = subprocess.run([sys.executable, "-c", FSIZE_WORKER, str(tmp_path), mode], env=ENV,
                       capture_output=True, text=True, timeout=120)
    run = tmp_path / "run"
    name = "log.jsonl" if mode == "log" else "checkpoint.pt"
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip() == (f"RunDirError: cannot write {str(run / name)!r}: File too large; "
                                "the last checkpoint and the log lines before it are kept: free "
                                "space, then rerun with --resume auto to continue")
    assert checkpoint_at(run) == (1, 0)  # epoch 1's
    lines = (run / "log.jsonl").read_text().splitlines(keepends=True)
    assert all(line.endswith("\n") and json.loads(line) for line in lines)
    assert len(lines) == (1 if mode == "log" else 2)  # (the checkpoint counts 1: a resume drops 2)
    assert not list(run.glob(".*.tmp"))
    resume("search", run)
    assert_same_run(run, references[0])


def test_full_disk_under_report_and_export_is_one_line_and_writes_nothing(
        references, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "fsync", enospc)
    out = tmp_path / "report"
    assert main(["report", str(references[0]), "--out", str(out)]) == 2
    assert "No space left on device" in one_line_error(capsys)
    assert not out.exists() or not [p for p in out.iterdir() if p.suffix in (".md", ".csv")]
    assert main(["export", str(references[1]), "--out", str(tmp_path / "net.pt")]) == 2
    assert f"cannot write {str(tmp_path / 'net.pt')!r}: No space left on device" in \
        one_line_error(capsys)
    assert not list(tmp_path.glob("*.pt")) and not list(tmp_path.glob(".*.tmp"))


def test_full_disk_during_a_search_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "replace", enospc)
    assert tiny_search(tmp_path, "full") == 2
    assert "No space left on device" in one_line_error(capsys)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "full").iterdir())


# ---------------------------------------------------------------- loaders


def test_device_loader_state_continues_the_stream(info):
    from mimdarts.data import DeviceLoader
    from mimdarts.data.datasets import TensorData
    g = torch.Generator().manual_seed(0)
    data = TensorData(torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8, generator=g),
                      torch.arange(40))

    def make():
        return DeviceLoader(data, info, 8, torch.device("cpu"), seed=3, cutout=4)

    a = make()
    stream = a.forever()
    for _ in range(7):  # into the second pass
        next(stream)
    saved = {k: v.clone() if torch.is_tensor(v) else v for k, v in a.state_dict().items()}
    want = [next(stream) for _ in range(6)]
    b = make()
    b.load_state_dict(saved)
    got = b.forever()
    for x, y in want:
        gx, gy = next(got)
        assert torch.equal(x, gx) and torch.equal(y, gy)


def test_folder_loader_state_continues_the_order():
    from mimdarts.data import FolderLoader
    ds = torch.utils.data.TensorDataset(torch.arange(30).float(), torch.arange(30))

    def make():
        return FolderLoader(ds, 4, torch.device("cpu"), workers=0, seed=5)

    a = make()
    next(iter(a))  # a first pass, abandoned
    it = iter(a)
    next(it), next(it)
    saved = a.state_dict()
    want = [y for _, y in it] + [y for _, y in a]
    b = make()
    b.load_state_dict(saved)
    got = [y for _, y in b] + [y for _, y in b]
    assert len(want) == len(got) == 5 + 7
    assert all(torch.equal(u, v) for u, v in zip(want, got))


def test_lost_log_lines_are_refused(finished_search, capsys):
    (finished_search / "log.jsonl").unlink()
    assert main(["search", "--resume", str(finished_search), "--no-progress"]) == 2
    assert "has 0 lines but the checkpoint was written after 1" in one_line_error(capsys)


def test_checkpoint_from_before_the_speed_switches_is_accepted():
    # a checkpoint written before fold_weights and merge_decoder_convs existed resumes (they
    # read back as their defaults); toggling one is refused (another rounding: a resumed run
    # would not end as the uninterrupted one), and so is w_lr
    from mimdarts.config import SearchConfig, apply_overrides
    from mimdarts.errors import ConfigError
    from mimdarts.resume import check_checkpoint
    from mimdarts.search.loop import CHECKPOINT_FORMAT

    cfg = SearchConfig()
    old = cfg.to_dict()
    del old["model"]["fold_weights"], old["objective"]["merge_decoder_convs"]
    ckpt = {"format": CHECKPOINT_FORMAT, "resume": {"device": "cpu"}, "config": json.dumps(old)}
    check_checkpoint(ckpt, cfg, CHECKPOINT_FORMAT, "c.pt", torch.device("cpu"))
    with pytest.raises(ConfigError, match="model.fold_weights"):
        check_checkpoint(ckpt, apply_overrides(cfg, {"fold_weights": False}), CHECKPOINT_FORMAT,
                         "c.pt", torch.device("cpu"))
    with pytest.raises(ConfigError, match="optim.w_lr"):
        check_checkpoint(ckpt, apply_overrides(cfg, {"w_lr": 0.5}), CHECKPOINT_FORMAT, "c.pt",
                         torch.device("cpu"))


def test_the_device_is_compared_as_resolved():
    # `auto` and `cpu` are one device on a CPU: the checkpoint's device type decides, and a
    # checkpoint written on another device names the flag that resumes it
    from mimdarts.config import SearchConfig, apply_overrides, changed_settings, flatten
    from mimdarts.errors import ConfigError
    from mimdarts.resume import check_checkpoint
    from mimdarts.search.loop import CHECKPOINT_FORMAT

    cfg = SearchConfig()
    ckpt = {"format": CHECKPOINT_FORMAT, "resume": {"device": "cpu"}, "config": cfg.to_json()}
    check_checkpoint(ckpt, apply_overrides(cfg, {"device": "cpu", "threads": 1}),
                     CHECKPOINT_FORMAT, "c.pt", torch.device("cpu"))
    with pytest.raises(ConfigError, match="written on cuda, this run would use cpu; pass --device cuda"):
        check_checkpoint({**ckpt, "resume": {"device": "cuda"}}, cfg, CHECKPOINT_FORMAT, "c.pt",
                         torch.device("cpu"))
    # the one rule, as `--resume auto` applies it to a folder without a checkpoint too
    mine = flatten(apply_overrides(cfg, {"device": "cpu", "channels_last": False, "seed": 3,
                                         "tensorboard": True, "skip_none": False}).to_dict())
    assert changed_settings(flatten(cfg.to_dict()), mine) == ["seed", "channels_last"]


def test_run_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        RunDir(tmp_path).save_checkpoint({"epoch": 0})
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "checkpoint.pt").stat().st_mode & 0o777 == 0o640


def test_resuming_a_finished_search_changes_nothing(finished_search, capsys):
    before = {p.name: p.read_bytes() for p in finished_search.iterdir()}
    # (a setting that changes no result may differ on a resume)
    assert main(["search", "--resume", str(finished_search), "--no-progress", "--threads", "2"]) == 0
    out = capsys.readouterr().out
    assert f"run folder {finished_search} had already finished; nothing changed" in out
    assert "found cell (epoch 1 of 1" in out
    assert {p.name: p.read_bytes() for p in finished_search.iterdir()} == before


def test_resume_auto_starts_then_continues(tmp_path, capsys):
    args = ["search", "--preset", "tiny", "--no-progress", "--eval-images", "16", "--device", "cpu",
            "--out-dir", str(tmp_path), "--run-name", "a", "--resume", "auto"]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.yaml").write_text("left by a run killed before its first checkpoint")
    assert main(args) == 0  # no checkpoint there: started (the folder replaced)
    assert json.loads((tmp_path / "a" / "result.json").read_text())["epochs"] == 1
    capsys.readouterr()
    assert main(args) == 0  # a checkpoint: resumed (here: already finished)
    assert "had already finished; nothing changed" in capsys.readouterr().out
    assert main(args[:-4] + ["--resume", "auto"]) == 2
    assert "--resume auto needs --run-name" in capsys.readouterr().err
    # another preset or seed is another run: refused, not silently resumed
    assert main([*args[:2], "nb201-tiny", *args[3:]]) == 2
    assert f"--resume auto: {str(tmp_path / 'a')!r} holds a run of other settings: " \
           "space='darts' there, 'nb201' here" in capsys.readouterr().err
    assert main([*args, "--seed", "7"]) == 2
    assert "seed=2 there, 7 here" in capsys.readouterr().err
    assert main([*args, "--threads", "1"]) == 0  # what changes no result may differ


def test_a_checkpoint_of_another_process_count_is_refused():
    from mimdarts.errors import ConfigError
    from mimdarts.resume import for_rank
    two = {"resume": {"a": 0}, "resume_ranks": [{"a": 0}, {"a": 1}]}
    assert for_rank(two, 1, 2, "c.pt")["resume"] == {"a": 1}
    assert for_rank({"resume": {"a": 0}}, 0, 1, "c.pt")["resume"] == {"a": 0}
    with pytest.raises(ConfigError, match=r"written by 2 process\(es\), this run has 1; resume "
                                          r"with as many \(torchrun --nproc_per_node 2\)"):
        for_rank(two, 0, 1, "c.pt")


def test_a_search_killed_before_its_result_gets_it_on_resume(finished_search, capsys):
    result = (finished_search / "result.json").read_text()
    (finished_search / "result.json").unlink()  # killed between the last checkpoint and it
    assert main(["search", "--resume", str(finished_search), "--no-progress"]) == 0
    assert (finished_search / "result.json").read_text() == result


def test_resume_auto_refuses_results_without_a_checkpoint_and_restarts_a_first_epoch(
        finished_search, capsys):
    (finished_search / "checkpoint.pt").unlink()
    (finished_search / "checkpoint.prev.pt").unlink(missing_ok=True)
    args = ["search", "--preset", "tiny", "--out-dir", str(finished_search.parent),
            "--run-name", finished_search.name, "--resume", "auto", "--no-progress",
            "--eval-images", "16", "--device", "cpu"]
    assert main(args) == 2  # a finished run's results are never replaced by a relaunch
    assert "holds log.jsonl, result.json but no checkpoint.pt" in capsys.readouterr().err
    assert (finished_search / "log.jsonl").is_file()
    # killed after logging its first epoch, before its first checkpoint: started again, the
    # same run (a sweep's trial relaunched); another run's log is refused
    def figures(path):  # the cells and losses (other threads here than in the fixture's run)
        return [(r["epoch"], r["genotype"], pytest.approx(r["train_loss"], rel=1e-4),
                 pytest.approx(r["val_loss"], rel=1e-4))
                for r in map(json.loads, path.read_text().splitlines())]

    log = figures(finished_search / "log.jsonl")
    (finished_search / "result.json").unlink()
    assert main([*args, "--seed", "7"]) == 2
    assert "seed=2 there, 7 here" in capsys.readouterr().err
    assert main(args) == 0
    assert figures(finished_search / "log.jsonl") == log
    assert (finished_search / "result.json").is_file()


def test_overwrite_clears_what_a_run_wrote(tmp_path):
    (tmp_path / "r" / "tensorboard").mkdir(parents=True)
    (tmp_path / "r" / "tensorboard" / "events").write_text("old")
    (tmp_path / "r" / "recon_e005.png").write_bytes(b"old")
    (tmp_path / "r" / "trial.log").write_text("a sweep's log stays\n")
    RunDir.create(tmp_path / "r", overwrite=True)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["trial.log"]


def test_the_guard_stops_every_rank_at_the_first_bad_step_of_any():
    from mimdarts.errors import DivergenceError
    from mimdarts.resume import DivergenceGuard
    g = DivergenceGuard(torch.device("cpu"), reduce_min=lambda t: t.fill_(3))  # rank 1 saw 3
    g.update(1, {"loss": torch.tensor(1.0)})
    with pytest.raises(DivergenceError, match="at step 3 .*: on another process; run stopped"):
        g.check(4, "kept")
    assert DivergenceGuard(torch.device("cpu"), reduce_min=lambda t: t).check(4, "kept") is None
