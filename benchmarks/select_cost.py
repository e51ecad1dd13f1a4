"""What `final_arch=best` costs: the whole-val-half scoring pass against the search epoch.

    python benchmarks/select_cost.py                  # the paper's shape, CPU
    python benchmarks/select_cost.py --space nb201 --objective cls --device cuda

Builds a search at the paper's shape (DARTS space: batch 64, C=16, 8 cells; NAS-Bench-201:
C=16, 5 cells per stage) on the bundled CIFAR-10 sample with the default (fast) settings,
times ``--iters`` search iterations (median) and a scoring pass over a val half of
``--val-images`` images (after one warm-up pass), then projects both to the full protocol's
epoch: 25,000 val images scored, 390 iterations of 64 + 64 images. Prints a Markdown row.
The two are timed in one process, one after the other, so the ratio is side by side.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mimdarts.bench import first_batches, shape_of
from mimdarts.config import SearchConfig, apply_overrides
from mimdarts.search.algorithm import score_val_half
from mimdarts.search.loop import build_searcher

VAL_HALF = 25_000  # CIFAR-10's 50k training images, halved (the authors' split)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="darts")
    ap.add_argument("--objective", default="mim-darts")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iters", type=int, default=3, help="search iterations timed (median)")
    ap.add_argument("--val-images", type=int, default=640, help="val-half images scored")
    args = ap.parse_args()
    batch, C, layers = shape_of(args.space, "paper")
    cfg = apply_overrides(SearchConfig(), {
        "data": {"dataset": "cifar10-sample", "train_images": 2 * args.val_images},
        "model": {"space": args.space, "channels": C, "layers": layers},
        "objective": {"objective": args.objective},
        "optim": {"batch_size": batch, "final_arch": "best"},
        "run": {"device": args.device, "eval_images": 0},
    })
    s = build_searcher(cfg)
    dev = s.device
    x, y, xv, yv = first_batches(s)
    times = []
    for i in range(args.iters + 1):  # the first is a warm-up
        sync(dev)
        t0 = time.perf_counter()
        s.iteration(x, y, xv, yv, cfg.optim.w_lr)
        sync(dev)
        if i:
            times.append(time.perf_counter() - t0)
    it = statistics.median(times)
    score_val_half(s)  # warm-up
    sync(dev)
    t0 = time.perf_counter()
    score_val_half(s)
    sync(dev)
    n = s.val_loader.num_images
    per_image = (time.perf_counter() - t0) / n
    epoch_iters = VAL_HALF // batch
    search_epoch, score_epoch = it * epoch_iters, per_image * VAL_HALF
    print("| space | objective | device | s/iter | search epoch (s) | scoring pass (s) | "
          "scoring / search |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {args.space} | {args.objective} | {dev} | {it:.2f} | {search_epoch:.0f} | "
          f"{score_epoch:.0f} | {score_epoch / search_epoch:.1%} |")
    print(f"(timed: {args.iters} iterations, a scoring pass over {n} val images; projected to "
          f"{epoch_iters} iterations and {VAL_HALF:,} val images per epoch)")


if __name__ == "__main__":
    main()
