"""CUDA-graph replay against the eager iteration, and against the spread of eager itself.

For each case (space, order; MIM-DARTS, grouped path, the bench's small shape) and each
precision, runs 8 search iterations (the graph is captured again at step 4, as at an epoch
change) five ways on the same weights, batches and mask seeds:

- ``eager``: the reference of this table;
- ``eager again``: the same run repeated (what nondeterministic kernels alone make);
- ``eager reordered``: ``fold_weights`` and ``merge_decoder_convs`` off (the same mathematics,
  other rounding: the distance any change of summation order makes);
- ``graph``: the iteration replayed from a CUDA graph;
- ``graph again``: the graph run repeated.

and prints, per way, the largest relative difference of the step losses from ``eager`` over
the 8 steps, and the relative norm of the difference of α after them. Precisions:
``fp32-strict`` (TF32 off, deterministic cuDNN), ``fp32`` (torch's defaults: cuDNN
convolutions in TF32) and ``bf16`` (autocast, the default on CUDA). If replay differs from
eager by no more than eager differs from itself or from its reordering, the graph computes
the eager iteration and the rest is rounding.

    PYTHONPATH=src python benchmarks/graph_vs_eager.py [--json OUT.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import warnings
from collections.abc import Iterator

import torch

from mimdarts.bench import case_config, step_losses
from mimdarts.config import apply_overrides
from mimdarts.search.loop import build_searcher

STEPS, RECAPTURE_AT, LR = 8, 4, 0.025


@contextlib.contextmanager
def precision(name: str) -> Iterator[str]:
    """The global cuDNN/matmul settings of one precision; yields the run's dtype setting."""
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    if name == "fp32-strict":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield "bf16" if name == "bf16" else "fp32"
    finally:
        (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = saved


def trajectory(space: str, order: int, dtype: str, graphs: bool, reordered: bool = False
               ) -> tuple[list[float], list[torch.Tensor], str]:
    """The 8 step losses and the final α of one run; the third item is a note (capture)."""
    sets = {"run": {"dtype": dtype, "cuda_graphs": graphs, "eval_images": 0},
            "data": {"train_images": 128}}
    if reordered:
        sets["model"] = {"fold_weights": False}
        sets["objective"] = {"merge_decoder_convs": False}
    cfg = apply_overrides(case_config(space, "mim-darts", order, "small", "grouped", "cuda"), sets)
    s = build_searcher(cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        losses = step_losses(s, STEPS, LR, RECAPTURE_AT)
    note = ""
    if s.graphed is not None:
        note = f"failed: {s.graphed.failed}" if s.graphed.failed else f"{s.graphed.captures} captures"
    return losses, [a.detach().float().clone() for a in s.model.alpha_parameters()], note


def compare(ref: tuple, other: tuple) -> tuple[float, float]:
    """(largest relative step-loss difference, relative norm of the α difference)."""
    (lr, ar, _), (lo, ao, _) = ref, other
    dl = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(lo, lr))
    num = sum(float((a - b).norm() ** 2) for a, b in zip(ao, ar)) ** 0.5
    den = sum(float(b.norm() ** 2) for b in ar) ** 0.5
    return dl, num / max(den, 1e-12)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the rows here")
    ap.add_argument("--precisions", nargs="+", default=["fp32-strict", "fp32", "bf16"])
    ap.add_argument("--cases", nargs="+", default=["darts:1", "nb201:1", "nb201:2"])
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("graph_vs_eager.py needs a CUDA GPU")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}; MIM-DARTS, grouped path, "
          f"small shape, {STEPS} steps, graph re-captured at step {RECAPTURE_AT}")
    print("| space | order | precision | way | max rel. loss diff | rel. α diff | note |")
    print("| --- | ---: | --- | --- | ---: | ---: | --- |")
    rows = []
    for case in a.cases:
        space, order = case.split(":")[0], int(case.split(":")[1])
        for prec in a.precisions:
            with precision(prec) as dtype:
                ref = trajectory(space, order, dtype, False)
                ways = {"eager again": trajectory(space, order, dtype, False),
                        "eager reordered": trajectory(space, order, dtype, False, reordered=True),
                        "graph": trajectory(space, order, dtype, True),
                        "graph again": trajectory(space, order, dtype, True)}
            for way, run in ways.items():
                dl, da = compare(ref, run)
                rows.append({"space": space, "order": order, "precision": prec, "way": way,
                             "loss_diff": dl, "alpha_diff": da, "note": run[2],
                             "losses": run[0], "ref_losses": ref[0]})
                print(f"| {space} | {order} | {prec} | {way} | {dl:.2e} | {da:.2e} | {run[2]} |",
                      flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
