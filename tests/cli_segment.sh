#!/bin/sh
# `saa segment` end to end on the tiny models of ../shared/golden/saa_e2e (given as explicit files + --config):
# the golden bottle image (region counts of the official run), committed test images (gray, RGBA, palette, odd
# JPEG sizes) with a command-line category, and the MTD images of ../shared/data/mtd-mini with the mtd preset.
# Checks exit codes, that every output exists with the right size, the JSON records, progress lines and errors.
# Values against the official run are checked by test_pipeline.
SAA="$1"
SHARED="$2"
DATA="$3"
G="$SHARED/golden/saa_e2e"
if [ ! -f "$G/config.json" ]; then
  echo "skipped: $G not found"
  exit 77
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
MODELS="--sam $G/sam.pth --gdino $G/gdino.pth --wrn $G/wrn.pth --vocab $SHARED/golden/tokenizer/vocab.txt --config $G/config.json"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# width x height from a PNG's IHDR
png_size() { od -An -tu1 -j16 -N8 "$1" | awk '{printf "%dx%d\n", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }
# width x height recorded in NAME.json
json_size() {
  w=$(grep '"width"' "$1" | head -1 | tr -dc '0-9')
  h=$(grep '"height"' "$1" | head -1 | tr -dc '0-9')
  echo "${w}x${h}"
}

# check_outputs DIR STEM EXPECTED_WxH OUT_SIZE
check_outputs() {
  d=$1; s=$2; size=$3; os=$4
  for suffix in _map.png _map.npy _map_full.npy _mask.png _overlay.png .json; do
    [ -s "$d/$s$suffix" ] || fail "$s: missing $s$suffix"
  done
  [ -f "$d/$s.json" ] || return
  [ "$(png_size "$d/${s}_map.png")" = "${os}x${os}" ] || fail "$s: map.png is $(png_size "$d/${s}_map.png"), expected ${os}x${os}"
  [ "$(png_size "$d/${s}_mask.png")" = "$size" ] || fail "$s: mask.png is $(png_size "$d/${s}_mask.png"), expected $size"
  [ "$(png_size "$d/${s}_overlay.png")" = "$size" ] || fail "$s: overlay.png is $(png_size "$d/${s}_overlay.png"), expected $size"
  [ "$(json_size "$d/$s.json")" = "$size" ] || fail "$s: json size $(json_size "$d/$s.json"), expected $size"
  w=${size%x*}; h=${size#*x}
  head -c 128 "$d/${s}_map.npy" | grep -q "'shape': ($os, $os)" || fail "$s: map.npy shape is not ($os, $os)"
  head -c 128 "$d/${s}_map_full.npy" | grep -q "'shape': ($h, $w)" || fail "$s: map_full.npy shape is not ($h, $w)"
  head -c 128 "$d/${s}_map.npy" | grep -q "'descr': '<f4'" || fail "$s: map.npy is not float32"
  for key in '"regions"' '"seconds"' '"detector"' '"sam_encoder"' '"sam_decoder"' '"saliency"' '"fusion"' '"total"'; do
    grep -q "$key" "$d/$s.json" || fail "$s: $key missing from the JSON"
  done
  # 16-bit map PNG: bit depth 16, colour type 0
  [ "$(od -An -tu1 -j24 -N2 "$d/${s}_map.png" | tr -s ' ')" = " 16 0" ] || fail "$s: map.png is not 16-bit gray"
}

# 1. the golden bottle image with its thresholds: 4 object boxes, 4 defect boxes fused, 4 dropped by the phrase
if ! "$SAA" segment --category bottle $MODELS --box-threshold 0.926 --text-threshold 0.5119 -o "$OUT/a" "$G/image0.png" 2>"$OUT/a.err"; then
  fail "bottle run failed: $(cat "$OUT/a.err")"
else
  check_outputs "$OUT/a" image0 140x120 256
  [ "$(grep -c '"status":[[:space:]]*"object"' "$OUT/a/image0.json")" = 4 ] || fail "bottle: expected 4 object regions"
  [ "$(grep -c '"status":[[:space:]]*"fused"' "$OUT/a/image0.json")" = 4 ] || fail "bottle: expected 4 fused regions"
  [ "$(grep -c '"status":[[:space:]]*"dropped-phrase"' "$OUT/a/image0.json")" = 4 ] || fail "bottle: expected 4 regions dropped by the phrase filter"
  grep -q '"phrase":[[:space:]]*"\[CLS\] damage on \[SEP\](0.93)"' "$OUT/a/image0.json" || fail "bottle: kept phrase of def1 missing"
  grep -q '"saliency":[[:space:]]*"single-instance"' "$OUT/a/image0.json" || fail "bottle: saliency mode"
fi

# 2. committed images of several kinds and sizes, a command-line category, another output size, all fixes
imgs=""
for f in gray8.png rgba8.png palette.png odd422.jpg gray.jpg; do imgs="$imgs $DATA/image/$f"; done
if ! "$SAA" segment --object "part" --defect "crack. hole." --defect "scratch" --top-k 3 --max-area 0.5 $MODELS \
     --out-size 64 --threshold 0.2 --fix all -o "$OUT/b" $imgs 2>"$OUT/b.err"; then
  fail "command-line category run failed: $(cat "$OUT/b.err")"
else
  for f in gray8.png rgba8.png palette.png; do
    check_outputs "$OUT/b" "${f%.*}" "$(png_size "$DATA/image/$f")" 64
  done
  for f in odd422 gray; do check_outputs "$OUT/b" "$f" "$(json_size "$OUT/b/$f.json")" 64; done
  [ "$(grep -c '^\[[0-9]/5\]' "$OUT/b.err")" = 5 ] || fail "expected 5 progress lines on stderr, got: $(cat "$OUT/b.err")"
fi

# 3. MTD images (gray PNG and JPEG) with the mtd preset
MTD="$SHARED/data/mtd-mini"
if [ -d "$MTD" ]; then
  set -- $(find "$MTD" -name '*.png' | sort | head -1) $(find "$MTD" -name '*.jpg' | sort | head -1)
  if ! "$SAA" segment --category mtd $MODELS --quiet -o "$OUT/c" "$@" 2>"$OUT/c.err"; then
    fail "mtd run failed: $(cat "$OUT/c.err")"
  else
    [ -s "$OUT/c.err" ] && fail "--quiet printed: $(cat "$OUT/c.err")"
    for f in "$@"; do
      s=$(basename "$f"); s=${s%.*}
      case "$f" in
        *.png) check_outputs "$OUT/c" "$s" "$(png_size "$f")" 256 ;;
        *) check_outputs "$OUT/c" "$s" "$(json_size "$OUT/c/$s.json")" 256 ;;
      esac
    done
  fi
