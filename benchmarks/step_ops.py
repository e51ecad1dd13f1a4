"""Where one search iteration's time goes, per aten op, timed inside the step.

A ``TorchDispatchMode`` times every aten call of one ``search_iteration`` (after warm-ups)
with ``perf_counter``: on a CPU each call runs to completion before it returns, so the sum is
the ops' own time (the rest is Python and autograd bookkeeping). Prints the ops by total time
and the convolution backward calls by filter shape, dilation, stride and which gradients
were asked (input, weight, bias). ``torch.profiler`` with ``record_shapes`` inflated small
ops' times several-fold here; this does not. CPU only (a GPU returns before its kernels end):

    python benchmarks/step_ops.py [--objective cls] [--path default] [--top 16]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from mimdarts.bench import case_config, first_batches  # noqa: E402
from mimdarts.search.loop import build_searcher  # noqa: E402


class OpTimer(TorchDispatchMode):
    """Seconds and calls per op name, and per convolution-backward kind."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.calls: collections.Counter = collections.Counter()
        self.conv_bwd: dict[tuple, list[float]] = collections.defaultdict(lambda: [0.0, 0])

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        t0 = time.perf_counter()
        out = func(*args, **(kwargs or {}))
        dt = time.perf_counter() - t0
        name = func.overloadpacket.__name__
        self.seconds[name] += dt
        self.calls[name] += 1
        if name == "convolution_backward":  # (grad, input, weight, bias sizes, stride, pad, dil, ..., mask)
            w = args[2]
            key = (f"{w.shape[0]}x{w.shape[1]}x{w.shape[2]}x{w.shape[3]}", f"dilation {args[6][0]}",
                   f"stride {args[4][0]}", "grads " + "".join("xwb"[i] for i, m in enumerate(args[-1]) if m))
            self.conv_bwd[key][0] += dt
            self.conv_bwd[key][1] += 1
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="darts")
    ap.add_argument("--objective", default="cls")
    ap.add_argument("--order", type=int, default=1)
    ap.add_argument("--shape", default="paper", choices=["paper", "small"])
    ap.add_argument("--path", default="default")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--top", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = case_config(args.space, args.objective, args.order, args.shape, args.path, "cpu", {})
    s = build_searcher(cfg)
    x, y, xv, yv = first_batches(s)
    for _ in range(2):
        s.iteration(x, y, xv, yv, cfg.optim.w_lr)
    timer = OpTimer()
    t0 = time.perf_counter()
    with timer:
        s.iteration(x, y, xv, yv, cfg.optim.w_lr)
    total = time.perf_counter() - t0
    print(f"{args.space} {args.objective} order {args.order}, {args.shape} shape, {args.path} path, "
          f"{args.threads} threads: one iteration {total:.2f} s, {sum(timer.seconds.values()):.2f} s in ops")
    print("\n| op | ms | calls |\n| --- | ---: | ---: |")
    for name, sec in sorted(timer.seconds.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"| {name} | {sec * 1e3:.0f} | {timer.calls[name]} |")
    print("\n| convolution backward: filter | dilation | stride | gradients | ms | calls | ms per call |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: |")
    for key, (sec, n) in sorted(timer.conv_bwd.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"| {' | '.join(key)} | {sec * 1e3:.0f} | {n} | {sec * 1e3 / n:.2f} |")


if __name__ == "__main__":
    main()
