"""Probe: how far is the α gradient under bf16 autocast from the fp32 one?

    PYTHONPATH=src python benchmarks/precision_probe.py              # DARTS and NB201, cls and mim-darts

For each space and objective it builds the offline preset's supernet (DARTS: `quick`, C=8,
5 cells; NB201: `nb201-quick`, C=8, 2 cells per stage) on the bundled CIFAR-10 sample, trains
it for ``--warm`` fp32 iterations (so the weights are not at their initialisation), then takes
one w batch and one α batch and computes, on these same weights and masks:

- the fp32 α gradient of each order (the reference);
- under bf16 autocast, with each choice of which second-order passes stay in fp32
  (``--variants``; see mimdarts.search.architect.PASSES), the α gradient, its cosine with the
  reference, and the cosine of the Hessian-vector part (the finite-difference term) alone.

It also prints the share of conv/linear weights whose bf16 value is the same at w + εv and
w - εv, and before and after the virtual step: the reason the perturbed passes need fp32.
Not a timing: bf16 on this CPU is no guide to GPU speed.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from mimdarts.config import resolve_config
from mimdarts.search.architect import Architect
from mimdarts.search.loop import build_searcher

PRESETS = {"darts": "quick", "nb201": "nb201-quick"}
# Which second-order passes run in fp32 under a bf16 run: none (plain autocast), the
# perturbed ones (the library's choice), val + perturbed, all three.
VARIANTS = {
    "bf16": frozenset(),
    "fp32-perturbed": frozenset({"perturbed"}),
    "fp32-val+perturbed": frozenset({"val", "perturbed"}),
    "fp32-all": frozenset({"virtual", "val", "perturbed"}),
}


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    x = torch.cat([t.flatten() for t in a]).double()
    y = torch.cat([t.flatten() for t in b]).double()
    return float(F.cosine_similarity(x, y, dim=0))


def second_order_parts(arch: Architect, train, val, w_lr: float
                       ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(∇α L_val(w'), H v) as the architect computes them; weights and buffers restored."""
    with arch.weights_restored() as saved_w:
        arch._virtual_step(train, w_lr)
        d_alpha, v, _ = arch._val_grads(val)
        hv = arch._hessian_vector(train, saved_w, v)
    return d_alpha, hv


def same_bf16(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    """Share of the entries of 4-d and 2-d tensors (conv and linear weights) whose bf16 value
    is the same in ``a`` and ``b``."""
    same = total = 0
    for x, y in zip(a, b):
        if x.dim() in (2, 4):
            same += int((x.bfloat16() == y.bfloat16()).sum())
            total += x.numel()
    return same / max(total, 1)


def probe(space: str, objective: str, warm: int, variants: list[str], seed: int) -> list[dict]:
    cfg = resolve_config(PRESETS[space], overrides={"objective": objective, "dtype": "fp32",
                                                    "seed": seed, "eval_images": 0})
    s = build_searcher(cfg)
    lr = cfg.optim.w_lr
    batches = iter(s.train_loader)
    for _ in range(warm):
        x, y = next(batches)
        x_val, y_val = next(s.val_stream)
        s.bilevel(x, y, x_val, y_val, lr)
    x, y = next(batches)
    x_val, y_val = next(s.val_stream)
    train, val = s.objective.prepare(x, y), s.objective.prepare(x_val, y_val)
    arch = s.architect
    rows = []

    arch.amp_dtype, arch.order = None, 1
    ref1, _ = arch.alpha_grads(train, val, lr)
    arch.order = 2
    ref2, _ = arch.alpha_grads(train, val, lr)
    ref_val, ref_hv = second_order_parts(arch, train, val, lr)

    # why: how many weights does bf16 see move?
    w = [p.detach().clone() for p in arch.weights]
    arch._virtual_step(train, lr)
    w_prime = [p.detach().clone() for p in arch.weights]
    _, v, _ = arch._val_grads(val)
    with torch.no_grad():
        for p, q in zip(arch.weights, w):
            p.copy_(q)
    eps = arch.unrolled_eps / torch.linalg.vector_norm(torch.stack([t.norm() for t in v]))
    plus = [a + eps * b for a, b in zip(w, v)]
    minus = [a - eps * b for a, b in zip(w, v)]
    print(f"# {space} {objective}: bf16-equal at w+εv and w-εv: {same_bf16(plus, minus):.1%}; "
          f"bf16 unchanged by the virtual step: {same_bf16(w, w_prime):.1%}", flush=True)

    arch.amp_dtype = torch.bfloat16
    arch.order = 1
    g1, _ = arch.alpha_grads(train, val, lr)
    rows.append({"space": space, "objective": objective, "order": 1, "variant": "bf16",
                 "cos": cosine(g1, ref1), "cos_hv": float("nan")})
    arch.order = 2
    for name in variants:
        arch.fp32_passes = VARIANTS[name]
        g2, _ = arch.alpha_grads(train, val, lr)
        _, hv = second_order_parts(arch, train, val, lr)
        rows.append({"space": space, "objective": objective, "order": 2, "variant": name,
                     "cos": cosine(g2, ref2), "cos_hv": cosine(hv, ref_hv)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", nargs="+", default=["darts", "nb201"], choices=sorted(PRESETS))
    ap.add_argument("--objectives", nargs="+", default=["cls", "mim-darts"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--warm", type=int, default=10, help="fp32 search iterations before probing")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = ap.parse_args()
    print("| space | objective | seed | order | passes in fp32 | cos(dα) | cos(Hv part) |")
    print("| --- | --- | ---: | ---: | --- | ---: | ---: |")
    for space in args.spaces:
        for objective in args.objectives:
            for seed in args.seeds:
                for r in probe(space, objective, args.warm, args.variants, seed):
                    passes = ", ".join(sorted(VARIANTS[r["variant"]])) or "none"
                    if r["order"] == 1:
                        passes = "none"
                    print(f"| {space} | {objective} | {seed} | {r['order']} | {passes} | "
                          f"{r['cos']:.4f} | {r['cos_hv']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
