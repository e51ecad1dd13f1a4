"""How many tensor ops one search iteration dispatches, per path: a device-free measure of
the eager path's host cost.

Each dispatched ATen op is a kernel launch on a GPU (a few are views, which launch nothing),
and launching them is what bounds the eager search step there (docs/speed.md, "GPU"); this
counts them on any device with a ``TorchDispatchMode``, by op name, after one warm-up
iteration (which creates the optimizers' state). The count does not depend on the batch or
the width, only on the supernet's structure and the path, so a small shape is enough:

    python benchmarks/op_count.py [--spaces darts nb201] [--objectives cls mim-darts] \
        [--paths reference per-edge grouped] [--top 8]

The ops are those a GPU would launch: the supernet's BatchNorms take torch's fused kernel,
the dil_convs torch's dilated conv, and the optimizers their foreach forms, as torch does
for CUDA tensors. ``--cpu-bn`` counts the CPU's path instead: its exact BatchNorm sums
(``spaces/batchnorm.py``, with the pointwise convs' and pools' outputs computed again in
their backward), the dil_convs' undilated forms and the max pools' maxima found again
(``spaces/ops.py``) and a loop over the weights in SGD dispatch about twice as many ops in all.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from mimdarts.bench import PATHS, case_config, first_batches  # noqa: E402
from mimdarts.search.loop import build_searcher  # noqa: E402


class OpCounter(TorchDispatchMode):
    """Counts every ATen op dispatched while it is active, by overload packet name."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        self.counts[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def count_iteration(space: str, objective: str, order: int, path: str,
                    gpu_like: bool = True) -> collections.Counter[str]:
    """The ops of one iteration (after a warm-up one) of a small-shape case on the CPU."""
    torch.set_num_threads(1)
    cfg = case_config(space, objective, order, "small", path, "cpu",
                      {"batch_size": 4, "train_images": 8})
    s = build_searcher(cfg)
    if gpu_like:  # torch's optimizers run their foreach forms on CUDA tensors by default
        for opt in (s.bilevel.w_optimizer, s.bilevel.alpha_optimizer):
            for group in opt.param_groups:
                group["foreach"] = True
    x, y, xv, yv = first_batches(s)
    s.iteration(x, y, xv, yv, cfg.optim.w_lr)  # warm-up: the optimizers' state
    with OpCounter() as counter:
        s.iteration(x, y, xv, yv, cfg.optim.w_lr)
    return counter.counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", nargs="+", default=["darts", "nb201"])
    ap.add_argument("--objectives", nargs="+", default=["cls", "mim-darts"])
    ap.add_argument("--orders", nargs="+", type=int, default=[1])
    ap.add_argument("--paths", nargs="+", choices=list(PATHS), default=["reference", "per-edge", "grouped"])
    ap.add_argument("--top", type=int, default=8, help="the most frequent ops to list per row")
    ap.add_argument("--cpu-bn", action="store_true",
                    help="count the CPU's path: exact BatchNorm sums, undilated dil_convs, "
                         "recomputed tensors, optimizers looping over weights (default: fused "
                         "BN, dilated convs and foreach optimizers, as on a GPU)")
    args = ap.parse_args()
    if not args.cpu_bn:
        import mimdarts.spaces.batchnorm as bn
        from mimdarts.spaces.ops import DilatedConv2d, MaxPool2d
        bn._accurate_path = lambda x, training: False  # the branch a CUDA tensor takes
        # (the undilated forms and the max pools' recomputed maxima are the CPU's only)
        DilatedConv2d.devices = MaxPool2d.devices = ()
    print("| space | objective | order | path | ops per iteration | most frequent |")
    print("| --- | --- | ---: | --- | ---: | --- |")
    for space in args.spaces:
        for objective in args.objectives:
            for order in args.orders:
                for path in args.paths:
                    c = count_iteration(space, objective, order, path, not args.cpu_bn)
                    top = ", ".join(f"{k} {v}" for k, v in c.most_common(args.top))
                    print(f"| {space} | {objective} | {order} | {path} | {sum(c.values())} | {top} |",
                          flush=True)


if __name__ == "__main__":
    main()
