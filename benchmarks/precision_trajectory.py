"""Probe: does bf16 autocast change where a search goes?

    PYTHONPATH=src python benchmarks/precision_trajectory.py --orders 1 2

Runs the same short, fixed-seed NAS-Bench-201 search (``--preset``, default nb201-mim-quick
with one cell per stage and ``--arch-lr`` 3e-3, ten times the paper's, so that α moves within
15 epochs; the benchmark table judges each cell) under three settings:

- ``fp32``: the reference;
- ``fp32-reordered``: fp32 with ``fold_weights`` and ``merge_decoder_convs`` off. The same
  mathematics with other rounding (about 1e-7 relative): the distance that rounding alone
  makes, the yardstick for the next one;
- ``bf16``: bf16 autocast (with the architect's fp32 passes).

and prints, per epoch, the largest |softmax(α) - softmax(α)_fp32| over every edge and op, and
the derived cells and their benchmark CIFAR-10 test accuracy. Not a timing.
"""

from __future__ import annotations

import argparse
import json

from mimdarts.config import resolve_config
from mimdarts.search.loop import search

VARIANTS = {
    "fp32": {"dtype": "fp32"},
    "fp32-reordered": {"dtype": "fp32", "fold_weights": False, "merge_decoder_convs": False},
    "bf16": {"dtype": "bf16"},
}


def trajectory(preset: str, order: int, variant: str, overrides: dict) -> list[dict]:
    cfg = resolve_config(preset, overrides={**overrides, **VARIANTS[variant], "order": order})
    return search(cfg, write=False, progress=False).history


def max_gap(a: dict, b: dict) -> float:
    return max(abs(x - y) for k in a for ra, rb in zip(a[k], b[k]) for x, y in zip(ra, rb))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="nb201-mim-quick")
    ap.add_argument("--orders", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--arch-lr", type=float, default=3e-3)
    ap.add_argument("--layers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default="", help="also write every run's history here")
    args = ap.parse_args()
    overrides = {"arch_lr": args.arch_lr, "layers": args.layers, "seed": args.seed,
                 "eval_images": 0, "snapshot_every": 0}
    out = {}
    for order in args.orders:
        runs = {v: trajectory(args.preset, order, v, overrides) for v in VARIANTS}
        out[order] = runs
        ref = runs["fp32"]
        print(f"\n## order {order} ({args.preset}, layers={args.layers}, arch_lr={args.arch_lr}, "
              f"seed {args.seed})\n")
        print("| epoch | " + " | ".join(f"{v}: max Δ softmax(α)" for v in VARIANTS if v != "fp32")
              + " | max softmax(α) fp32 |")
        print("| ---: |" + " ---: |" * (len(VARIANTS)))
        for e, r in enumerate(ref):
            gaps = [max_gap(runs[v][e]["alpha_weights"], r["alpha_weights"])
                    for v in VARIANTS if v != "fp32"]
            top = max(x for rows in r["alpha_weights"].values() for row in rows for x in row)
            print(f"| {e + 1} | " + " | ".join(f"{g:.4f}" for g in gaps) + f" | {top:.3f} |")
        print()
        for v, h in runs.items():
            last = h[-1]
            print(f"- {v}: `{last['genotype']}` CIFAR-10 test "
                  f"{last.get('nb201_cifar10_test', float('nan')):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
