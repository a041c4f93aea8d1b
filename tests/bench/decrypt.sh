#!/usr/bin/env bash
# `impact decrypt` of 1 GiB against the single-core ChaCha20-Poly1305 throughput `openssl speed` reports for
# 16 KiB blocks on the same machine. Target: ratio >= 0.8. Also prints impact's peak memory (target < 64 MiB)
# and how long `impact encrypt` of the same data takes.
# Each round runs openssl speed, then impact decrypt, side by side, so that a machine whose load changes is
# compared with itself; the ratio of every round is printed, and the best.
#   tests/bench/decrypt.sh [--impact PATH/TO/impact] [--size-mib N] [--runs N]
set -euo pipefail
impact=build/cli/impact
size_mib=1024
runs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --impact) impact=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "usage: $0 [--impact BIN] [--size-mib N] [--runs N]" >&2; exit 2 ;;
  esac
done
impact=$(realpath "$impact")
work=$(mktemp -d "${TMPDIR:-/tmp}/impact-bench-c4gh-XXXXXX")
trap 'rm -rf "$work"' EXIT
export HOME=$work XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config XDG_STATE_HOME=$work/state XDG_CACHE_HOME=$work/cache
bytes=$((size_mib << 20))
"$impact" keys generate bench --no-passphrase >/dev/null 2>&1
head -c "$bytes" /dev/urandom > "$work/plain"
cat "$work/plain" > /dev/null  # into the page cache
# Encryption to standard output (no fsync of a file in the figure).
/usr/bin/time -v -o "$work/enc-time" "$impact" encrypt "$work/plain" -r bench > "$work/plain.c4gh"
rm "$work/plain"
cat "$work/plain.c4gh" > /dev/null

field() { awk -F': ' -v k="$1" '$1 ~ k { print $2 }' "$2"; }
seconds() {  # "h:mm:ss" or "m:ss.cc" into seconds
  awk -v t="$1" 'BEGIN { n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }'
}
enc_wall=$(seconds "$(field 'Elapsed \\(wall clock\\)' "$work/enc-time")")
enc_cpu=$(awk -v u="$(field 'User time' "$work/enc-time")" -v s="$(field 'System time' "$work/enc-time")" 'BEGIN { print u + s }')

best=0
best_cpu=0
peak_kib=$(field 'Maximum resident set size' "$work/enc-time")
for round in $(seq "$runs"); do
  # openssl speed: the 16384-byte column, in 1000s of bytes per second (per CPU second of one core).
  openssl_kbps=$(openssl speed -seconds 2 -evp chacha20-poly1305 -bytes 16384 2>/dev/null |
    awk '/^ChaCha20-Poly1305|^chacha20-poly1305/ { v = $NF; sub(/k$/, "", v); print v }' | tail -1)
  openssl_mbps=$(awk -v k="$openssl_kbps" 'BEGIN { printf "%.1f", k / 1000 }')
  /usr/bin/time -v -o "$work/dec-time" "$impact" decrypt "$work/plain.c4gh" --key bench > /dev/null
  wall=$(seconds "$(field 'Elapsed \\(wall clock\\)' "$work/dec-time")")
  cpu=$(awk -v u="$(field 'User time' "$work/dec-time")" -v s="$(field 'System time' "$work/dec-time")" 'BEGIN { print u + s }')
  rss=$(field 'Maximum resident set size' "$work/dec-time")
  [ "$rss" -gt "$peak_kib" ] && peak_kib=$rss
  mbps=$(awk -v b="$bytes" -v s="$wall" 'BEGIN { if (s < 0.01) s = 0.01; printf "%.1f", b / s / 1e6 }')
  cpu_mbps=$(awk -v b="$bytes" -v s="$cpu" 'BEGIN { if (s < 0.01) s = 0.01; printf "%.1f", b / s / 1e6 }')
  ratio=$(awk -v a="$mbps" -v b="$openssl_mbps" 'BEGIN { printf "%.2f", a / b }')
  cpu_ratio=$(awk -v a="$cpu_mbps" -v b="$openssl_mbps" 'BEGIN { printf "%.2f", a / b }')
  echo "round $round: openssl ${openssl_mbps} MB/s; impact decrypt ${mbps} MB/s (${wall} s), ratio ${ratio};" \
       "per CPU second ${cpu_mbps} MB/s, ratio ${cpu_ratio}; peak RSS $((rss / 1024)) MiB; load $(cut -d' ' -f1 /proc/loadavg)"
  best=$(awk -v a="$best" -v b="$ratio" 'BEGIN { print (b > a) ? b : a }')
  best_cpu=$(awk -v a="$best_cpu" -v b="$cpu_ratio" 'BEGIN { print (b > a) ? b : a }')
done
echo "impact decrypt ${size_mib} MiB: best ratio ${best} (target >= 0.8; wall clock, impact may use a second core to read ahead);" \
     "best per CPU second ${best_cpu}; peak RSS $((peak_kib / 1024)) MiB (target < 64)"
echo "impact encrypt ${size_mib} MiB to standard output: $(awk -v b="$bytes" -v s="$enc_wall" 'BEGIN { if (s < 0.01) s = 0.01; printf "%.1f", b / s / 1e6 }') MB/s" \
     "(${enc_wall} s wall, ${enc_cpu} s CPU)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
