#!/usr/bin/env bash
# Many small objects: `impact results download` vs `rclone copy` and `aws s3 cp --recursive` over COUNT objects
# of a few KiB under one prefix of the local federation's RGW (loopback only), in one interleaved run.
#
#   source $FED_STATE/federation.env          # a running federation (tests/federation/up)
#   tests/bench/many.sh [--count N] [--bytes B] [--runs R] [--impact PATH] [--out FILE.md]
#
# Default 10,000 objects of 4 KiB (issue 23 asks for 100,000: run `--count 100000` on a quiet machine; seeding
# them once takes a few minutes). For each tool and run: the time to the first byte on disk (the first regular
# file in the destination with a byte in it, temporary names included, polled every 5 ms), the total wall
# time, and the peak RSS (GNU time). The table shows medians; impact's bound is <= 64 MiB of RSS.
# Tools that are not installed are left out (and named). Destinations on tmpfs ($BENCH_DIR, default /dev/shm).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
COUNT=10000
BYTES=4096
RUNS=3
IMPACT="$ROOT/build-rel/cli/impact"
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --count) COUNT="$2"; shift 2 ;;
    --bytes) BYTES="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --impact) IMPACT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "usage: many.sh [--count N] [--bytes B] [--runs R] [--impact PATH] [--out FILE.md]" >&2; exit 2 ;;
  esac
done
: "${FED_S3_URL:?source \$FED_STATE/federation.env first}"
[ -x "$IMPACT" ] || { echo "no impact binary at $IMPACT (build Release into build-rel, or pass --impact)" >&2; exit 2; }
case "$FED_S3_URL" in http://127.0.0.1:*|http://localhost:*) ;; *) echo "FED_S3_URL must be loopback" >&2; exit 2 ;; esac
BUCKET="${FED_RESULTS_BUCKET:-results}"
REGION="${FED_S3_REGION:-us-east-1}"
PREFIX="bench/many-$COUNT/"

node "$HERE/seed-many.js" "$COUNT" "$BYTES"

WORK="$(mktemp -d "${BENCH_DIR:-/dev/shm}/impact-many-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
source "$HERE/s3-env.sh"
bench_s3_env "$WORK" "$BUCKET" "$REGION"

TOOLS=(impact)
command -v rclone >/dev/null && TOOLS+=(rclone) || echo "rclone is not installed: left out" >&2
command -v aws >/dev/null && TOOLS+=(aws) || echo "aws is not installed: left out" >&2

command_for() {  # command_for TOOL DEST
  case "$1" in
    impact) echo "$IMPACT results download s3://$BUCKET/$PREFIX -o $2" ;;
    rclone) echo "rclone copy fed:$BUCKET/$PREFIX $2 --transfers 64 --checkers 64" ;;
    aws) echo "aws s3 cp --recursive --only-show-errors --endpoint-url $FED_S3_URL s3://$BUCKET/$PREFIX $2" ;;
  esac
}

# measure TOOL RUN: prints "tool first_byte_s total_s rss_kib files"
measure() {
  local tool="$1" dest="$WORK/$1-$2" t0 first="" rc=0
  rm -rf "$dest"; mkdir -p "$dest"
  t0=$(date +%s.%N)
  # shellcheck disable=SC2046
  /usr/bin/time -f '%M' -o "$WORK/rss" $(command_for "$tool" "$dest") >/dev/null 2>"$WORK/err" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ -z "$first" ] && [ -n "$(find "$dest" -type f -size +0c -print -quit 2>/dev/null)" ]; then
      first=$(echo "$(date +%s.%N) - $t0" | bc); break
    fi
    sleep 0.005
  done
  wait "$pid" || rc=$?
  local total; total=$(echo "$(date +%s.%N) - $t0" | bc)
  [ -n "$first" ] || first="$total"
  [ "$rc" = 0 ] || { echo "$tool failed (exit $rc):" >&2; tail -5 "$WORK/err" >&2; }
  local files; files=$(find "$dest" -type f | wc -l)
  echo "$tool $first $total $(tail -1 "$WORK/rss") $files"
  rm -rf "$dest"
}

: > "$WORK/results"
for run in $(seq 1 "$RUNS"); do
  for tool in "${TOOLS[@]}"; do measure "$tool" "$run" | tee -a "$WORK/results" >&2; done
done

node - "$WORK/results" "$COUNT" "$BYTES" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'JS' | tee ${OUT:+"$OUT"}
const fs = require('node:fs');
const [file, count, bytes, load] = process.argv.slice(2);
const rows = {};
for (const line of fs.readFileSync(file, 'utf8').trim().split('\n')) {
  const [tool, first, total, rss, files] = line.split(' ');
  (rows[tool] ||= []).push({ first: +first, total: +total, rss: +rss, files: +files });
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
console.log(`### ${Number(count).toLocaleString('en')} objects of ${bytes} bytes (load average ${load})\n`);
console.log('| tool | first byte on disk (s) | total (s) | peak RSS (MiB) | files | runs |');
console.log('|---|---|---|---|---|---|');
for (const [tool, r] of Object.entries(rows))
  console.log(`| ${tool} | ${median(r.map((x) => x.first)).toFixed(3)} | ${median(r.map((x) => x.total)).toFixed(2)} | ` +
              `${(median(r.map((x) => x.rss)) / 1024).toFixed(1)} | ${median(r.map((x) => x.files))} | ${r.length} |`);
const me = rows.impact;
if (me) {
  const rss = Math.max(...me.map((x) => x.rss)) / 1024;
  console.log(`\nimpact peak RSS ${rss.toFixed(1)} MiB: ${rss <= 64 ? 'met' : 'NOT met'} (<= 64 MiB)`);
  for (const [tool, r] of Object.entries(rows)) {
    if (tool === 'impact') continue;
    const ahead = (k) => median(me.map((x) => x[k])) < median(r.map((x) => x[k]));
    console.log(`ahead of ${tool}: first byte ${ahead('first') ? 'yes' : 'NO'}, total ${ahead('total') ? 'yes' : 'NO'}`);
  }
}
JS
