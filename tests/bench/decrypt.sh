#!/usr/bin/env bash
# `impact decrypt` of 1 GiB against the single-core ChaCha20-Poly1305 throughput `openssl speed` reports for
# 16 KiB blocks on the same machine. Target: ratio >= 0.8. Also prints impact's peak memory (target < 64 MiB).
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
"$impact" keys generate bench --no-passphrase >/dev/null 2>&1
head -c $((size_mib << 20)) /dev/urandom > "$work/plain"
"$impact" encrypt "$work/plain" -r bench -o "$work/plain.c4gh"
rm "$work/plain"
cat "$work/plain.c4gh" > /dev/null  # into the page cache

best=0
peak_kib=0
for _ in $(seq "$runs"); do
  start=$(date +%s.%N)
  /usr/bin/time -f '%M %U %S' -o "$work/rss" "$impact" decrypt "$work/plain.c4gh" --key bench > /dev/null
  end=$(date +%s.%N)
  mbps=$(awk -v b=$((size_mib << 20)) -v s="$start" -v e="$end" 'BEGIN { printf "%.1f", b / (e - s) / 1e6 }')
  best=$(awk -v a="$best" -v b="$mbps" 'BEGIN { print (b > a) ? b : a }')
  read -r rss user sys < "$work/rss"
  [ "$rss" -gt "$peak_kib" ] && peak_kib=$rss
  cpu_mbps=$(awk -v b=$((size_mib << 20)) -v u="$user" -v s="$sys" 'BEGIN { t = u + s; if (t < 0.01) t = 0.01; printf "%.1f", b / t / 1e6 }')
  best_cpu=$(awk -v a="${best_cpu:-0}" -v b="$cpu_mbps" 'BEGIN { print (b > a) ? b : a }')
done

# openssl speed: the 16384-byte column, in 1000s of bytes per second.
openssl_kbps=$(openssl speed -seconds 3 -evp chacha20-poly1305 -bytes 16384 2>/dev/null |
  awk '/^ChaCha20-Poly1305|^chacha20-poly1305/ { v = $NF; sub(/k$/, "", v); print v }' | tail -1)
openssl_mbps=$(awk -v k="$openssl_kbps" 'BEGIN { printf "%.1f", k / 1000 }')
ratio=$(awk -v a="$best" -v b="$openssl_mbps" 'BEGIN { printf "%.2f", a / b }')
echo "impact decrypt ${size_mib} MiB: ${best} MB/s (best of ${runs}), peak RSS $((peak_kib / 1024)) MiB"
echo "openssl speed -evp chacha20-poly1305, 16 KiB blocks, one core: ${openssl_mbps} MB/s"
cpu_ratio=$(awk -v a="$best_cpu" -v b="$openssl_mbps" 'BEGIN { printf "%.2f", a / b }')
echo "ratio: ${ratio} (target >= 0.8); per CPU second (user+sys, robust to a busy machine): ${best_cpu} MB/s, ratio ${cpu_ratio}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
