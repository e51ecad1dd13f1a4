#!/usr/bin/env bash
# The GPU checks of the speed issue, for a lent GPU machine (about 8 minutes; each part has a
# hard time limit and prints as it goes, so a part cut short keeps what it finished):
#  1. tests/test_search_cuda.py;
#  2. benchmarks/graph_vs_eager.py: CUDA-graph replay against eager, against eager repeated and
#     against eager in another summation order, in fp32 without TF32, fp32 and bf16;
#  3. benchmarks/side_by_side.py: quark0/darts (the anchor copied under .anchors/, see below)
#     beside mimdarts' reference, fp32 fast path and default at the papers' shapes;
#  4. end to end on full-size synthetic data (synthetic-cifar10: 25,000 + 25,000 images,
#     batch 64), data loading and the per-epoch passes included: 2 epochs of the paper's
#     MIM-DARTS search in the DARTS space (mim-darts-c10: the cell of the best val epoch, so the
#     whole val half is scored each epoch) and 3 of NAS-Bench-201 (nb201-mim-darts); the
#     per-epoch times from each log.jsonl;
#  5. NCCL once: a 1-process torchrun search and training with a real NCCL process group
#     (MIMDARTS_FORCE_PROCESS_GROUP=1).
# Usage: bash benchmarks/gpu_speed.sh [OUT_DIR]   (before: mkdir -p .anchors && cp -r
#   ../shared/anchors/quark0-darts .anchors/ ; .anchors/ is git-ignored: carry it)
set -uo pipefail
out=${1:-${OUT:-gpu_speed}}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-$PWD/src} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
t0=$(date +%s)
lap() { echo "== $1 ($(( $(date +%s) - t0 )) s)"; }
lap env; $py -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee "$out/env.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$out/env.txt"
lap tests
timeout 80 $py -m pytest -q -p no:cacheprovider --no-header -rN tests/test_search_cuda.py 2>&1 \
  | tail -30 | tee "$out/tests.txt"
lap graph_vs_eager
timeout 85 $py benchmarks/graph_vs_eager.py --json "$out/graph_vs_eager.json" 2>&1 | tee "$out/graph_vs_eager.md"
lap side_by_side
timeout 170 $py benchmarks/side_by_side.py --device cuda --timeout 30 \
  --quark0 .anchors/quark0-darts/time_quark0.py --json "$out/side_by_side.json" 2>&1 | tee "$out/side_by_side.md"
lap end_to_end
e2e() {  # name, time limit, search arguments...
  local name=$1 limit=$2; shift 2
  local t=$(date +%s)
  timeout "$limit" $py -m mimdarts search "$@" --dataset synthetic-cifar10 --device cuda \
    --no-progress --out-dir /tmp/e2e --run-name "$name" > "/tmp/e2e-$name.txt" 2>&1
  echo "$name: exit $?, $(( $(date +%s) - t )) s wall (startup included)"
  $py - "$name" <<'PY'
import json, sys
from pathlib import Path
name = sys.argv[1]
log = Path("/tmp/e2e") / name / "log.jsonl"
rows = [json.loads(l) for l in log.read_text().splitlines()] if log.exists() else []
print(f"{name}: epoch_time_s", [round(r.get("epoch_time_s", 0), 2) for r in rows])
meta = Path("/tmp/e2e") / name / "meta.json"
if meta.exists():
    print(f"{name}: resolved", json.loads(meta.read_text()).get("resolved"))
PY
  tail -3 "/tmp/e2e-$name.txt"
}
{
  e2e darts-mim 110 --preset mim-darts-c10 --epochs 2
  e2e nb201-mim 55 --preset nb201-mim-darts --epochs 3
} 2>&1 | tee "$out/end_to_end.md"
lap nccl
{
  export MIMDARTS_FORCE_PROCESS_GROUP=1
  timeout 30 torchrun --standalone --nproc_per_node 1 -m mimdarts search --preset tiny \
    --device cuda --out-dir /tmp/nccl --run-name s --no-progress 2>&1 | tail -4
  echo "search exit ${PIPESTATUS[0]}"
  timeout 30 torchrun --standalone --nproc_per_node 1 -m mimdarts train --preset train-tiny \
    --genotype /tmp/nccl/s --device cuda --out-dir /tmp/nccl --run-name t --no-progress 2>&1 | tail -4
  echo "train exit ${PIPESTATUS[0]}"
  $py -c "import json; print(json.load(open('/tmp/nccl/s/meta.json')).get('resolved'))"
} 2>&1 | tee "$out/nccl.md"
lap done
