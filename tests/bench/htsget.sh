#!/usr/bin/env bash
# impact htsget against Debian's samtools reading the same htsget server (the federation's htsget server,
# tests/federation/htsget/server.js, started here alone in anonymous mode, since htslib sends no token over
# plain http): the whole test BAM, and many regions (impact: one command, one POST ticket; samtools: one
# `samtools view -b URL` per region, as it takes one ticket URL at a time), optionally also for a large BAM
# merged from copies of the test BAM. Target: impact at most 0.7 x samtools' time.
#   tests/bench/htsget.sh [--impact PATH/TO/impact] [--copies N (large BAM of N copies; 0: none)] [--runs N] [--port P]
set -euo pipefail
impact=build/cli/impact
copies=0
runs=3
port=21190
while [ $# -gt 0 ]; do
  case "$1" in
    --impact) impact=$2; shift 2 ;;
    --copies) copies=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    *) echo "usage: $0 [--impact BIN] [--copies N] [--runs N] [--port P]" >&2; exit 2 ;;
  esac
done
root=$(cd "$(dirname "$0")/../.." && pwd)
impact=$(realpath "$impact")
work=$(mktemp -d "${TMPDIR:-/tmp}/impact-bench-htsget-XXXXXX")
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export HOME=$work XDG_DATA_HOME=$work/data-home XDG_CONFIG_HOME=$work/config XDG_STATE_HOME=$work/state XDG_CACHE_HOME=$work/cache
export REF_PATH=/nonexistent REF_CACHE=/nonexistent
mkdir -p "$work/data" "$work/fed/logs"
id=htsnexus_test_NA12878
cp "$root/tests/data/crypt4gh/htsget-rs/plain/$id.bam" "$root/tests/data/htsget/$id.bam.bai" "$work/data/"
ids=("$id")
if [ "$copies" -gt 0 ]; then
  inputs=()
  for _ in $(seq "$copies"); do inputs+=("$work/data/$id.bam"); done
  samtools merge -f -o "$work/data/big.bam" "${inputs[@]}"
  samtools index "$work/data/big.bam"
  ids+=(big)
fi

FED_STATE=$work/fed node "$root/tests/federation/htsget/server.js" --port "$port" --block-port $((port + 1)) \
  --data "$work/data" --anonymous > "$work/server.log" 2>&1 &
server_pid=$!
url=http://127.0.0.1:$port
for _ in $(seq 100); do curl -sf "$url/service-info" > /dev/null && break; sleep 0.1; done
"$impact" profile add bench --htsget "$url" > /dev/null 2>&1

regions=()
for s in $(seq 4999976 5000 5095000); do regions+=("11:$s-$((s + 999))"); done  # 20 regions of 1 kb on 11

# best wall-clock seconds of `runs` runs of the command
best() {
  local b=
  for _ in $(seq "$runs"); do
    local s e t
    s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N)
    t=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f", e - s }')
    b=$(awk -v a="${b:-$t}" -v t="$t" 'BEGIN { print (t < a) ? t : a }')
  done
  echo "$b"
}
samtools_regions() {
  local i=0
  for r in "${regions[@]}"; do
    local chr=${r%%:*} span=${r#*:}
    local s=${span%-*} e=${span#*-}
    samtools view -b -o "$work/s-$i.bam" "$url/reads/$1?referenceName=$chr&start=$((s - 1))&end=$e"
    i=$((i + 1))
  done
}
impact_regions() {
  local args=()
  for r in "${regions[@]}"; do args+=(-r "$r"); done
  "$impact" htsget reads "$1" "${args[@]}" -o "$work/i-regions.bam"
}

printf '%-28s %10s %10s %7s\n' "case" "impact s" "samtools s" "ratio"
for x in "${ids[@]}"; do
  size=$(stat -c %s "$work/data/$x.bam")
  ti=$(best "$impact" htsget reads "$x" -o "$work/i.bam")
  ts=$(best samtools view -b -o "$work/s.bam" "$url/reads/$x")
  printf '%-28s %10s %10s %7s\n' "$x whole ($((size >> 20)) MiB)" "$ti" "$ts" "$(awk -v a="$ti" -v b="$ts" 'BEGIN { printf "%.2f", a / b }')"
  ti=$(best impact_regions "$x")
  ts=$(best samtools_regions "$x")
  printf '%-28s %10s %10s %7s\n' "$x ${#regions[@]} regions" "$ti" "$ts" "$(awk -v a="$ti" -v b="$ts" 'BEGIN { printf "%.2f", a / b }')"
done
# the same records, as a sanity check of what was timed
[ "$(samtools view -c "$work/i.bam")" = "$(samtools view -c "$work/s.bam")" ] || { echo "record counts differ" >&2; exit 1; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
