"""Probe: does torch.compile of the edge groups speed up a search iteration?

    PYTHONPATH=src python benchmarks/compile_probe.py --shape small --device cpu

Runs one process per mode (eager, then compiled) so neither sees the other's caches or
memory. "compiled" wraps every EdgeGroup's forward in ``torch.compile`` (the unit that repeats
across cells; a whole-supernet graph is far larger to compile). Prints the first iteration
(compile time included), the median of the following ones, and dynamo's graph count. Not a
library switch: on the 2-core CPU this was measured on, compiling made the step slower (see
docs/speed.md), so mimdarts ships no compile setting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def run(mode: str, shape: str, space: str, objective: str, device: str, steps: int) -> dict:
    import torch
    import torch._dynamo

    from mimdarts.bench import case_config, first_batches
    from mimdarts.search.loop import build_searcher
    from mimdarts.spaces.mixing import EdgeGroup

    # DARTS has ~14 distinct group shapes; the default limit would fall back to eager
    torch._dynamo.config.recompile_limit = 64
    s = build_searcher(case_config(space, objective, 1, shape, "grouped", device))
    if mode == "compiled":
        for m in s.model.modules():
            if isinstance(m, EdgeGroup):
                m.forward = torch.compile(m.forward, dynamic=False)
    x, y, x_val, y_val = first_batches(s)

    def step() -> float:
        if s.device.type == "cuda":
            torch.cuda.synchronize(s.device)
        t = time.perf_counter()
        s.bilevel(x, y, x_val, y_val, s.cfg.optim.w_lr)
        if s.device.type == "cuda":
            torch.cuda.synchronize(s.device)
        return time.perf_counter() - t

    first = step()
    step()  # a second warm-up: lazy allocations, autotuning
    times = [step() for _ in range(steps)]
    from torch._dynamo.utils import counters
    return {"first_s": first, "median_s": statistics.median(times),
            "graphs": counters["stats"].get("unique_graphs", 0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="small", choices=["small", "paper"])
    ap.add_argument("--space", default="darts", choices=["darts", "nb201"])
    ap.add_argument("--objective", default="mim-darts")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--mode", help=argparse.SUPPRESS)  # internal: one mode, print JSON
    a = ap.parse_args()
    if a.mode:
        print(json.dumps(run(a.mode, a.shape, a.space, a.objective, a.device, a.steps)))
        return 0
    print(f"shape {a.shape}, {a.space}, {a.objective}, grouped path, {a.device}")
    for mode in ("eager", "compiled"):
        p = subprocess.run([sys.executable, __file__, "--mode", mode, "--shape", a.shape,
                            "--space", a.space, "--objective", a.objective, "--device", a.device,
                            "--steps", str(a.steps)], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{mode}: failed: {p.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"{mode}: first iteration {r['first_s']:.1f} s, then {r['median_s']:.3f} s/iter "
              f"(median of {a.steps}), {r['graphs']} compiled graphs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
