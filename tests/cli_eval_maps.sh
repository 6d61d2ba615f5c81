#!/bin/sh
# saa eval --maps on the real mtd-mini sample, using each image's own mask as its anomaly map: normal
# images get all-zero maps and every anomalous one a positive maximum, so image AUROC/AP/F1 must be
# exactly 1 whatever the resize does; pixel values must be valid fractions; the outputs and the
# errors (missing map, unknown dataset) are checked. Skipped (77) without ../shared/data/mtd-mini.
saa="$1"; shared="$2"
root="$shared/data/mtd-mini"
if [ ! -d "$root" ]; then echo "SKIPPED: $root not found"; exit 77; fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for d in "$root"/MT_*; do
  c=$(basename "$d"); mkdir -p "$tmp/maps/mtd/$c"; cp "$d"/Imgs/*.png "$tmp/maps/mtd/$c/" || exit 1
done
"$saa" eval --dataset mtd --root "$root" --maps "$tmp/maps" -o "$tmp/out" --resolution 64 --quiet > "$tmp/log" 2>&1 \
  || { cat "$tmp/log"; fail "saa eval exited with $?"; }
for f in out/metrics.json out/metrics.csv out/mtd/metrics.json out/mtd/metrics.csv out/report.html; do
  [ -s "$tmp/$f" ] || fail "$f not written"
done
j="$tmp/out/mtd/metrics.json"
grep -q '"n_images":[[:space:]]*18,' "$j" || fail "n_images != 18"
grep -q '"n_anomalous":[[:space:]]*15,' "$j" || fail "n_anomalous != 15"
for k in image_auroc image_ap image_f1; do
  grep -q "\"$k\":[[:space:]]*1,*\$" "$j" || fail "$k != 1"
done
for k in pixel_auroc pixel_ap pixel_f1 aupro f_r; do
  v=$(sed -n "s/.*\"$k\":[[:space:]]*\([0-9.e-]*\).*/\1/p" "$j")
  [ -n "$v" ] || fail "$k missing or null"
  awk -v v="$v" 'BEGIN { exit !(v > 0.5 && v <= 1) }' || fail "$k = $v outside (0.5, 1]"
done
head -1 "$tmp/out/metrics.csv" | grep -q '^category,image_auroc,image_ap,image_f1,pixel_auroc,pixel_ap,pixel_f1,aupro,aupro_official,f_r,f_r_official$' \
  || fail "csv header"
grep -q '^mtd,100.00,100.00,100.00,' "$tmp/out/metrics.csv" || fail "csv mtd row"
grep -q '^mean,100.00,100.00,100.00,' "$tmp/out/metrics.csv" || fail "csv mean row"
grep -q 'Pixel ROC' "$tmp/out/report.html" || fail "report.html lacks the pixel ROC curve"
grep -q 'MT_Free/exp1_num_' "$tmp/out/report.html" || fail "report.html gallery lacks the normal images (worst false positives)"
# spilling the pixel scores to disk (tiny budget) changes nothing
"$saa" eval --dataset mtd --root "$root" --maps "$tmp/maps" -o "$tmp/out_spill" --resolution 64 --quiet \
  --score-memory 0.0005 --no-report > "$tmp/log" 2>&1 || { cat "$tmp/log"; fail "saa eval --score-memory exited with $?"; }
cmp -s "$tmp/out/metrics.csv" "$tmp/out_spill/metrics.csv" || fail "metrics differ with --score-memory"
cmp -s "$tmp/out/mtd/metrics.json" "$tmp/out_spill/mtd/metrics.json" || fail "metrics.json differs with --score-memory"
# a missing map is an error naming it
rm "$tmp/maps/mtd/MT_Free/exp1_num_3786.png"
if "$saa" eval --dataset mtd --root "$root" --maps "$tmp/maps" -o "$tmp/out2" --resolution 16 --quiet > "$tmp/log" 2>&1; then
  fail "missing map accepted"
fi
grep -q 'MT_Free/exp1_num_3786' "$tmp/log" || { cat "$tmp/log"; fail "error does not name the missing map"; }
"$saa" eval --dataset nope --root "$root" --maps "$tmp/maps" -o "$tmp/out3" > "$tmp/log" 2>&1
[ $? -eq 2 ] || fail "unknown dataset should exit 2"
[ ! -e "$tmp/out_spill/report.html" ] || fail "--no-report wrote a report"
echo "ok"
