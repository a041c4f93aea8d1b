#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++, ASan+UBSan, in build-fuzz) and runs each for a bounded time on a
# scratch copy of its committed corpus, one target per CPU at a time; then prints executions, speed and the
# outcome of each.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]    default 20; exit status 1 when any target found a problem
#   FUZZ_TARGETS="jwt url" tests/fuzz/run.sh  only these targets
#   FUZZ_BUILD=DIR tests/fuzz/run.sh          use the build folder DIR, already configured with -DIMPACT_FUZZ=ON
#                                             (tests/run.sh passes its sanitizer build: one clang build for both)
#
# Crashing inputs are written to tests/fuzz/artifacts/ in the build folder. The committed corpus never grows.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECONDS_PER_TARGET="${1:-20}"
JOBS="$(nproc 2>/dev/null || echo 2)"
BUILD="${FUZZ_BUILD:-$ROOT/build-fuzz}"

if [ -z "${FUZZ_BUILD:-}" ]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DIMPACT_WERROR=ON -DIMPACT_FUZZ=ON -DIMPACT_BUILD_TESTS=OFF >/dev/null
elif ! grep -q '^IMPACT_FUZZ:BOOL=ON$' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  echo "fuzz/run.sh: $BUILD is not a build folder configured with -DIMPACT_FUZZ=ON" >&2
  exit 2
fi
cmake --build "$BUILD" -j "$JOBS" --target fuzz

out="$BUILD/tests/fuzz"
targets="${FUZZ_TARGETS:-$(sed -n 's/^set(IMPACT_FUZZ_TARGETS \(.*\))$/\1/p' "$ROOT/tests/fuzz/CMakeLists.txt")}"
mkdir -p "$out/artifacts"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# One target per CPU at a time; each writes its own log, and the table follows the targets' order.
fuzz_one() {  # fuzz_one TARGET: runs it on a scratch copy of its corpus; the outcome goes to $out/TARGET.result
  local t="$1" work log dict=()
  work="$(mktemp -d)"
  cp -r "$ROOT/tests/fuzz/corpus/$t/." "$work/"
  [ -f "$ROOT/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/dict/$t.dict")
  log="$out/$t.log"
  if "$out/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$out/artifacts/$t-" "${dict[@]}" "$work" >"$log" 2>&1; then
    echo ok > "$out/$t.result"
  else
    echo "FAILED (see $log)" > "$out/$t.result"
  fi
  rm -rf "$work"
}
export -f fuzz_one
export ROOT SECONDS_PER_TARGET out
rm -f "$out"/*.result
printf '%s\n' $targets | xargs -P "$JOBS" -I{} bash -c 'fuzz_one "$1"' _ {}
failed=0
printf '%-16s %10s %10s  %s\n' target executions exec/s result
for t in $targets; do
  result="$(cat "$out/$t.result" 2>/dev/null || echo "FAILED (did not run)")"
  [ "$result" = ok ] || failed=1
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$t.log" 2>/dev/null)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/$t.log" 2>/dev/null)
  printf '%-16s %10s %10s  %s\n' "$t" "${runs:-?}" "${speed:-?}" "$result"
done
exit "$failed"