else
  echo "note: $MTD absent, MTD images not run"
fi

# 4. errors: unknown category lists the known ones; a missing model names the file and the download command
"$SAA" segment --category no_such_thing $MODELS -o "$OUT/d" "$G/image0.png" 2>"$OUT/d.err" && fail "unknown category accepted"
grep -q "unknown category 'no_such_thing'" "$OUT/d.err" && grep -q "mvtec/bottle" "$OUT/d.err" || fail "unknown category message: $(cat "$OUT/d.err")"
"$SAA" segment --category bottle --models "$OUT/empty" -o "$OUT/d" "$G/image0.png" 2>"$OUT/d.err" && fail "missing models accepted"
grep -q "sam_vit_h_4b8939.pth" "$OUT/d.err" && grep -q "scripts/download-models.sh" "$OUT/d.err" || fail "missing model message: $(cat "$OUT/d.err")"
"$SAA" segment --category bottle $MODELS -o "$OUT/d" "$OUT/no-such-image.png" 2>"$OUT/d.err" && fail "missing image accepted"
"$SAA" segment --category bottle --object x $MODELS -o "$OUT/d" "$G/image0.png" 2>/dev/null; [ $? = 2 ] || fail "conflicting category options not a usage error"
"$SAA" segment --category bottle --fix nonsense $MODELS -o "$OUT/d" "$G/image0.png" 2>"$OUT/d.err"; [ $? = 2 ] || fail "unknown --fix not a usage error"
grep -q "unknown fix 'nonsense'" "$OUT/d.err" || fail "unknown fix message: $(cat "$OUT/d.err")"

if [ "$failures" -ne 0 ]; then
  echo "$failures failures"
  exit 1
fi
echo "saa segment: all checks passed"
