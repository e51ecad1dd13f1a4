"""The dil_convs' depthwise convs (dilation 2): torch's conv against mimdarts'
``DilatedConv2d`` (a reduction cell's, stride 2: the same filter at stride 1 on every other
row and column), and against an undilated depthwise conv of the same kernel and stride.

Forward + backward (input and weight gradients) of one depthwise conv at the DARTS paper
shape's cells (batch 64; stride 2: the reduction cells' inputs, 32 channels at 32x32 and 64
at 16x16; stride 1: the normal cells', where ``DilatedConv2d`` is torch's call), 3x3 and
5x5, channels_last and NCHW, median of ``--repeat`` after two warm-ups; and the largest
relative difference of the output and both gradients between the first two. On a GPU,
``--dtype bf16`` asks whether cuDNN's bf16 dilated kernels are behind the slow bf16 search
step (docs/speed.md, "GPU"):

    python benchmarks/dilated_conv.py [--threads 2] [--repeat 10] [--device cpu] [--dtype fp32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from mimdarts.spaces.ops import DilatedConv2d  # noqa: E402


def fwd_bwd(conv: nn.Module, x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, ...]:
    y = conv(x)
    gx, gw = torch.autograd.grad(y, (x, conv.weight), g)
    return y.detach(), gx, gw


def timed(conv: nn.Module, x: torch.Tensor, g: torch.Tensor, repeat: int, sync) -> float:
    """Median milliseconds of :func:`fwd_bwd` after two warm-ups."""
    fwd_bwd(conv, x, g)
    fwd_bwd(conv, x, g)
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fwd_bwd(conv, x, g)
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"],
                    help="bf16: modules and tensors in bfloat16 (what autocast hands a GPU's convs)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, {dev.type}, {args.dtype}, {args.threads} threads, "
          f"median of {args.repeat}")
    print("\n| stride | channels, input | kernel | layout | torch's conv (ms) | DilatedConv2d (ms) "
          "| ratio | undilated, same k and stride (ms) | max rel. diff (y, dx, dw) |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
    # stride 2: the reduction cells' dil_convs (their undilated form); stride 1: the normal
    # cells' (DilatedConv2d runs torch's call there), timed for the dilated kernels' cost
    for stride, C, hw in [(2, 32, 32), (2, 64, 16), (1, 16, 32), (1, 32, 16), (1, 64, 8)]:
        for k in (3, 5):
            plain = nn.Conv2d(C, C, k, stride, k - 1, dilation=2, groups=C, bias=False)
            ours = DilatedConv2d(C, C, k, stride, k - 1, dilation=2, groups=C, bias=False)
            ours.load_state_dict(plain.state_dict())
            ours.devices = (dev.type,)  # the undilated form on this device too (a GPU)
            undilated = nn.Conv2d(C, C, k, stride, k // 2, groups=C, bias=False)
            plain, ours, undilated = (m.to(dev, dtype) for m in (plain, ours, undilated))
            for layout in (torch.channels_last, torch.contiguous_format):
                gen = torch.Generator().manual_seed(0)
                x = torch.randn(64, C, hw, hw, generator=gen).to(dev, dtype).contiguous(
                    memory_format=layout).requires_grad_()
                g = torch.randn(64, C, hw // stride, hw // stride, generator=gen).to(
                    dev, dtype).contiguous(memory_format=layout)
                a, b = fwd_bwd(plain, x, g), fwd_bwd(ours, x, g)
                diff = ", ".join(f"{float((u - v).abs().max() / v.abs().max()):.0e}"
                                 for u, v in zip(a, b))
                t_plain = timed(plain, x, g, args.repeat, sync)
                t_ours = timed(ours, x, g, args.repeat, sync)
                t_undilated = timed(undilated, x, g, args.repeat, sync)
                name = "channels_last" if layout is torch.channels_last else "NCHW"
                print(f"| {stride} | {C}, {hw}x{hw} | {k}x{k} | {name} | {t_plain:.2f} "
                      f"| {t_ours:.2f} | {t_plain / t_ours:.1f}x | {t_undilated:.2f} | {diff} |",
                      flush=True)


if __name__ == "__main__":
    main()
