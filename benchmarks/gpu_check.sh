#!/usr/bin/env bash
# GPU check, for a lent GPU machine (about 5 minutes on one H100-class GPU): the search-step
# table at the paper's shapes for both spaces, DARTS and MIM-DARTS, first and second order
# (fast path with bf16 autocast vs the fp32 reference path), with the projected wall time of
# the full searches (DARTS space 50 epochs, NAS-Bench-201 100 epochs), then the evaluation
# network's training throughput. Usage: bash benchmarks/gpu_check.sh [OUT_FILE]
set -euo pipefail
out=${1:-gpu_check.md}
{
  python -m mimdarts.bench --device cuda --shape paper --spaces darts nb201 \
      --objectives cls mim-darts --orders 1 --steps 10 --warmup 3
  python -m mimdarts.bench --device cuda --shape paper --spaces darts nb201 \
      --objectives mim-darts --orders 2 --steps 5 --warmup 2
  python benchmarks/train_throughput.py --device cuda --steps 20 --warmup 5
} | tee "$out"
