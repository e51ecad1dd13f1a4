"""Search-step benchmark: time one full iteration (α step + w step), fast vs reference path.

Each case runs in its own subprocess so that its peak memory (RSS on CPU, max allocated on
GPU) is its own, and the cases of one invocation run side by side on the same machine:

    python -m mimdarts.bench --shape paper --objectives cls mim-darts --orders 1

The reference path is the straightforward implementation (fp32, NCHW, every op including
`none` computed); the fast path uses this library's switches (skip `none`, channels_last,
bf16 autocast on GPU). Figures are medians over ``--steps`` iterations after ``--warmup``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import torch
import yaml

from .config import SearchConfig, apply_overrides
from .errors import ConfigError
from .runtime import resolve_device
from .spaces import SPACES
from .spaces.facts import space_facts

SHAPE_NAMES = ("paper", "small")  # a space's (batch, C, cells) at each: spaces/facts.py


def shape_of(space: str, shape: str) -> tuple[int, int, int]:
    """(batch, C, cells) of ``space`` at ``shape`` (DARTS "paper": batch 64, C=16, 8 cells)."""
    return space_facts(space).bench_shapes[shape]


def full_epochs(space: str) -> int:
    """The full protocol's epochs (25,000 w images each, half of CIFAR's 50k): DARTS 50,
    NAS-Bench-201 100 (the β-DARTS script the paper follows)."""
    return space_facts(space).full_epochs
# The per-edge switches, on (see docs/speed.md): skip `none`, one ReLU (and pool) per source
# node, weights folded into BN, the decoder's first two convs merged, channels_last, dtype auto
# (fp32 for a search, also on CUDA: docs/speed.md, "GPU")
_ON = {"skip_none": True, "share_relu": True, "fold_weights": True, "merge_decoder_convs": True,
       "channels_last": True, "dtype": "auto"}
PATHS = {
    # reference: fp32, NCHW, every op (`none` too) computed, one mixed op per edge, a ReLU
    # per op, each op's output times its weight as a separate product, the decoder layer by
    # layer
    "reference": {**{k: False for k in _ON}, "dtype": "fp32", "group_edges": "false",
                  "cuda_graphs": "false"},
    "per-edge": {**_ON, "group_edges": "false", "cuda_graphs": "false"},
    # grouped: per-edge + the edges leaving a node run as one op
    "grouped": {**_ON, "group_edges": "true", "cuda_graphs": "false"},
    # fast: grouped + the iteration replayed as a CUDA graph (on CUDA; = grouped on CPU)
    "fast": {**_ON, "group_edges": "true", "cuda_graphs": "true"},
    # fast-fp32 / fast-bf16: fast with the dtype named, whatever `auto` resolves to
    "fast-fp32": {**_ON, "dtype": "fp32", "group_edges": "true", "cuda_graphs": "true"},
    "fast-bf16": {**_ON, "dtype": "bf16", "group_edges": "true", "cuda_graphs": "true"},
    # default: what a run gets with no setting given (every `auto` resolved for the device)
    "default": {**_ON, "group_edges": "auto", "cuda_graphs": "auto"},
}


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["fold_weights=false", ...]`` -> ``{"fold_weights": False}`` (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set takes KEY=VALUE (a config field, e.g. fold_weights=false), "
                              f"got {item!r}")
        out[key] = yaml.safe_load(raw)
    return out


def case_config(space: str, objective: str, order: int, shape: str, path: str,
                device: str, sets: dict[str, Any] | None = None) -> SearchConfig:
    """The config of one case; ``sets``: config fields to override on top of the path."""
    batch, C, layers = shape_of(space, shape)
    p = PATHS[path]
    cfg = apply_overrides(SearchConfig(), {
        "data": {"dataset": "cifar10-sample", "train_images": 2 * batch},
        "model": {"space": space, "channels": C, "layers": layers, "skip_none": p["skip_none"],
                  "share_relu": p["share_relu"], "group_edges": p["group_edges"],
                  "fold_weights": p["fold_weights"]},
        "objective": {"objective": objective, "merge_decoder_convs": p["merge_decoder_convs"]},
        "optim": {"batch_size": batch, "order": order},
        "run": {"device": device, "channels_last": p["channels_last"], "dtype": p["dtype"],
                # on a CPU the fast path is the grouped one (graphs are CUDA's)
                "cuda_graphs": p["cuda_graphs"] if resolve_device(device).type == "cuda"
                else "false",
                "eval_images": 0},
    })
    return apply_overrides(cfg, sets) if sets else cfg


def first_batches(s: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x, y, x_val, y_val)``: the first train and val batches of searcher ``s``, the
    batches a benchmark times its iterations on."""
    x, y = next(iter(s.train_loader))
    x_val, y_val = next(iter(s.val_loader))
    return x, y, x_val, y_val


