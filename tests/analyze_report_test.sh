#!/bin/bash
# q8 analyze end to end: the table, --json, and --report FILE.html rendered by headless Chromium.
# usage: analyze_report_test.sh path/to/q8 SOURCE_DIR
set -u
Q8=${1:?usage: analyze_report_test.sh Q8 SOURCE_DIR}
SRC=${2:?usage: analyze_report_test.sh Q8 SOURCE_DIR}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
M=$SRC/models/fashion_cnn.onnx C=$SRC/models/fashion_calib_256.npy X=$SRC/models/fashion_test_500.npy

# The table.
if "$Q8" analyze "$M" --calib "$C" --iterations 3 >"$T/table.txt" 2>"$T/err" &&
   grep -q '/3/Conv' "$T/table.txt" && grep -q 'end-to-end SQNR' "$T/table.txt"; then ok "table"; else bad "table: $(cat "$T/err")"; fi

# --json: one valid JSON object with every Conv/Gemm row.
if "$Q8" analyze "$M" --calib "$C" --input "$X" --iterations 3 --json >"$T/a.json" 2>"$T/err"; then
  if command -v python3 >/dev/null; then
    if python3 - "$T/a.json" <<'PY'
import json, math, sys
d = json.load(open(sys.argv[1]))
rows = {l["name"]: l for l in d["layers"]}
for n in ("/0/Conv", "/3/Conv", "/7/Gemm"):
    l = rows[n]
    for k in ("sqnr_db", "sqnr_cumulative_db", "clipped", "int8_ms", "fp32_ms", "macs"):
        assert math.isfinite(l[k]), (n, k)
    assert l["advice"]
assert math.isfinite(d["summary"]["sqnr_db"])
PY
    then ok "json"; else bad "json content"; fi
  else
    grep -q '"layers"' "$T/a.json" && grep -q '"summary"' "$T/a.json" && ok "json (no python3: keys only)" || bad "json keys"
  fi
else bad "json: $(cat "$T/err")"; fi

# --report: self-contained HTML, written atomically.
if "$Q8" analyze "$M" --calib "$C" --iterations 3 --report "$T/r.html" >/dev/null 2>"$T/err" && [ -s "$T/r.html" ]; then
  ok "report written"
  [ "$(grep -c '<svg' "$T/r.html")" -ge 2 ] && ok "report has charts" || bad "report has no SVG charts"
  if grep -qiE '<script|<link|@import|https?://[^"]*\.(js|css|woff)' "$T/r.html"; then bad "report is not self-contained"; else ok "report self-contained"; fi
else bad "report: $(cat "$T/err")"; fi
ls "$T"/r.html.tmp* >/dev/null 2>&1 && bad "temporary report file left behind" || ok "no temporary file left"

# Errors: an unwritable report is exit 1 and no file; a missing --calib is a usage error (2).
"$Q8" analyze "$M" --calib "$C" --iterations 1 --report "$T/no/such/dir/r.html" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && [ ! -e "$T/no/such/dir/r.html" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && ok "unwritable report: exit 1" || bad "unwritable report"
"$Q8" analyze "$M" >/dev/null 2>&1
[ $? -eq 2 ] && ok "missing --calib: exit 2" || bad "missing --calib"

# The page renders in headless Chromium: a non-blank screenshot.
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "skip rendering: chromium is not installed"
elif [ -s "$T/r.html" ]; then
  timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$T/profile" \
    --screenshot="$T/shot.png" --window-size=1200,2000 "file://$T/r.html" >"$T/chromium.log" 2>&1
  size=$(stat -c %s "$T/shot.png" 2>/dev/null || echo 0)
  # A blank 1200x2000 page compresses to a few KB; charts and a table make it far larger.
  if [ "$size" -gt 20000 ]; then ok "rendered by chromium ($size bytes)"; else bad "chromium screenshot blank or missing ($size bytes)"; fi
  if [ -n "${Q8_KEEP_SCREENSHOT:-}" ] && [ -s "$T/shot.png" ]; then cp "$T/shot.png" "$Q8_KEEP_SCREENSHOT"; fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
