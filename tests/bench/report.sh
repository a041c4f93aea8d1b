#!/usr/bin/env bash
# Runs every benchmark in tests/bench side by side with the peers, in one run against one federation, and
# writes a markdown report of medians and ratios (default tests/bench/REPORT.md).
#
#   tests/federation/up --base-port 19500 --state /tmp/fed                       # or a running federation
#   cmake -S . -B build-rel -G Ninja -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel --target impact
#   tests/bench/report.sh --state /tmp/fed [--runs 5] [--impact build-rel/cli/impact] [--out FILE.md]
#
# Benchmarks: startup.sh (the commands that need no network vs /bin/true, hyperfine), token.js (impact token, cached token, vs aws-cli's credential command), beacon-search.js (16
# beacons in parallel vs 1), drs-download.js (200 objects vs a sequential curl loop), wes-run.test.js
# (run list over 10,000 runs; run wait on 200 runs), drs-vs-results.js (DRS download vs results download of
# the same bytes), run.sh (S3 results download vs curl, rclone, aws-cli), many.sh (100,000 small objects:
# first byte and total time vs rclone and aws-cli, impact's peak RSS). --baseline OLD_PATH measures an
# older build beside the new one in drs-vs-results.js and run.sh.
# Everything stays on 127.0.0.1. The load average is recorded around each benchmark: on a shared machine,
# read the ratios (measured interleaved, under the same load) rather than the absolute times.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
STATE="${FED_STATE:-}"
RUNS=5
IMPACT="$ROOT/build-rel/cli/impact"
OUT="$HERE/REPORT.md"
BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --state) STATE="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --impact) IMPACT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --baseline) BASELINE="$2"; shift 2 ;;
    *) echo "usage: report.sh --state FED_STATE [--runs N] [--impact PATH] [--baseline OLD_PATH] [--out FILE.md]" >&2; exit 2 ;;
  esac
done
[ -f "$STATE/federation.env" ] || { echo "no running federation at '$STATE' (give --state or FED_STATE)" >&2; exit 2; }
[ -x "$IMPACT" ] || { echo "no impact binary at $IMPACT (build Release into build-rel, or pass --impact)" >&2; exit 2; }
IMPACT="$(cd "$(dirname "$IMPACT")" && pwd)/$(basename "$IMPACT")"
set -a; source "$STATE/federation.env"; set +a
export FED_STATE="$STATE" IMPACT_BIN="$IMPACT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/impact-report-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# step NAME COMMAND...: runs one benchmark, its stdout to $WORK/NAME.out, the load average around it to
# $WORK/NAME.load; a failing benchmark (over its own limit) is reported, not fatal.
step() {
  local name="$1"; shift
  echo "== $name" >&2
  local before; before="$(cut -d' ' -f1-3 /proc/loadavg)"
  local t0; t0=$(date +%s)
  if "$@" > "$WORK/$name.out"; then echo 0 > "$WORK/$name.rc"; else echo $? > "$WORK/$name.rc"; fi
  echo "$before|$(cut -d' ' -f1-3 /proc/loadavg)|$(( $(date +%s) - t0 ))" > "$WORK/$name.load"
}
step startup "$HERE/startup.sh" --runs 40 --impact "$IMPACT"
step token node "$HERE/token.js" --runs 30 --bin "$IMPACT"
step beacon node "$HERE/beacon-search.js" --runs 7 --bin "$IMPACT"
step drs node "$HERE/drs-download.js" --runs 3
step wes node --test --test-reporter=tap "$HERE/wes-run.test.js"
step drs_s3 node "$HERE/drs-vs-results.js" --runs 3 ${BASELINE:+--baseline "$BASELINE"}
step s3 "$HERE/run.sh" --runs "$RUNS" --impact "$IMPACT" ${BASELINE:+--baseline "$BASELINE"} --out "$WORK/s3.md"
# Issue 23: 100,000 small objects (MANY_COUNT and MANY_RUNS to change it; seeding them the first time takes
# minutes, and aws-cli needs some 10 minutes a run).
step many "$HERE/many.sh" --count "${MANY_COUNT:-100000}" --runs "${MANY_RUNS:-3}" --impact "$IMPACT" --out "$WORK/many.md"

node "$HERE/report-table.js" "$WORK" "$IMPACT" "$OUT" "$ROOT"
