"""Training throughput of the CIFAR evaluation network at the paper's shape.

DARTS_V2 (or --genotype), C=36, 20 cells, auxiliary head (weight 0.4), drop-path 0.2,
batch 96, SGD with momentum and gradient clipping: the full training step of
``mimdarts train --preset cifar10`` on synthetic 32x32 inputs. Prints images/s over the
timed steps (after warm-up) and the projected time of one 50,000-image epoch.

    python benchmarks/train_throughput.py                      # auto device
    python benchmarks/train_throughput.py --device cpu --steps 3 --warmup 1
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from mimdarts.runtime import amp_context, autocast_dtype, resolve_device
from mimdarts.spaces import load_genotype
from mimdarts.train.networks import NetworkCIFAR, count_parameters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genotype", default="DARTS_V2")
    ap.add_argument("--batch", type=int, default=96)
    ap.add_argument("--channels", type=int, default=36)
    ap.add_argument("--layers", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    ap.add_argument("--no-channels-last", action="store_true")
    ap.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"],
                    help="autocast as `run.dtype` in `mimdarts train` (auto: bf16 on CUDA only)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    net = NetworkCIFAR(load_genotype(args.genotype), args.channels, 10, args.layers).to(device)
    net.drop_path_prob = 0.2 * 300 / 600  # mid-training value
    fmt = torch.contiguous_format if args.no_channels_last else torch.channels_last
    net = net.to(memory_format=fmt).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    x = torch.randn(args.batch, 3, 32, 32, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (args.batch,), device=device)

    amp = autocast_dtype(args.dtype, device)

    def step() -> None:
        with amp_context(device, amp):
            logits, aux = net(x)
            loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    dt = time.perf_counter() - t0
    ips = args.steps * args.batch / dt
    print(f"device {device} ({torch.get_num_threads()} CPU threads), {args.genotype}, "
          f"C={args.channels}, {args.layers} cells, {count_parameters(net) / 1e6:.2f}M params, "
          f"batch {args.batch}, {'fp32' if amp is None else 'bf16 autocast'}")
    print(f"{ips:.1f} images/s over {args.steps} steps after {args.warmup} warm-up; "
          f"one 50,000-image epoch: {50_000 / ips / 60:.1f} min; 600 epochs: "
          f"{600 * 50_000 / ips / 3600:.1f} h (training steps only)")


if __name__ == "__main__":
    main()