def time_search_step(cfg: SearchConfig, steps: int, warmup: int) -> dict[str, Any]:
    """Median seconds per search iteration, images/s (both batches) and peak memory."""
    from .search.loop import build_searcher

    s = build_searcher(cfg)
    dev = s.device
    x, y, x_val, y_val = first_batches(s)
    times = []
    if s.graphed is not None:  # its eager warm-up and the capture happen in our warm-up
        warmup = max(warmup, s.graphed.warmup + 1)
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        s.iteration(x, y, x_val, y_val, s.cfg.optim.w_lr)  # through the CUDA graph if any
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    out = {"s_per_iter": med, "images_per_s": 2 * cfg.optim.batch_size / med}
    if s.graphed is not None and s.graphed.failed:
        out["note"] = f"graph capture failed, eager: {s.graphed.failed}"[:120]
    if dev.type == "cuda":
        out["peak_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    else:  # ru_maxrss is in KiB on Linux
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def run_case(space: str, objective: str, order: int, path: str, shape: str, device: str,
             steps: int, warmup: int, sets: dict[str, Any] | None = None,
             timeout: float | None = None) -> dict[str, Any]:
    """:func:`time_search_step` of one case in a subprocess of its own (its own peak memory);
    ``{"error": last line}`` when it fails or outlasts ``timeout`` seconds."""
    cmd = [sys.executable, "-m", "mimdarts.bench", "--one", json.dumps(
        {"space": space, "objective": objective, "order": order, "path": path, "shape": shape,
         "device": device, "steps": steps, "warmup": warmup, "sets": sets or {}})]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "failed"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def step_losses(s: Any, steps: int, lr: float, recapture_every: int) -> list[float]:
    """The losses of ``steps`` search iterations of searcher ``s`` on fresh batches (the
    train half restarted when it ends), through its CUDA graph if it has one, which is
    captured again every ``recapture_every`` steps (as at an epoch change)."""
    it_w, it_a = iter(s.train_loader), s.val_loader.forever()
    losses = []
    for step in range(steps):
        try:
            x, y = next(it_w)
        except StopIteration:
            it_w = iter(s.train_loader)
            x, y = next(it_w)
        x_val, y_val = next(it_a)
        if s.graphed is not None:
            res, _ = s.graphed(x, y, x_val, y_val, lr, None, key=step // recapture_every)
        else:
            res, _ = s.bilevel(x, y, x_val, y_val, lr)
        losses.append(float(res.loss))
    return losses


def _run_case(args: argparse.Namespace, space: str, objective: str, order: int, path: str
              ) -> dict[str, Any]:
    return run_case(space, objective, order, path, args.shape, args.device, args.steps,
                    args.warmup, args.sets)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m mimdarts.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=SHAPE_NAMES, default="small")
    ap.add_argument("--spaces", nargs="+", choices=list(SPACES), default=["darts"])
    ap.add_argument("--objectives", nargs="+", default=["cls", "mim-darts"])
    ap.add_argument("--orders", nargs="+", type=int, default=[1])
    ap.add_argument("--paths", nargs="+", choices=list(PATHS), default=["reference", "fast"],
                    help="reference, per-edge, grouped, fast (= grouped + CUDA graphs on CUDA)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--set", dest="set_items", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field in every case, e.g. --set fold_weights=false "
                         "(repeatable): one switch measured against its own path")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    return ap


def _cases(args: argparse.Namespace) -> list[tuple[str, str, int]]:
    """(space, objective, order) of every table block, each case's config checked first."""
    from .search.objective import check_objective

    args.sets = parse_sets(args.set_items)
    out = []
    for space in args.spaces:
        for objective in args.objectives:
            check_objective(objective)
            for order in args.orders:
                for path in args.paths:
                    case_config(space, objective, order, args.shape, path, "cpu", args.sets)
                out.append((space, objective, order))
    return out


def _row(args: argparse.Namespace, space: str, objective: str, order: int, path: str,
         r: dict[str, Any], ref: dict[str, Any]) -> str:
    # the case's own batch, C and cells: --set may override the shape's
    m = case_config(space, objective, order, args.shape, path, "cpu", args.sets)
    batch = m.optim.batch_size
    head = f"| {space} | {objective} | {order} | {batch}, {m.model.channels}, {m.model.layers} | {path} |"
    if "error" in r:
        return f"{head} error: {r['error'][:80]} | | | | |"
    ratio = f"{ref['s_per_iter'] / r['s_per_iter']:.2f}x" if "s_per_iter" in ref else ""
    # projected wall time of the full protocol at this shape (search steps only)
    hours = r["s_per_iter"] * (25_000 // batch) * full_epochs(space) / 3600
    return (f"{head} {r['s_per_iter']:.3f} | {r['images_per_s']:.1f} | {r['peak_mb']:.0f} | "
            f"{ratio} | {hours:.2f} |" + (f" {r['note']}" if "note" in r else ""))


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.one:
        c = json.loads(args.one)
        cfg = case_config(c["space"], c["objective"], c["order"], c["shape"], c["path"], c["device"],
                          c["sets"])
        print(json.dumps(time_search_step(cfg, c["steps"], c["warmup"])))
        return 0
    try:  # every case's config, checked before anything runs
        cases = _cases(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dev = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    if dev == "auto":
        dev = "cpu"
    name = torch.cuda.get_device_name() if dev.startswith("cuda") else f"CPU x{torch.get_num_threads()}"
    print(f"device: {name}; torch {torch.__version__}; shape {args.shape}; "
          f"median of {args.steps} after {args.warmup} warm-up"
          + (f"; set {' '.join(args.set_items)}" if args.set_items else ""))
    print("| space | objective | order | batch, C, cells | path | s/iter | images/s | peak MB | speed-up "
          "| full search (h) |")
    print("| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for space, objective, order in cases:
        results: dict[str, dict[str, Any]] = {}
        for path in args.paths:
            results[path] = _run_case(args, space, objective, order, path)
            print(_row(args, space, objective, order, path, results[path],
                       results.get("reference", {})), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
