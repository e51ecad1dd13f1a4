"""Soak test of exact resume: kill a tiny search with SIGKILL at random moments, again and
again, resuming it each time with the same command, and check that it ends exactly as the
uninterrupted run (weights, α, log and cell; timing fields aside).

Each attempt runs ``mimdarts search ... --resume auto --checkpoint-every 1`` (a checkpoint
after every step) with a random checkpoint delay (0-0.3 s between a checkpoint's complete
temporary file and its rename: ``MIMDARTS_FAULT_CHECKPOINT_DELAY``) and is killed a random
0-0.6 s after it has written its first checkpoint (so every attempt makes progress), which
lands kills in steps, in evaluations and inside checkpoint writes alike. A run that ends
before its kill starts the count again from scratch (the kills must come in a row).

    PYTHONPATH=src python benchmarks/soak.py --kills 20 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

SEARCH = ["search", "--preset", "tiny", "--objective", "mim-darts", "--epochs", "10",
          "--threads", "1", "--eval-images", "32", "--device", "cpu", "--no-progress",
          "--checkpoint-every", "1"]
TIMING = {"epoch_time_s", "images_per_s", "train_time_s", "eval_time_s"}


def command(out: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "mimdarts", *SEARCH, "--out-dir", str(out), "--run-name", name,
            "--resume", "auto"]


def log(run: Path) -> list[dict]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING} for x in lines]


def same_run(a: Path, b: Path) -> list[str]:
    """What differs between two finished runs (empty: the same run)."""
    ca, cb = (torch.load(r / "checkpoint.pt", weights_only=True) for r in (a, b))
    out = [k for k in cb["model"] if not torch.equal(ca["model"][k], cb["model"][k])]
    if ca["genotype"] != cb["genotype"]:
        out.append("genotype")
    if log(a) != log(b):
        out.append("log.jsonl")
    if json.loads((a / "result.json").read_text())["genotype"] != \
            json.loads((b / "result.json").read_text())["genotype"]:
        out.append("result.json")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs to land before letting it end")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill times and delays")
    ap.add_argument("--keep", action="store_true", help="keep the run folders")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = Path(tempfile.mkdtemp(prefix="mimdarts-soak-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t = time.monotonic()
    subprocess.run(command(out, "ref"), env=env, check=True, capture_output=True)
    whole = time.monotonic() - t
    print(f"uninterrupted run: {whole:.1f} s (with its start-up)")
    kills = attempts = finished_early = inside = 0
    run = out / "run"
    while kills < a.kills:
        attempts += 1
        delay = rng.uniform(0.0, 0.3)
        p = subprocess.Popen(command(out, "run"), env={**env, "MIMDARTS_FAULT_CHECKPOINT_DELAY":
                                                        f"{delay:.3f}"},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ckpt = run / "checkpoint.pt"
        before = ckpt.stat().st_mtime_ns if ckpt.exists() else 0
        deadline = time.monotonic() + 10 * whole
        while p.poll() is None and (ckpt.stat().st_mtime_ns if ckpt.exists() else 0) == before:
            if time.monotonic() > deadline:
                p.kill()
                print("an attempt wrote no checkpoint in time")
                return 1
            time.sleep(0.005)
        at = rng.uniform(0.0, 0.6)
        try:
            p.wait(timeout=at)
        except subprocess.TimeoutExpired:
            tmp = bool(list(run.glob(".*.tmp")))
            p.send_signal(signal.SIGKILL)
            p.wait()
            kills += 1
            inside += tmp
            print(f"kill {kills}: {at:.2f} s after the attempt's first checkpoint (checkpoint "
                  f"delay {delay:.2f} s)" + (", inside a checkpoint write" if tmp else ""),
                  flush=True)
            continue
        if p.returncode != 0:
            print(f"attempt {attempts} failed: {p.stderr.read().strip().splitlines()[-1:]}")
            return 1
        finished_early += 1
        inside = 0
        print(f"attempt {attempts}: the run ended before its kill at {at:.1f} s, after {kills} "
              "kills; a new run from scratch (the kills must come in a row)")
        shutil.rmtree(run)
        kills = 0
    subprocess.run(command(out, "run"), env=env, check=True, capture_output=True)
    diff = same_run(run, out / "ref")
    verdict = "the same run" if not diff else f"DIFFERENT: {', '.join(diff[:5])}"
    print(f"{kills} kills in a row ({inside} inside a checkpoint write; {attempts} attempts in "
          f"all, {finished_early} run(s) that ended first started over), then a last resume: "
          f"{verdict} as the uninterrupted run")
    if not a.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 0 if not diff else 1


if __name__ == "__main__":
    sys.exit(main())
