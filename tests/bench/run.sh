#!/usr/bin/env bash
# Download benchmark against the local federation's RGW (loopback only): impact vs aws-cli, rclone, curl.
#
#   source $FED_STATE/federation.env          # a running federation (tests/federation/up)
#   tests/bench/run.sh [--runs N] [--impact PATH] [--baseline OLD_PATH] [--out FILE.md]
#
# Cases (seeded by seed.js into the results bucket): one 1 GiB object; 1,000 objects of 64 KiB.
# Every tool writes to a fresh folder in $BENCH_DIR (default /dev/shm) except the curl baseline for the big
# object, which writes to /dev/null (as the issue's figures do). Wall time and peak RSS come from GNU time; the table
# shows the median of N runs and impact's ratio to each peer. Tools that are not installed are skipped.
# --baseline measures a second impact binary (an older build) in the same interleaved loop: "before" and
# "after" under the same load, and the check that no speed was lost (within 5%).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUNS=5
IMPACT="$ROOT/build-rel/cli/impact"
OUT=""
BASELINE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --impact) IMPACT="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --baseline) BASELINE="$2"; shift 2 ;;
    *) echo "usage: run.sh [--runs N] [--impact PATH] [--baseline OLD_PATH] [--out FILE.md]" >&2; exit 2 ;;
  esac
done
: "${FED_S3_URL:?source \$FED_STATE/federation.env first}"
[ -x "$IMPACT" ] || { echo "no impact binary at $IMPACT (build Release into build-rel, or pass --impact)" >&2; exit 2; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "no baseline binary at $BASELINE" >&2; exit 2; }
case "$FED_S3_URL" in http://127.0.0.1:*|http://localhost:*) ;; *) echo "FED_S3_URL must be loopback" >&2; exit 2 ;; esac
BUCKET="${FED_RESULTS_BUCKET:-results}"
REGION="${FED_S3_REGION:-us-east-1}"

node "$HERE/seed.js"

# Destinations on tmpfs by default: on a shared VM the disk's writeback, not the tools, sets the pace
# (4 curls writing 1 GiB to /tmp took 65 s here, to /dev/null 8 s). BENCH_DIR=/some/disk to measure a disk.
WORK="$(mktemp -d "${BENCH_DIR:-/dev/shm}/impact-bench-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
source "$HERE/s3-env.sh"
bench_s3_env "$WORK" "$BUCKET" "$REGION"

CURL_AUTH=(--aws-sigv4 "aws:amz:$REGION:s3" --user "$FED_S3_ACCESS_KEY:$FED_S3_SECRET_KEY"
           -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -sf)
BIG_URL="$FED_S3_URL/$BUCKET/bench/big.bin"
BIG_SIZE=$(curl "${CURL_AUTH[@]}" -I "$BIG_URL" | tr -d '\r' | awk 'tolower($1)=="content-length:"{print $2}')
SMALL_KEYS="$WORK/small-keys"
"$IMPACT" results ls "s3://$BUCKET/bench/small/" | cut -f1 > "$SMALL_KEYS"

# curl baselines: 4 range requests for the big object (to /dev/null); 16 curl processes for the small ones,
# each fetching its share over one connection (a curl config file of url/output pairs), to files.
Q=$(( (BIG_SIZE + 3) / 4 ))
for i in 0 1 2 3; do
  printf 'url = "%s"\nrange = "%d-%d"\noutput = "/dev/null"\n' "$BIG_URL" $((i * Q)) $(( (i + 1) * Q - 1 )) > "$WORK/big-$i.curl"
done
split -n l/16 -d "$SMALL_KEYS" "$WORK/small-part-"
for f in "$WORK"/small-part-*; do
  awk -v u="$FED_S3_URL/$BUCKET/" '{n = split($0, p, "/"); printf "url = \"%s%s\"\noutput = \"%s\"\n", u, $0, p[n]}' "$f" > "$f.curl"
done
parallel_curl() {  # parallel_curl DEST CONFIG...
  local dest="$1" pids=() f rc=0
  shift
  mkdir -p "$dest"
  for f in "$@"; do (cd "$dest" && exec curl "${CURL_AUTH[@]}" -K "$f") & pids+=($!); done
  for f in "${pids[@]}"; do wait "$f" || rc=1; done
  return $rc
}

