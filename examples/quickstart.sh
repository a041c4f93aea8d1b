#!/usr/bin/env bash
# The researcher's journey, end to end, on a local federation node started from this repository.
# Works on a fresh Debian bookworm machine as root: it installs what it needs, builds impact, starts the
# federation on loopback, uses it, and stops it again. It grows as impact's capabilities land.
#
#   examples/quickstart.sh [--base-port N]      (default 18700)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE=18700
[ "${1:-}" = "--base-port" ] && BASE="${2:?--base-port needs a number}"

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "Installing dependencies and building impact"
"$ROOT/tests/install-deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j "$(nproc)" >/dev/null
export PATH="$ROOT/build/cli:$PATH"

# A private home for this demo, so your own impact configuration is left alone.
DEMO="$(mktemp -d)"
export XDG_CONFIG_HOME="$DEMO/config" XDG_STATE_HOME="$DEMO/state" XDG_CACHE_HOME="$DEMO/cache"
STATE="$DEMO/federation"
cleanup() {
  "$ROOT/tests/federation/down" --state "$STATE" --quiet || true
  rm -rf "$DEMO"
}
trap cleanup EXIT

say "Starting a local federation node (identity, beacons, DRS, WES, object storage)"
"$ROOT/tests/federation/up" --no-install --base-port "$BASE" --state "$STATE"
REGISTRY="http://127.0.0.1:$BASE"

say "1. Configure the node from its GA4GH service registry"
run impact profile add local --registry "$REGISTRY"
run impact profile show

say "2. Check that every service is reachable and healthy"
run impact doctor

say "3. What each service says of itself"
run impact service-info

say "Done. Next steps arrive with the following issues: impact login, impact search, impact drs,"
echo "impact run and impact results."
