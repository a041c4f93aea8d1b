#!/usr/bin/env bash
# Builds the libFuzzer targets (clang++, ASan+UBSan, in build-fuzz) and runs each for a bounded time on a
# scratch copy of its committed corpus, then prints executions, speed and the outcome of each.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]    default 20; exit status 1 when any target found a problem
#   FUZZ_TARGETS="jwt url" tests/fuzz/run.sh  only these targets
#
# Crashing inputs are written to build-fuzz/tests/fuzz/artifacts/. The committed corpus never grows here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECONDS_PER_TARGET="${1:-20}"
JOBS="$(nproc 2>/dev/null || echo 2)"
BUILD="$ROOT/build-fuzz"

cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DIMPACT_WERROR=ON -DIMPACT_FUZZ=ON -DIMPACT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS" --target fuzz

out="$BUILD/tests/fuzz"
targets="${FUZZ_TARGETS:-$(sed -n 's/^set(IMPACT_FUZZ_TARGETS \(.*\))$/\1/p' "$ROOT/tests/fuzz/CMakeLists.txt")}"
mkdir -p "$out/artifacts"
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
failed=0
printf '%-16s %10s %10s  %s\n' target executions exec/s result
for t in $targets; do
  work="$(mktemp -d)"
  cp -r "$ROOT/tests/fuzz/corpus/$t/." "$work/"
  dict=(); [ -f "$ROOT/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/dict/$t.dict")
  log="$out/$t.log"
  if "$out/fuzz_$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$out/artifacts/$t-" "${dict[@]}" "$work" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see $log)"
    failed=1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  printf '%-16s %10s %10s  %s\n' "$t" "${runs:-?}" "${speed:-?}" "$result"
  rm -rf "$work"
done
exit "$failed"
