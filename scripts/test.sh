#!/usr/bin/env bash
# Builds saa twice (gcc -Wall -Wextra -Werror; then ASan+UBSan) and runs the whole ctest suite on each.
# Golden tests read ../shared/golden in place (SAA_SHARED_DIR overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
shared="${SAA_SHARED_DIR:-$(pwd)/../shared}"
for variant in release asan; do
  dir="build-test-$variant"
  flags=(-DCMAKE_BUILD_TYPE=Release -DSAA_WERROR=ON -DSAA_SHARED_DIR="$shared")
  [ "$variant" = asan ] && flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSAA_SANITIZE=ON -DSAA_WERROR=ON -DSAA_SHARED_DIR="$shared")
  echo "== $variant build"
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "== $variant tests"
  # ASan: OpenMP/OpenBLAS threads keep allocations alive at exit; leak checking stays on for our code.
  ASAN_OPTIONS="detect_leaks=1:abort_on_error=0" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir "$dir" --output-on-failure -j"$jobs"
done
