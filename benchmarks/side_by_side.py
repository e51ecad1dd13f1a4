"""mimdarts beside the original DARTS code (quark0/darts) on the same device, in one run.

Times one search iteration (α step + w step) at the papers' shapes (DARTS space: batch 64,
C=16, 8 cells; NAS-Bench-201: batch 64, C=16, 5 cells per stage), each case in its own
subprocess (its own peak memory), one after the other:

- ``quark0``: the original code, through ``time_quark0.py`` of its anchor folder (cross-entropy
  only, DARTS space only; skipped with a note when the folder is absent);
- ``reference``: mimdarts' straightforward path (fp32, NCHW, every op of every edge);
- ``fast-fp32``: every exact switch (grouped edges, channels_last, folded BN weights, CUDA
  graphs on CUDA), fp32;
- ``default``: what a run gets with nothing set (bf16 and CUDA graphs on CUDA; on a CPU
  fp32 and the layout the `auto` rule picks).

It prints s/iter, peak memory (max allocated on CUDA, peak RSS on a CPU), the ratios to
quark0 (its cross-entropy iteration of the same order; MIM-DARTS rows do more work per
iteration than quark0 does) and to mimdarts' reference, and the projected wall time of the
full protocol's search steps (25,000 w images per epoch; DARTS 50 epochs, NAS-Bench-201 100).

    PYTHONPATH=src python benchmarks/side_by_side.py --device cuda
    PYTHONPATH=src python benchmarks/side_by_side.py --device cpu --rows cpu
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
QUARK0 = ROOT.parent / "shared" / "anchors" / "quark0-darts" / "time_quark0.py"

# (space, objective, order, path) per row set; quark0 rows are cross-entropy, DARTS space
ROWS = {
    "gpu": [("darts", "cls", 1, p) for p in ("quark0", "reference", "fast-fp32", "default")]
    + [("darts", "mim-darts", 1, p) for p in ("reference", "fast-fp32", "default")]
    + [("darts", "cls", 2, p) for p in ("quark0", "reference", "default")]
    + [("darts", "mim-darts", 2, p) for p in ("reference", "default")]
    + [("nb201", "mim-darts", 1, p) for p in ("reference", "fast-fp32", "default")]
    + [("nb201", "cls", 1, p) for p in ("reference", "default")],
    # the rows a time-limited GPU session cut last (second order, NAS-Bench-201)
    "gpu-rest": [("darts", "cls", 2, p) for p in ("quark0", "default")]
    + [("darts", "mim-darts", 2, "default")]
    + [("nb201", "mim-darts", 1, p) for p in ("reference", "fast-fp32", "default")]
    + [("nb201", "cls", 1, "default")],
    # on a CPU a paper-shape iteration takes 8-25 s: first order only
    "cpu": [("darts", "cls", 1, p) for p in ("quark0", "reference", "default")]
    + [("darts", "mim-darts", 1, p) for p in ("reference", "default")],
}
FULL = {"darts": 50, "nb201": 100}  # the full protocol's epochs (25,000 w images each)


def quark0(script: Path, device: str, order: int, steps: int, warmup: int, threads: int,
           timeout: float, shape: str = "paper") -> dict[str, Any]:
    cmd = [sys.executable, str(script), "--device", device, "--order", str(order),
           "--steps", str(steps), "--warmup", str(warmup)]
    if shape == "small":  # the bench's small DARTS shape
        cmd += ["--batch", "16", "--channels", "8", "--layers", "5"]
    if device == "cpu" and threads:
        cmd += ["--threads", str(threads)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    m = re.search(r"([\d.]+) s/iter .* peak (\d+) MB", p.stdout)
    if p.returncode != 0 or not m:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1][:100]}
    return {"s_per_iter": float(m.group(1)), "peak_mb": float(m.group(2))}


def mimdarts_case(space: str, objective: str, order: int, path: str, device: str, steps: int,
                  warmup: int, threads: int, timeout: float, shape: str = "paper") -> dict[str, Any]:
    from mimdarts.bench import run_case

    sets = {"threads": threads} if device == "cpu" and threads else {}
    return run_case(space, objective, order, path, shape, device, steps, warmup, sets, timeout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--rows", choices=list(ROWS), help="row set (default: the device's)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=4, help="(CUDA graphs need 4: 3 eager + capture)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads per case (0: torch's)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per case")
    ap.add_argument("--quark0", type=Path, default=QUARK0, help="time_quark0.py of the anchor")
    ap.add_argument("--shape", choices=["paper", "small"], default="paper",
                    help="small: a smoke test of the script (batch 16, C=8, 5 cells)")
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args()
    import torch

    dev = (torch.cuda.get_device_name() if a.device == "cuda"
           else f"CPU x{a.threads or torch.get_num_threads()}")
    print(f"device: {dev}; torch {torch.__version__}; {a.shape} shapes; median of {a.steps} after "
          f"{a.warmup} warm-up")
    if not a.quark0.is_file():
        print(f"note: {a.quark0} not found: quark0 rows skipped")
    print("| space | objective | order | path | s/iter | peak MB | vs quark0 (cls) | vs reference "
          "| full search |")
    print("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    done: dict[tuple, dict[str, Any]] = {}
    rows = []
    for space, objective, order, path in ROWS[a.rows or ("gpu" if a.device == "cuda" else "cpu")]:
        if path == "quark0":
            if not a.quark0.is_file():
                continue
            r = quark0(a.quark0, a.device, order, a.steps, a.warmup, a.threads, a.timeout, a.shape)
        else:
            r = mimdarts_case(space, objective, order, path, a.device, a.steps, a.warmup,
                              a.threads, a.timeout, a.shape)
        done[(space, objective, order, path)] = r
        rows.append({"space": space, "objective": objective, "order": order, "path": path, **r})
        head = f"| {space} | {objective} | {order} | {path} |"
        if "error" in r:
            print(f"{head} error: {r['error']} | | | | |", flush=True)
            continue
        q = done.get(("darts", "cls", order, "quark0"), {})
        ref = done.get((space, objective, order, "reference"), {})
        vs_q = f"{q['s_per_iter'] / r['s_per_iter']:.2f}x" if "s_per_iter" in q and space == "darts" else ""
        vs_q += f", {r['peak_mb'] / q['peak_mb']:.2f}x mem" if vs_q else ""
        vs_r = f"{ref['s_per_iter'] / r['s_per_iter']:.2f}x" if "s_per_iter" in ref else ""
        seconds = r["s_per_iter"] * (25_000 // 64) * FULL[space]
        wall = f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
        print(f"{head} {r['s_per_iter']:.4f} | {r['peak_mb']:.0f} | {vs_q} | {vs_r} | {wall} |"
              + (f" {r['note']}" if "note" in r else ""), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