declare -A NAME CMD
ORDER=()
add() {  # add ID LABEL COMMAND   (ID starts with big_ or small_; COMMAND writes into "$D")
  NAME[$1]="$2"; CMD[$1]="$3"; ORDER+=("$1")
}
add big_impact "impact results download" '"$IMPACT" results download "s3://$BUCKET/bench/big.bin" -o "$D" >/dev/null'
add big_curl4 "curl, 4 parallel ranges to /dev/null" 'parallel_curl "$D" "$WORK"/big-?.curl'
# Not a download: the MD5 of the object's bytes already in memory (tmpfs), which verifying a single-part ETag
# costs at the least. MD5 cannot be split across cores, so no verifying client finishes sooner than this.
curl "${CURL_AUTH[@]}" -o "$WORK/big.copy" "$BIG_URL"
add big_md5 "reference, not a download: MD5 of the same bytes from tmpfs (openssl dgst -md5)" \
  'openssl dgst -md5 "$WORK/big.copy" >/dev/null'
add small_impact "impact results download" '"$IMPACT" results download "s3://$BUCKET/bench/small/" -o "$D" >/dev/null'
if [ -n "$BASELINE" ]; then
  add big_baseline "baseline: impact results download ($("$BASELINE" --version | head -1))" \
    '"$BASELINE" results download "s3://$BUCKET/bench/big.bin" -o "$D" >/dev/null'
  add small_baseline "baseline: impact results download ($("$BASELINE" --version | head -1))" \
    '"$BASELINE" results download "s3://$BUCKET/bench/small/" -o "$D" >/dev/null'
fi
add small_curl16 "curl, 16 parallel processes" 'parallel_curl "$D" "$WORK"/small-part-??.curl'
if command -v rclone >/dev/null; then
  add big_rclone "rclone copy (defaults) $(rclone version 2>/dev/null | head -1 | cut -d' ' -f2)" \
    'rclone copy "fed:$BUCKET/bench/big.bin" "$D"'
  add small_rclone32 "rclone copy --transfers 32 $(rclone version 2>/dev/null | head -1 | cut -d' ' -f2)" \
    'rclone copy --transfers 32 --checkers 32 "fed:$BUCKET/bench/small" "$D"'
fi
if command -v aws >/dev/null; then
  V="$(aws --version 2>&1 | cut -d' ' -f1)"
  add big_aws "aws s3 cp ($V)" 'aws --endpoint-url "$FED_S3_URL" s3 cp --quiet "s3://$BUCKET/bench/big.bin" "$D/"'
  add small_aws "aws s3 cp --recursive ($V)" \
    'aws --endpoint-url "$FED_S3_URL" s3 cp --quiet --recursive "s3://$BUCKET/bench/small/" "$D/"'
fi

