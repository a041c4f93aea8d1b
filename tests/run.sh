#!/usr/bin/env bash
# Builds impact and runs its tests. Works on a fresh Debian bookworm machine as root: it installs what it
# needs (Debian packages, the federation's services and npm packages from the committed lockfile).
#
# Two tiers:
#   tests/run.sh --quick    for development: one g++ build with -Werror at -O1 (in build-quick, kept between
#                           runs, so the next one builds only what changed; through ccache when installed),
#                           then the unit tests, the in-process CLI tests (tests/cli_unit), the CLI suites
#                           that need no federation and the install layout (ctest label "quick"). Installs no
#                           federation services.
#   tests/run.sh            the whole suite, what CI runs (.ci/run):
#                           1. clang++ build with ASan+UBSan (and libFuzzer's instrumentation): the unit
#                              tests and the functional CLI suites (label "sanitize"), then every fuzz target;
#                           2. g++ build with -Werror: the unit tests again, optimised, and everything the
#                              first pass did not run: load tests, examples, the federation's own tests, docs,
#                              packaging. Each suite runs once; the two builds are the only ones.
#                           ctest runs two tests at a time (one per CPU): the CLI suites on the federation
#                           without S3 beside those on the whole one, and beside those that need none; the
#                           federation's own tests that start Ceph RGW run alone (tests/CMakeLists.txt).
#   IMPACT_SKIP_SANITIZE=1  leave out the first pass; the g++ pass then runs the whole suite (quicker locally)
#   IMPACT_FUZZ_SECONDS=N   how long each fuzz target runs (default 10)
#   IMPACT_FED_BASE_PORT=N  first port of the test federations (default 18500; the g++ pass uses N.. and N+50..,
#                           the sanitizer pass N+100.. and N+150..)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="$(nproc 2>/dev/null || echo 2)"
BASE_PORT="${IMPACT_FED_BASE_PORT:-18500}"  # the federations: BASE_PORT (g++ pass) and BASE_PORT+100 (sanitizers)

step() { printf '\n== %s  (at %d s)\n' "$*" "$SECONDS"; }

case "${1:-}" in
  "") ;;
  --quick)
    step "Dependencies (Debian packages; no federation services)"
    tests/install-deps.sh --no-federation
    step "g++ build with -Werror, -O1 (build-quick)"
    launcher=()
    command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    cmake -S . -B build-quick -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DIMPACT_WERROR=ON -DIMPACT_FED_BASE_PORT="$BASE_PORT" \
          ${launcher[@]+"${launcher[@]}"} >/dev/null
    cmake --build build-quick -j "$JOBS"
    step "unit tests, in-process CLI tests, the CLI suites that need no federation"
    ctest --test-dir build-quick -L quick -j "$JOBS" --output-on-failure --timeout 300
    step "done"
    exit 0 ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "run.sh: unknown argument '$1' (tests/run.sh [--quick])" >&2; exit 2 ;;
esac

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
    ctest --test-dir build-asan -L sanitize -j "$JOBS" --output-on-failure --timeout 600
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
  ctest --test-dir build-ci -L unit -j "$JOBS" --output-on-failure --timeout 300
  step "the rest of the suite: load tests, examples, the federation's own tests, docs, packaging"
  ctest --test-dir build-ci -LE sanitize -j "$JOBS" --output-on-failure --timeout 900
else
  step "the whole suite"
  ctest --test-dir build-ci -j "$JOBS" --output-on-failure --timeout 900
fi
step "done"
