#!/bin/sh
# check-golden saa_e2e on an image whose defect passes keep no box (tests/data/golden_e2e_no_defect/README.md):
# the folder's small files come from tests/data, the models and vocabulary from ../shared/golden.
saa="$1"; shared="$2"; data="$3/golden_e2e_no_defect"
models="$shared/golden/saa_e2e"
if [ ! -f "$models/gdino.pth" ] || [ ! -f "$shared/golden/tokenizer/vocab.txt" ]; then
  echo "SKIPPED: $models not found (../shared absent)"
  exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
cp "$data/config.json" "$data/image0.png" "$tmp/" &&
  gzip -dc "$data/golden.safetensors.gz" > "$tmp/golden.safetensors" &&
  ln -s "$models/gdino.pth" "$tmp/gdino.pth" && ln -s "$models/sam.pth" "$tmp/sam.pth" &&
  ln -s "$models/wrn.pth" "$tmp/wrn.pth" && ln -s "$shared/golden/tokenizer/vocab.txt" "$tmp/vocab.txt" || exit 1
"$saa" check-golden "$tmp"
