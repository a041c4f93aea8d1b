#!/usr/bin/env bash
# Builds impact and runs its whole test suite. Works on a fresh Debian bookworm machine as root: it installs
# what it needs (Debian packages, the federation's npm packages from the committed lockfile).
#
#   tests/run.sh            1. clang++ build with ASan+UBSan (and libFuzzer's instrumentation): the unit
#                              tests and the functional CLI suites (label "sanitize"), then every fuzz target;
#                           2. g++ build with -Werror: the unit tests again, optimised, and everything the
#                              first pass did not run: load tests, examples, the federation's own tests, docs,
#                              packaging. Each suite runs once; the two builds are the only ones.
#   IMPACT_SKIP_SANITIZE=1  leave out the first pass; the g++ pass then runs the whole suite (quicker locally)
#   IMPACT_FUZZ_SECONDS=N   how long each fuzz target runs (default 10)
#   IMPACT_FED_BASE_PORT=N  first port of the test federations (default 18500; they use N.. and N+100..)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="$(nproc 2>/dev/null || echo 2)"
BASE_PORT="${IMPACT_FED_BASE_PORT:-18500}"  # the federations: BASE_PORT (g++ pass) and BASE_PORT+100 (sanitizers)

step() { printf '\n== %s\n' "$*"; }

step "Dependencies (Debian packages, the federation's services and npm packages)"
extra=()
[ "${IMPACT_SKIP_SANITIZE:-0}" = 1 ] || extra=(clang libclang-rt-14-dev)
tests/install-deps.sh "${extra[@]}"

if [ "${IMPACT_SKIP_SANITIZE:-0}" != 1 ]; then
  step "clang++ build with AddressSanitizer and UndefinedBehaviorSanitizer (and the libFuzzer targets)"
  cmake -S . -B build-asan -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
        -DIMPACT_WERROR=ON -DIMPACT_SANITIZE=ON -DIMPACT_FUZZ=ON -DIMPACT_FED_BASE_PORT="$((BASE_PORT + 100))" >/dev/null
  cmake --build build-asan -j "$JOBS"
  step "unit and CLI tests under the sanitizers"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L sanitize --output-on-failure --timeout 600
  step "libFuzzer targets, ${IMPACT_FUZZ_SECONDS:-10} s each (longer campaigns: tests/fuzz/README.md)"
  FUZZ_BUILD="$ROOT/build-asan" tests/fuzz/run.sh "${IMPACT_FUZZ_SECONDS:-10}"
fi

step "g++ build with -Werror"
# -O2 as in a release, with line tables only (-g1): full debug information made this build a third slower.
cmake -S . -B build-ci -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DIMPACT_WERROR=ON -DIMPACT_FED_BASE_PORT="$BASE_PORT" >/dev/null
cmake --build build-ci -j "$JOBS"

if [ "${IMPACT_SKIP_SANITIZE:-0}" != 1 ]; then
  step "unit tests, optimised"
  ctest --test-dir build-ci -L unit --output-on-failure --timeout 300
  step "the rest of the suite: load tests, examples, the federation's own tests, docs, packaging"
  ctest --test-dir build-ci -LE sanitize --output-on-failure --timeout 900
else
  step "the whole suite"
  ctest --test-dir build-ci --output-on-failure --timeout 900
fi
