#!/usr/bin/env bash
# The main job on a fresh machine: install dependencies, build, fetch the official models, segment an
# example image into ./out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
bash scripts/download-models.sh
example="${1:-../shared/data/mtd-mini/MT_Blowhole/Imgs}"
img=$(ls "$example"/*.jpg 2>/dev/null | head -n 1 || true)
if [ -z "$img" ]; then
  echo "quickstart: no example image found under $example; pass a folder of .jpg images as the first argument" >&2
  exit 1
fi
./build/saa segment --category mtd --models models "$img" -o out
echo "quickstart: outputs written to ./out"
