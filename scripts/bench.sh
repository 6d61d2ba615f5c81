#!/usr/bin/env bash
# Runs every benchmark of bench/ one after the other (they are not tests) on a quiet machine and keeps the
# output in build-bench/bench.log. Each program prints its own sgemm yardstick measured in the same run.
#   scripts/bench.sh [sam|gdino|e2e|wrn|swin|metrics|ops|sgemm ...]     (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
vocab="${SAA_VOCAB:-$(pwd)/../shared/golden/tokenizer/vocab.txt}"
dir=build-bench
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$dir" -j"$(nproc)" >/dev/null
which=("$@")
[ ${#which[@]} -eq 0 ] && which=(sgemm sam gdino wrn e2e metrics)
log="$dir/bench.log"
: >"$log"
for b in "${which[@]}"; do
  case "$b" in
    sgemm) cmd=("$dir/bench/bench_sgemm") ;;
    sam) cmd=("$dir/bench/bench_sam") ;;
    gdino) cmd=("$dir/bench/bench_gdino" "$vocab") ;;
    e2e) cmd=("$dir/bench/bench_e2e" "$vocab") ;;
    wrn) cmd=("$dir/bench/bench_wrn") ;;
    swin) cmd=("$dir/bench/bench_swin") ;;
    metrics) cmd=("$dir/bench/bench_metrics") ;;
    ops) cmd=("$dir/bench/bench_ops") ;;
    *) echo "bench: unknown benchmark '$b' (sgemm sam gdino e2e wrn swin metrics ops)" >&2; exit 2 ;;
  esac
  echo "== $b ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))" | tee -a "$log"
  if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "wall %e s, max RSS %M KB" "${cmd[@]}" 2>&1 | tee -a "$log"
  else
    "${cmd[@]}" 2>&1 | tee -a "$log"
  fi
done
echo "bench: log in $log"
