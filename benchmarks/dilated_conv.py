"""A reduction cell's dil_conv (depthwise, stride 2, dilation 2): torch's conv against
mimdarts' ``DilatedConv2d`` (the same filter at stride 1 on every other row and column).

Forward + backward (input and weight gradients) of one depthwise conv at the DARTS paper
shape's two reduction cells (batch 64: 32 channels at 32x32, 64 at 16x16), 3x3 and 5x5, in
channels_last and NCHW, median of ``--repeat`` after two warm-ups; and the largest relative
difference of the output and of both gradients between the two (float32):

    python benchmarks/dilated_conv.py [--threads 2] [--repeat 10] [--device cpu]
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    print(f"torch {torch.__version__}, {dev.type}, {args.threads} threads, median of {args.repeat}")
    print("\n| channels, input | kernel | layout | torch's conv (ms) | DilatedConv2d (ms) | ratio "
          "| max rel. diff (y, dx, dw) |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for C, hw in [(32, 32), (64, 16)]:
        for k in (3, 5):
            plain = nn.Conv2d(C, C, k, 2, k - 1, dilation=2, groups=C, bias=False).to(dev)
            ours = DilatedConv2d(C, C, k, 2, k - 1, dilation=2, groups=C, bias=False).to(dev)
            ours.load_state_dict(plain.state_dict())
            ours.devices = (dev.type,)  # the stride-1 form on this device too (a GPU)
            for layout in (torch.channels_last, torch.contiguous_format):
                gen = torch.Generator().manual_seed(0)
                x = torch.randn(64, C, hw, hw, generator=gen).to(dev).contiguous(
                    memory_format=layout).requires_grad_()
                g = torch.randn(64, C, hw // 2, hw // 2, generator=gen).to(dev).contiguous(
                    memory_format=layout)
                a, b = fwd_bwd(plain, x, g), fwd_bwd(ours, x, g)
                diff = ", ".join(f"{float((u - v).abs().max() / v.abs().max()):.0e}"
                                 for u, v in zip(a, b))
                t_plain = timed(plain, x, g, args.repeat, sync)
                t_ours = timed(ours, x, g, args.repeat, sync)
                name = "channels_last" if layout is torch.channels_last else "NCHW"
                print(f"| {C}, {hw}x{hw} | {k}x{k} | {name} | {t_plain:.2f} | {t_ours:.2f} "
                      f"| {t_plain / t_ours:.1f}x | {diff} |")


if __name__ == "__main__":
    main()
