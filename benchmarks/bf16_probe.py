"""Why is a bf16 search iteration slow at the DARTS paper shape on a GPU? (docs/speed.md, "GPU")

On an H200 the fp32 CUDA-graph iteration took 0.137 s and the bf16 one did not finish a few
steps in 30 s. This times every iteration (not a median: a slow start and a slow steady state
tell different stories) of the grouped DARTS-space MIM-DARTS search step for fp32 and bf16,
eager and graphed, bf16 eager with cuDNN's autotuner off and on, each case in its own process with a
time limit, then profiles a bf16 eager iteration (the top CUDA kernels by time):

    python benchmarks/bf16_probe.py [--device cuda] [--shape paper] [--steps 6] [--limit 60]
    python benchmarks/bf16_probe.py --device cpu --shape small --steps 2     # a smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def one_case(device: str, shape: str, dtype: str, graphs: str, cudnn_benchmark: bool,
             steps: int, profile: bool) -> None:
    """In this process: the per-iteration seconds of one case, as one JSON line."""
    sys.path.insert(0, SRC)
    import torch

    from mimdarts.bench import case_config, first_batches
    from mimdarts.search.loop import build_searcher

    torch.backends.cudnn.benchmark = cudnn_benchmark
    cfg = case_config("darts", "mim-darts", 1, shape, "fast", device,
                      {"dtype": dtype, "cuda_graphs": graphs if device == "cuda" else "false"})
    s = build_searcher(cfg)
    x, y, xv, yv = first_batches(s)
    sync = torch.cuda.synchronize if s.device.type == "cuda" else (lambda: None)
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        s.iteration(x, y, xv, yv, cfg.optim.w_lr)
        sync()
        times.append(round(time.perf_counter() - t0, 4))
        print(json.dumps({"partial": times}), flush=True)
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as prof
        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if s.device.type == "cuda" else [])
        with prof(activities=acts) as p:
            s.iteration(x, y, xv, yv, cfg.optim.w_lr)
            sync()
        key = "cuda_time_total" if s.device.type == "cuda" else "cpu_time_total"
        print(p.key_averages().table(sort_by=key, row_limit=12), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shape", default="paper", choices=["paper", "small"])
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--limit", type=float, default=60, help="seconds per case")
    ap.add_argument("--case", nargs=4, metavar=("DTYPE", "GRAPHS", "BENCHMARK", "PROFILE"),
                    help=argparse.SUPPRESS)  # (one case, in a child process)
    args = ap.parse_args()
    if args.case:
        dtype, graphs, bench, profile = args.case
        one_case(args.device, args.shape, dtype, graphs, bench == "1", args.steps, profile == "1")
        return
    # fp32 and bf16 graphed (the slow case), bf16 eager with the autotuner off and on, then
    # a profile of bf16 eager
    cases = [("fp32", "true", "0", "0"), ("bf16", "true", "0", "0"), ("bf16", "false", "0", "0"),
             ("bf16", "false", "1", "0"), ("bf16", "false", "0", "1")]
    print("| dtype | cuda graph | cudnn.benchmark | seconds per iteration, in order |")
    print("| --- | --- | --- | --- |")
    for dtype, graphs, bench, profile in cases:
        cmd = [sys.executable, __file__, "--device", args.device, "--shape", args.shape,
               "--steps", str(args.steps), "--case", dtype, graphs, bench, profile]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=args.limit)
            out, note = r.stdout, "" if r.returncode == 0 else f" (exit {r.returncode}: " \
                f"{(r.stderr.strip().splitlines() or ['?'])[-1][:100]})"
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            note = f" (cut at {args.limit:g} s)"
        partial = [json.loads(line)["partial"] for line in out.splitlines() if line.startswith('{"partial"')]
        times = partial[-1] if partial else []
        if profile == "1":
            print("\nprofile of one bf16 eager iteration:" + note)
            print("\n".join(line for line in out.splitlines() if not line.startswith("{")))
        else:
            print(f"| {dtype} | {graphs} | {bench} | {times}{note} |", flush=True)


if __name__ == "__main__":
    main()
