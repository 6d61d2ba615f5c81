#!/bin/sh
# saa inspect: lists a golden .pth (name, dtype, shape) and refuses a truncated copy with one error line.
saa="$1"; shared="$2"
pth="$shared/golden/wrn_tiny/weights.pth"
if [ ! -f "$pth" ]; then
  echo "SKIPPED: $pth not found (../shared absent)"
  exit 77
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

"$saa" inspect "$pth" > "$tmp/out" 2> "$tmp/err" || { echo "FAIL: inspect exited non-zero"; cat "$tmp/err"; fail=1; }
grep -Eq '^conv1\.weight +float32 +\[16, 3, 7, 7\]$' "$tmp/out" || { echo "FAIL: no 'conv1.weight float32 [16, 3, 7, 7]' line"; fail=1; }
grep -Eq '^bn1\.num_batches_tracked +int64 +\[\]$' "$tmp/out" || { echo "FAIL: no 'bn1.num_batches_tracked int64 []' line"; fail=1; }
grep -Eq '^140 tensors, ' "$tmp/out" || { echo "FAIL: tensor count line"; tail -1 "$tmp/out"; fail=1; }

head -c 100000 "$pth" > "$tmp/cut.pth"
if "$saa" inspect "$tmp/cut.pth" > "$tmp/out2" 2> "$tmp/err2"; then
  echo "FAIL: truncated checkpoint was accepted"; fail=1
fi
[ "$(wc -l < "$tmp/err2")" -eq 1 ] || { echo "FAIL: expected exactly one error line:"; cat "$tmp/err2"; fail=1; }
grep -q "cut.pth" "$tmp/err2" || { echo "FAIL: error does not name the file"; fail=1; }
[ ! -s "$tmp/out2" ] || { echo "FAIL: output on stdout for a refused file"; fail=1; }
cat "$tmp/err2"

[ $fail -eq 0 ] && echo "PASS"
exit $fail
