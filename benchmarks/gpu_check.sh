#!/usr/bin/env bash
# GPU check for a lent GPU machine (under 5 minutes: each part has a hard time limit and the
# tables print row by row, so a part cut short keeps its finished rows), in this order:
#  1. the CUDA tests (tests/test_search_cuda.py: fast path = reference maths in float64 on the GPU,
#     CUDA-graph replay = eager iteration, a whole search with graphs on);
#  2. the search-step table at the paper's shapes, both spaces, first order: reference
#     (fp32, NCHW, every op, per edge), per-edge (skip none, shared ReLU, weights folded into
#     BN, merged decoder convs, channels_last, bf16),
#     grouped (+ edges leaving a node as one op), fast (+ the iteration as a CUDA graph),
#     with speed-ups and the projected wall time of the full searches (DARTS space 50 epochs,
#     NAS-Bench-201 100 epochs, 25,000 w images per epoch);
#  3. second order, MIM-DARTS, reference vs fast;
#  4. the evaluation network's training throughput.
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (without a package install: PYTHONPATH=src)
set -uo pipefail
out=${1:-${OUT:-gpu_check}}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-$PWD/src} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
$py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee "$out/env.txt"
timeout 75 $py -m pytest -q -p no:cacheprovider tests/test_search_cuda.py 2>&1 | tail -25 | tee "$out/tests.txt"
{
  timeout 115 $py -m mimdarts.bench --device cuda --shape paper --spaces darts nb201 \
      --objectives mim-darts --orders 1 --paths reference per-edge grouped fast --steps 5 --warmup 3
  timeout 35 $py -m mimdarts.bench --device cuda --shape paper --spaces darts nb201 \
      --objectives cls --orders 1 --paths reference fast --steps 5 --warmup 3
  timeout 40 $py -m mimdarts.bench --device cuda --shape paper --spaces darts nb201 \
      --objectives mim-darts --orders 2 --paths reference fast --steps 5 --warmup 2
  timeout 20 $py benchmarks/train_throughput.py --device cuda --steps 20 --warmup 5
} 2>&1 | tee "$out/bench.md"
