#!/bin/sh
# The HTML report renders in a browser: headless Chromium screenshots a generated report (written by the
# test_report helper next to the saa binary's build tree) and the screenshot must not be blank.
# Skipped (77) where Chromium is not installed: CI does not install it.
saa="$1"
browser=""
for b in chromium chromium-browser; do
  if command -v "$b" > /dev/null 2>&1; then browser="$b"; break; fi
done
if [ -z "$browser" ]; then
  echo "SKIPPED: chromium not installed"
  exit 77
fi
helper="$(dirname "$saa")/tests/test_report"
if [ ! -x "$helper" ]; then
  echo "FAIL: helper $helper not built"
  exit 1
fi
tmp=$(mktemp -d) || exit 1
profile=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp" "$profile"' EXIT
fail=0

"$helper" --demo "$tmp" || { echo "FAIL: could not write the demo report"; exit 1; }
[ -s "$tmp/report.html" ] || { echo "FAIL: no report.html"; exit 1; }
if grep -Eq '<script|<link|src="http|href="http' "$tmp/report.html"; then
  echo "FAIL: the report references external resources"; fail=1
fi

timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync --disable-dev-shm-usage \
  --user-data-dir="$profile" --screenshot="$tmp/shot.png" --window-size=1200,900 \
  "file://$tmp/report.html" > "$tmp/chromium.log" 2>&1
if [ ! -s "$tmp/shot.png" ]; then
  echo "FAIL: chromium wrote no screenshot"; tail -20 "$tmp/chromium.log"; exit 1
fi
# decoded by the helper: width height distinct-colours non-white-%; non-zero exit when near blank
stats=$("$helper" --png-stats "$tmp/shot.png") || { echo "FAIL: screenshot looks blank: $stats"; fail=1; }
echo "screenshot: $stats"
set -- $stats
[ "$1" = 1200 ] && [ "$2" = 900 ] || { echo "FAIL: screenshot size $1x$2, expected 1200x900"; fail=1; }
# what the first screen shows: the mean row's background, the ROC (blue) and PR (red) curves, the PRO
# curve (green); a page shown as source text or unstyled would miss them
"$helper" --png-colours "$tmp/shot.png" f3f3d8 1f77b4 d62728 2ca02c > "$tmp/colours" ||
  { echo "FAIL: rendered page lacks the table/curve colours:"; cat "$tmp/colours"; fail=1; }
if [ -n "$SAA_KEEP_SCREENSHOT" ]; then cp "$tmp/shot.png" "$SAA_KEEP_SCREENSHOT"; cp "$tmp/report.html" "$SAA_KEEP_SCREENSHOT.html"; fi

[ $fail -eq 0 ] && echo "PASS"
exit $fail
