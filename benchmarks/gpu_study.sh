#!/usr/bin/env bash
# The collapse study at the benchmark's width and depth on a lent GPU (docs/study/gpu/): the
# four study-* methods with C=16, 5 cells per stage, batch 64 (39 iterations per epoch on
# the bundled sample's 2,500 + 2,500 images, 30 epochs: 1,170 α steps, so arch_lr 1e-2 keeps
# the paper's product of α steps and rate, 11.7), seeds 0-9, several searches sharing the GPU.
# First one search alone (the throughput baseline), then the sweep, JOBS at a time, until
# BUDGET seconds have passed; then every finished run (no checkpoints) in gpu-study.tgz and the
# last checkpoint of each unfinished one in gpu-study-ckpt.tgz (the sweep resumes from them).
# Usage: BUDGET=240 JOBS=12 bash benchmarks/gpu_study.sh [OUT_DIR]
set -uo pipefail
out=${1:-${OUT:-gpu_study}}
mkdir -p "$out"
export PYTHONPATH=${PYTHONPATH:-$PWD/src} PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
d=/tmp/gpu-study
sets=(--set threads=1 layers=5 channels=16 batch_size=64 arch_lr=0.01)
presets=(study-darts study-mim-darts study-beta-darts study-cls-masked)
# run a sweep in its own process group; end the whole group (its trials too) after $1 seconds
sweep_for() {
  local budget=$1 log=$2; shift 2
  local t=$(date +%s)
  setsid $py -m mimdarts sweep "$@" "${sets[@]}" --out-dir $d > "$log" 2>&1 &
  local pid=$!
  while kill -0 $pid 2>/dev/null && (( $(date +%s) - t < budget )); do sleep 1; done
  kill -TERM -- -$pid 2>/dev/null; sleep 2; kill -KILL -- -$pid 2>/dev/null
  wait $pid 2>/dev/null
  echo $(( $(date +%s) - t ))
}
s=$(sweep_for "${ALONE:-120}" "$out/alone.txt" --preset study-darts --seeds 0 --jobs 1)
echo "one search alone: ${s} s" | tee "$out/timing.txt"
s=$(sweep_for "${BUDGET:-240}" "$out/sweep.txt" --preset "${presets[@]}" \
    --seeds 0 1 2 3 4 5 6 7 8 9 --jobs "${JOBS:-12}")
done_runs=$(ls $d/*/result.json 2>/dev/null | wc -l)
echo "sweep: ${s} s, $done_runs runs finished in all (the one alone included)" \
  | tee -a "$out/timing.txt"
$py -m mimdarts report $d --out $d --baseline study-darts > "$out/report.txt" 2>&1
tar czf "$out/gpu-study.tgz" -C $d --exclude='checkpoint*.pt' . 2>/dev/null
ls -la "$out/gpu-study.tgz"
unfinished=$(for r in $d/*/; do [ -f "$r/result.json" ] || [ ! -f "$r/checkpoint.pt" ] || echo "${r#$d/}checkpoint.pt"; done)
[ -n "$unfinished" ] && tar czf "$out/gpu-study-ckpt.tgz" -C $d $unfinished && ls -la "$out/gpu-study-ckpt.tgz"
tail -5 "$out/sweep.txt"
