#!/usr/bin/env bash
# GPU check of a refactor, for a lent GPU machine (about 5 minutes): the CUDA tests on this
# tree, then the search step at the paper's shapes (MIM-DARTS, first order, grouped and fast
# = CUDA graphs) and a short real search (nb201-mim-quick, 3 epochs, CUDA graphs), each for
# an OLD source tree and this one, alternated so that both see the same machine state.
# Usage: bash benchmarks/gpu_before_after.sh OLD_SRC [OUT_DIR]
#   (OLD_SRC: e.g. `git archive REV src | tar -x -C .old` -> .old/src)
set -uo pipefail
old=$1
out=${2:-${OUT:-gpu_before_after}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
PYTHONPATH=$PWD/src timeout 120 $py -m pytest -q -p no:cacheprovider tests/test_search_cuda.py 2>&1 \
  | tail -15 | tee "$out/tests.txt"
for round in 1 2; do
  for tree in "$old" "$PWD/src"; do
    echo "== round $round: $tree" | tee -a "$out/bench.md"
    PYTHONPATH=$tree timeout 100 $py -m mimdarts.bench --device cuda --shape paper \
      --spaces darts nb201 --objectives mim-darts --orders 1 --paths grouped fast \
      --steps 10 --warmup 3 2>&1 | tee -a "$out/bench.md"
  done
done
for tree in "$old" "$PWD/src"; do
  name=$(basename "$(dirname "$tree")")
  PYTHONPATH=$tree timeout 120 $py -m mimdarts search --preset nb201-mim-quick --epochs 3 \
    --cuda-graphs true --device cuda --no-progress --out-dir "/tmp/runs-$name" --run-name r \
    > "$out/search-$name.txt" 2>&1
  echo "== search, $tree: epoch_time_s per epoch" | tee -a "$out/search.md"
  $py -c "import json,sys; print([json.loads(l)['epoch_time_s'] for l in open(sys.argv[1])])" \
    "/tmp/runs-$name/r/log.jsonl" 2>&1 | tee -a "$out/search.md"
done