# The storage's own CPU time (mon, OSD, RGW; utime + stime of each process, all threads) around every run:
# on a machine where the server shares the cores with the client, it sets a floor under every tool's time.
SERVER_PIDS="$(node -e 'const s = require(process.argv[1]); console.log(s.pids.join(" "))' "$FED_STATE/s3.json" 2>/dev/null || true)"
server_ticks() {
  local t=0 p f
  for p in $SERVER_PIDS; do
    [ -r "/proc/$p/stat" ] || continue
    f=$(sed 's/^.*) //' "/proc/$p/stat")  # fields after "(comm) ": state is 3rd field, utime 14th, stime 15th
    set -- $f
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
TICK=$(getconf CLK_TCK)

export IMPACT BASELINE WORK BUCKET FED_S3_URL
PRELUDE="$(declare -f parallel_curl); $(declare -p CURL_AUTH)"
# Runs interleave the tools (run 1 of each, then run 2 of each, ...), so a slow moment hits all of them.
for r in $(seq "$RUNS"); do
  for id in "${ORDER[@]}"; do
    D="$WORK/dest-$id"
    rm -rf "$D"; mkdir -p "$D"
    before=$(server_ticks)
    if D="$D" /usr/bin/time -f '%e %M %U %S' -o "$WORK/$id.one" bash -c "$PRELUDE; ${CMD[$id]}"; then
      echo "$(cat "$WORK/$id.one") $(awk -v a="$before" -v b="$(server_ticks)" -v t="$TICK" 'BEGIN{printf "%.2f", (b - a) / t}')" >> "$WORK/$id.times"
      echo "run $r: $id $(cat "$WORK/$id.one")" >&2
    else
      echo "run $r: $id FAILED" >&2
    fi
    rm -rf "$D"
  done
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else if (NR % 2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
target() {  # target LABEL IMPACT_ID PEER_ID FACTOR: whether impact's median is within FACTOR x the peer's
  if [ ! -s "$WORK/$2.times" ] || [ ! -s "$WORK/$3.times" ]; then echo "- $1: not measured"; return; fi
  awk -v a="$(cut -d' ' -f1 "$WORK/$2.times" | median)" -v b="$(cut -d' ' -f1 "$WORK/$3.times" | median)" -v f="$4" -v l="$1" \
    'BEGIN {printf "- %s: %.2f s against %.2f s (%.2f x): %s\n", l, a, f * b, a / b, (a <= f * b ? "met" : "NOT met")}'
}
report() {
  echo "Download benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs each, median."
  echo "RGW at $FED_S3_URL (loopback). Ratio = impact's median time / the tool's median time."
  for c in big small; do
    echo
    [ "$c" = big ] && echo "### One object of $BIG_SIZE bytes" || echo "### $(wc -l < "$SMALL_KEYS") objects of 64 KiB"
    echo
    echo "| tool | median wall s | min s | max s | median peak RSS MiB | median client CPU s | median server CPU s | CPU floor s | impact / tool |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    local mine
    mine=$(cut -d' ' -f1 "$WORK/${c}_impact.times" 2>/dev/null | median)
    for id in "${ORDER[@]}"; do
      [ "${id%%_*}" = "$c" ] || continue
      [ -s "$WORK/$id.times" ] || { echo "| ${NAME[$id]} | failed | | | | | | | |"; continue; }
      local t mn mx rss cpu srv
      t=$(cut -d' ' -f1 "$WORK/$id.times" | median)
      mn=$(cut -d' ' -f1 "$WORK/$id.times" | sort -n | head -1)
      mx=$(cut -d' ' -f1 "$WORK/$id.times" | sort -n | tail -1)
      rss=$(cut -d' ' -f2 "$WORK/$id.times" | median | awk '{printf "%.1f", $1/1024}')
      cpu=$(awk '{print $3 + $4}' "$WORK/$id.times" | median)
      srv=$(awk '{print $5}' "$WORK/$id.times" | median)
      echo "| ${NAME[$id]} | $t | $mn | $mx | $rss | $cpu | $srv | $(awk -v a="$cpu" -v b="$srv" -v n="$(nproc)" 'BEGIN{printf "%.2f", (a + b) / n}') | $(awk -v a="$mine" -v b="$t" 'BEGIN{printf "%.2f", a/b}') |"
    done
  done
  echo
  echo "Targets (issue 7), on medians:"
  target "1 GiB, at most 0.75 x rclone" big_impact big_rclone 0.75
  target "1 GiB, at most 1.1 x four curls to /dev/null" big_impact big_curl4 1.1
  if [ -s "$WORK/big_impact.times" ]; then
    cut -d' ' -f2 "$WORK/big_impact.times" | median |
      awk '{printf "- 1 GiB, peak RSS at most 32 MiB: %.1f MiB: %s\n", $1 / 1024, ($1 <= 32768 ? "met" : "NOT met")}'
  fi
  target "1,000 x 64 KiB, at most 0.6 x rclone --transfers 32" small_impact small_rclone32 0.6
  target "1,000 x 64 KiB, no slower than 16 curls" small_impact small_curl16 1.0
  if [ -n "$BASELINE" ]; then
    target "1 GiB, within 5% of the baseline build" big_impact big_baseline 1.05
    target "1,000 x 64 KiB, within 5% of the baseline build" small_impact small_baseline 1.05
  fi
  echo
  echo "CPU floor: (client CPU + server CPU) / $(nproc) CPUs, the least wall time the work could take on this machine"
  echo "when client and storage share its cores; a tool whose wall time is near its floor is bound by CPU, not by"
  echo "waiting."
}
if [ -n "$OUT" ]; then report | tee "$OUT"; else report; fi
