"""Data-parallel training and search: two real processes with Gloo on the CPU.

The processes are started as torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT); each calls the library and then saves what it holds, so the
test can compare the two ranks.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from mimdarts.data import INFOS, DeviceLoader, TensorData
from mimdarts.distributed import Dist, env_world

WORKER = textwrap.dedent("""
    import json, sys, torch
    from mimdarts import distributed
    from mimdarts.config import resolve_config
    kind, out = sys.argv[1], sys.argv[2]
    rank = int(__import__("os").environ["RANK"])
    common = {"out_dir": out + "/runs", "run_name": kind, "threads": 1, "device": "cpu"}
    if kind == "train":
        from mimdarts.train import TRAIN_PRESETS, TrainConfig, train
        cfg = resolve_config("train-tiny", overrides={**common, "train_images": 128,
                             "test_images": 64, "batch_size": 32}, root=TrainConfig,
                             presets=TRAIN_PRESETS)
        r = train(cfg, progress=False)
        state = {n: p.detach() for n, p in r.trainer.model.named_parameters()}
        extra = {"summary": json.dumps(r.summary), "steps": len(r.trainer.train_loader)}
    else:
        import mimdarts.search.loop as loop
        held = {}
        build = loop.build_searcher

        def keep(cfg):  # keep the searcher and its initial α
            s = held["s"] = build(cfg)
            held["a0"] = [a.detach().clone() for a in s.model.alpha_parameters()]
            return s
        loop.build_searcher = keep
        cfg = resolve_config("tiny", overrides={**common, "order": 2, "batch_size": 16})
        r = loop.search(cfg, progress=False)
        state = {n: p.detach() for n, p in held["s"].model.named_parameters()}
        extra = {"genotype": str(r.genotype), "history": json.dumps(r.history),
                 "alpha0": held["a0"]}
    torch.save({"params": state, **extra}, f"{out}/rank{rank}.pt")
    distributed.cleanup()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(kind: str, tmp_path, world: int = 2) -> list[dict]:
    port = _free_port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1"}
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, kind, str(tmp_path)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=120)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]


