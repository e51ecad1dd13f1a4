#!/usr/bin/env bash
# What the speed issue still needs from a GPU (at most about 6.5 minutes, each part time-limited):
#  1. tests/test_search_cuda.py: the replay test's new form (strict fp32 and bf16, bounded by
#     twice the measured reordering distance) has not run on a GPU;
#  2. benchmarks/bf16_probe.py: why bf16 is slow at the DARTS paper shape (per-iteration
#     times, the cuDNN autotuner off and on, the top kernels of a bf16 eager iteration);
#  3. benchmarks/side_by_side.py, the NAS-Bench-201 and second-order rows cut last time;
#  4. the eager grouped iteration now that the BatchNorms count no batches
#     (benchmarks/op_count.py: 7,594 launches, 430 fewer), for docs/speed.md's GPU table;
#  5. benchmarks/dilated_conv.py: whether the stride-1-on-every-other-row form of a reduction
#     cell's dil_conv (used on the CPU only) would pay on the GPU too, and in bf16 whether
#     cuDNN's dilated depthwise kernels are what makes the bf16 DARTS step slow.
# Usage: bash benchmarks/gpu_next.sh [OUT_DIR]  (carry .anchors/ for quark0, as gpu_speed.sh)
set -uo pipefail
out=${1:-${OUT:-gpu_next}}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-$PWD/src} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
t0=$(date +%s)
lap() { echo "== $1 ($(( $(date +%s) - t0 )) s)"; }
lap env; $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee "$out/env.txt"
lap tests
timeout 70 $py -m pytest -q -p no:cacheprovider --no-header -rN tests/test_search_cuda.py 2>&1 \
  | tail -30 | tee "$out/tests.txt"
lap bf16_probe
timeout 130 $py benchmarks/bf16_probe.py --device cuda --shape paper --steps 6 --limit 28 2>&1 \
  | tee "$out/bf16_probe.md"
lap side_by_side
timeout 90 $py benchmarks/side_by_side.py --device cuda --rows gpu-rest --timeout 25 \
  --quark0 .anchors/quark0-darts/time_quark0.py --json "$out/side_by_side.json" 2>&1 | tee "$out/side_by_side.md"
lap eager
timeout 40 $py -m mimdarts.bench --device cuda --shape paper --spaces darts nb201 \
  --objectives mim-darts --paths grouped fast-fp32 --steps 10 --warmup 3 2>&1 | tee "$out/eager.md"
lap dilated_conv
timeout 25 $py benchmarks/dilated_conv.py --device cuda --repeat 20 2>&1 | tee "$out/dilated_conv.md"
timeout 25 $py benchmarks/dilated_conv.py --device cuda --repeat 5 --dtype bf16 2>&1 \
  | tee "$out/dilated_conv_bf16.md"
lap done
