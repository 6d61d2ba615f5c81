#!/usr/bin/env bash
# Downloads the official model files saa uses into ./models (or $SAA_MODELS, or --dir DIR), from their
# official locations, and verifies them. Idempotent: files already present and verified are kept.
#
#   scripts/download-models.sh [--sam vit_b|vit_l|vit_h] [--dir DIR]
#
# Files:
#   SAM (default vit_h)            sam_vit_h_4b8939.pth / sam_vit_l_0b3195.pth / sam_vit_b_01ec64.pth
#                                  (the 6 hex digits in the name are the start of the file's MD5)
#   Grounding DINO Swin-T OGC      groundingdino_swint_ogc.pth
#   BERT base uncased vocabulary   bert-base-uncased-vocab.txt (MD5 64800d5d8528ce344256daf115d4965e)
#   WideResNet-50-2 (timm)         wide_resnet50_2.safetensors (timm/wide_resnet50_2.racm_in1k, the default
#                                  tag timm resolves for wide_resnet50_2)
set -euo pipefail
sam=vit_h
dir="${SAA_MODELS:-models}"
while [ $# -gt 0 ]; do
  case "$1" in
    --sam) sam="${2:-}"; shift 2 ;;
    --dir) dir="${2:-}"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "download-models: unknown argument '$1' (expected --sam vit_b|vit_l|vit_h, --dir DIR)" >&2; exit 2 ;;
  esac
done
case "$sam" in
  vit_h) sam_file=sam_vit_h_4b8939.pth ;;
  vit_l) sam_file=sam_vit_l_0b3195.pth ;;
  vit_b) sam_file=sam_vit_b_01ec64.pth ;;
  *) echo "download-models: --sam must be vit_b, vit_l or vit_h (got '$sam')" >&2; exit 2 ;;
esac
mkdir -p "$dir"

if command -v curl >/dev/null; then
  fetch() { curl -fL --retry 3 -o "$2" "$1"; }
elif command -v wget >/dev/null; then
  fetch() { wget -O "$2" "$1"; }
else
  echo "download-models: needs curl or wget (apt-get install curl)" >&2; exit 1
fi

# verify FILE MD5PREFIX MINBYTES
verify() {
  local f="$1" md5="$2" min="$3" size sum
  [ -f "$f" ] || return 1
  size=$(stat -c %s "$f")
  if [ "$size" -lt "$min" ]; then
    echo "download-models: $f has $size bytes, expected at least $min" >&2; return 1
  fi
  if [ -n "$md5" ]; then
    sum=$(md5sum "$f" | cut -c1-${#md5})
    if [ "$sum" != "$md5" ]; then
      echo "download-models: $f MD5 starts with $sum, expected $md5" >&2; return 1
    fi
  fi
  return 0
}

# get URL FILE MD5PREFIX MINBYTES
get() {
  local url="$1" f="$dir/$2" md5="$3" min="$4"
  if verify "$f" "$md5" "$min" 2>/dev/null; then echo "download-models: $f present"; return 0; fi
  echo "download-models: fetching $2"
  fetch "$url" "$f.part"
  mv "$f.part" "$f"
  verify "$f" "$md5" "$min" || { rm -f "$f"; exit 1; }
}

get "https://dl.fbaipublicfiles.com/segment_anything/$sam_file" "$sam_file" "${sam_file:10:6}" 300000000
get "https://github.com/IDEA-Research/GroundingDINO/releases/download/v0.1.0-alpha/groundingdino_swint_ogc.pth" \
    groundingdino_swint_ogc.pth "" 600000000
get "https://huggingface.co/bert-base-uncased/resolve/main/vocab.txt" bert-base-uncased-vocab.txt \
    64800d5d8528ce344256daf115d4965e 231508
get "https://huggingface.co/timm/wide_resnet50_2.racm_in1k/resolve/main/model.safetensors" \
    wide_resnet50_2.safetensors "" 200000000
echo "download-models: all files in $dir"