def test_ddp_training_keeps_ranks_identical(tmp_path):
    r0, r1 = run_ranks("train", tmp_path)
    assert r0["params"].keys() == r1["params"].keys() and r0["params"]
    for name, p in r0["params"].items():
        assert torch.equal(p, r1["params"][name]), name
    # each rank took half of every global batch: 128 images / 32 per step = 4 steps
    assert r0["steps"] == r1["steps"] == 4
    s0, s1 = json.loads(r0["summary"]), json.loads(r1["summary"])
    assert s0["world_size"] == 2 and s0["final_test_top1"] == s1["final_test_top1"]  # reduced
    runs = list((tmp_path / "runs").iterdir())
    assert [r.name for r in runs] == ["train"]  # rank 0 wrote, rank 1 did not
    log = [json.loads(x) for x in (runs[0] / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1


def test_ddp_search_ends_with_the_same_alpha_and_genotype(tmp_path):
    r0, r1 = run_ranks("search", tmp_path)
    assert r0["genotype"] == r1["genotype"]
    assert {"alpha_normal", "alpha_reduce"} <= r0["params"].keys()
    for name, p in r0["params"].items():  # α and w, bit for bit
        assert torch.equal(p, r1["params"][name]), name
    h0, h1 = json.loads(r0["history"]), json.loads(r1["history"])
    # logged figures are reduced over ranks: the same on both
    assert [(h["train_loss"], h["val_loss"]) for h in h0] == [(h["train_loss"], h["val_loss"])
                                                               for h in h1]
    # the evaluation scored every rank's shard and summed: one figure on both ranks
    assert [h["eval_clean_acc"] for h in h0] == [h["eval_clean_acc"] for h in h1]
    # α moved from its (broadcast) initial value
    assert not torch.equal(r0["alpha0"][0], r0["params"]["alpha_normal"])
    assert torch.equal(r0["alpha0"][0], r1["alpha0"][0])
    ckpt = torch.load(tmp_path / "runs" / "search" / "checkpoint.pt", weights_only=True)
    assert ckpt["genotype"] and json.loads(ckpt["genotype"])["space"] == "darts"


# ---------------------------------------------------------------- pieces, in one process


def test_single_process_dist_is_a_no_op(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert env_world() == (0, 1, 0)
    d = Dist()
    g = torch.randn(5)
    p = torch.nn.Parameter(torch.zeros(5))
    p.grad = g.clone()
    d.average_gradients([p])
    assert torch.equal(p.grad, g) and d.is_main and not d.enabled
    assert d.mean_dict({"a": 1.5}) == {"a": 1.5}
    assert d.split_batch(96) == 96


def test_batch_must_split_evenly():
    from mimdarts.errors import ConfigError
    with pytest.raises(ConfigError, match="does not split evenly over 4 processes"):
        Dist(rank=0, world_size=4).split_batch(30)
    assert Dist(rank=1, world_size=4).split_batch(32) == 8


def test_device_loader_shards_are_disjoint_and_complete():
    n = 103
    data = TensorData(torch.zeros(n, 3, 8, 8, dtype=torch.uint8), torch.arange(n))
    info = INFOS["cifar10-sample"]
    cpu = torch.device("cpu")

    def labels(loader):
        return torch.cat([y for _, y in loader])

    train = [DeviceLoader(data, info, 10, cpu, seed=7, rank=r, world_size=3) for r in range(3)]
    seen = [labels(x) for x in train]
    assert [len(x) for x in train] == [3, 3, 3]  # the same number of steps on every rank
    allseen = torch.cat(seen)
    assert len(allseen.unique()) == len(allseen) == 90  # disjoint
    again = torch.cat([labels(x) for x in train])  # a new pass: a new permutation
    assert not torch.equal(again, allseen)
    test = [DeviceLoader(data, info, 10, cpu, train=False, drop_last=False, rank=r, world_size=3)
            for r in range(3)]
    assert torch.equal(torch.cat([labels(x) for x in test]).sort().values, torch.arange(n))
    single = DeviceLoader(data, info, 10, cpu, seed=7)
    assert len(single) == 10 and single.order_generator is single.generator


# ---------------------------------------------------------------- kill and resume (slow)

# 2 processes, 2 epochs, mid-epoch checkpoints after every step. Search: 64 images per half,
# global batch 16 (8 per rank): 4 iterations per epoch. Training: 128 images, batch 32: 4 steps.
RESUMABLE = {
    "search": ["search", "--preset", "tiny", "--objective", "mim-darts", "--epochs", "2",
               "--batch-size", "16", "--eval-images", "32", "--order", "2"],
    "train": ["train", "--preset", "train-tiny", "--epochs", "2", "--train-images", "128",
              "--test-images", "64", "--batch-size", "32", "--drop-path", "0.2"],
}
TIMING = {"epoch_time_s", "images_per_s", "train_time_s", "eval_time_s"}


def launch(kind: str, out, name: str, delay: float = 0.0, rank1_env: dict | None = None,
           extra: tuple[str, ...] = (), rank0_env: dict | None = None) -> list[subprocess.Popen]:
    """Both ranks of `mimdarts KIND ... --resume auto`, as torchrun (or a requeue) starts them;
    ``rank0_env``, ``rank1_env``: variables for that rank alone."""
    port = _free_port()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "OMP_NUM_THREADS": "1",
               "MIMDARTS_FAULT_CHECKPOINT_DELAY": str(delay), **((rank1_env if rank else rank0_env) or {})}
        argv = [*RESUMABLE[kind], "--threads", "1", "--device", "cpu", "--no-progress",
                "--checkpoint-every", "1", "--out-dir", str(out), "--run-name", name,
                "--resume", "auto", *extra]
        procs.append(subprocess.Popen([sys.executable, "-m", "mimdarts", *argv], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def wait_all(procs: list[subprocess.Popen]) -> None:
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]


def checkpoint_at(run):
    try:
        c = torch.load(run / "checkpoint.pt", weights_only=True)
    except (OSError, RuntimeError, EOFError):
        return None
    return c["epoch"], c["step"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["search", "train"])
def test_a_killed_rank_and_a_relaunch_with_resume_auto_end_as_the_uninterrupted_run(tmp_path, kind):
    import signal
    import time
    wait_all(launch(kind, tmp_path, "ref"))
    procs = launch(kind, tmp_path, "run", delay=0.3)
    run = tmp_path / "run"
    deadline = time.monotonic() + 240
    while (checkpoint_at(run) or (0, 0)) < (1, 2):  # mid-way through the second epoch
        assert all(p.poll() is None for p in procs), procs[0].stdout.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)  # one rank dies; torchrun then stops the others
    procs[1].wait()
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    epoch, step = checkpoint_at(run)
    assert epoch == 1 and 0 < step < 4
    wait_all(launch(kind, tmp_path, "run"))  # the relaunch: same command
    a, b = (torch.load(tmp_path / r / "checkpoint.pt", weights_only=True) for r in ("run", "ref"))
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["genotype"] == b["genotype"] and len(a["resume_ranks"]) == 2

    def log(r):
        lines = (tmp_path / r / "log.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]
    assert log("run") == log("ref") and len(log("ref")) == 2


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["search", "train"])
def test_sigterm_on_one_rank_stops_both_resumably(tmp_path, kind):
    # only rank 1 gets SIGTERM (after global step 6: epoch 2, step 2): the ranks agree every
    # log_every (here 1) steps, both checkpoint after the same step and exit 143; the same
    # command again ends as the uninterrupted run
    import signal
    wait_all(launch(kind, tmp_path, "ref", extra=("--log-every", "1")))
    procs = launch(kind, tmp_path, "run", rank1_env={"MIMDARTS_FAULT_SIGNAL_STEP": "6"},
                   extra=("--log-every", "1"))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [128 + signal.SIGTERM] * 2, outs
    run = tmp_path / "run"
    assert f"stopped by SIGTERM after epoch 2, step 2: checkpoint {str(run / 'checkpoint.pt')!r}" \
        in outs[0]
    assert checkpoint_at(run) == (1, 2)
    wait_all(launch(kind, tmp_path, "run", extra=("--log-every", "1")))
    a, b = (torch.load(tmp_path / r / "checkpoint.pt", weights_only=True) for r in ("run", "ref"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k

    def log(r):
        lines = (tmp_path / r / "log.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]
    assert log("run") == log("ref") and len(log("ref")) == 2


@pytest.mark.slow
@pytest.mark.parametrize("point,rank", [("start", 1), ("step:5", 1), ("checkpoint:5", 0),
                                        ("finish", 0)])
def test_one_failing_rank_stops_every_rank_with_its_error(tmp_path, point, rank):
    # an exception on one rank only (as a folder rank 0 cannot create, data missing on one
    # node, an error in a sink): every rank ends within 60 s, non-zero, the others naming the
    # failing rank's error; the same command again ends as the uninterrupted run
    import time
    wait_all(launch("search", tmp_path, "ref"))
    env = {"MIMDARTS_FAULT_RAISE": point}
    t = time.monotonic()
    procs = launch("search", tmp_path, "run", rank1_env=env if rank == 1 else None,
                   rank0_env=env if rank == 0 else None)
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert time.monotonic() - t < 60 + 30  # (30 s: the start-up of two processes here)
    assert all(p.returncode != 0 for p in procs), outs
    what = f"injected fault at {point.replace(':', ' ')}"
    assert f"RuntimeError: {what}" in outs[rank]
    other = outs[1 - rank].strip().splitlines()[-1]
    assert other == (f"mimdarts: error: rank {rank} failed: RuntimeError: {what}; this rank "
                     f"(rank {1 - rank}) stops too; rerun with --resume auto to continue from "
                     "the last checkpoint"), outs[1 - rank][-2000:]
    wait_all(launch("search", tmp_path, "run"))  # the same command, no fault
    a, b = (torch.load(tmp_path / r / "checkpoint.pt", weights_only=True) for r in ("run", "ref"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    res = [json.loads((tmp_path / r / "result.json").read_text()) for r in ("run", "ref")]
    assert res[0]["genotype"] == res[1]["genotype"]

    def log(r):
        lines = (tmp_path / r / "log.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]
    assert log("run") == log("ref") and len(log("ref")) == 2
