#!/usr/bin/env bash
# Start-up benchmark: the commands that need no network on their happy path, side by side with /bin/true in
# one hyperfine run (interleaving is hyperfine's: each command's runs in a row, all in one invocation).
#
#   tests/bench/startup.sh [--runs N] [--impact PATH] [--limit RATIO]
#
# Commands: `impact --version`, `impact --help`, `impact token` and `impact auth status` served from a
# cached, valid login state, and `impact __complete profile` (what a TAB on --profile runs). The home is a
# temporary folder with two profiles whose services are unreachable (127.0.0.1:9, the discard port): none of
# these commands may touch the network. Prints each command's median (ms) and its ratio to /bin/true's;
# and the CPU time it used (user+sys, less sensitive to a busy machine than wall time);
# exits 1 when a ratio is above --limit (default 2, the bound of issue 23), 2 on a usage or set-up error.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
RUNS=40
LIMIT=2
IMPACT="$ROOT/build/cli/impact"
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --impact) IMPACT="$2"; shift 2 ;;
    --limit) LIMIT="$2"; shift 2 ;;
    *) echo "usage: startup.sh [--runs N] [--impact PATH] [--limit RATIO]" >&2; exit 2 ;;
  esac
done
command -v hyperfine >/dev/null || { echo "hyperfine is not installed (apt-get install hyperfine)" >&2; exit 2; }
[ -x "$IMPACT" ] || { echo "no impact binary at $IMPACT (pass --impact)" >&2; exit 2; }
[ "$RUNS" -ge 30 ] || { echo "--runs must be at least 30" >&2; exit 2; }
IMPACT="$(cd "$(dirname "$IMPACT")" && pwd)/$(basename "$IMPACT")"

HOME_DIR="$(mktemp -d "${TMPDIR:-/tmp}/impact-bench-startup-XXXXXX")"
trap 'rm -rf "$HOME_DIR"' EXIT
export HOME="$HOME_DIR" XDG_CONFIG_HOME="$HOME_DIR/config" XDG_STATE_HOME="$HOME_DIR/state" XDG_CACHE_HOME="$HOME_DIR/cache"
unset IMPACT_TOKEN IMPACT_PROFILE IMPACT_CONFIG 2>/dev/null || true
"$IMPACT" profile add local --issuer https://127.0.0.1:9/ --client-id impact-cli --wes https://127.0.0.1:9/ga4gh/wes/v1 >/dev/null
"$IMPACT" profile add other --wes https://127.0.0.1:9/other/ga4gh/wes/v1 >/dev/null
# A login state as `impact login` leaves it, with an access token valid for a year (no refresh needed).
mkdir -p -m 700 "$XDG_STATE_HOME" "$XDG_STATE_HOME/impact" "$XDG_STATE_HOME/impact/tokens"
now="$(date +%s)"
(umask 077; cat > "$XDG_STATE_HOME/impact/tokens/local.json" <<JSON
{"format": 1, "issuer": "https://127.0.0.1:9/", "client_id": "impact-cli", "grant": "device_code",
 "access_token": "bench-access-token", "access_expires": $((now + 365 * 86400)), "access_lifetime": 3600,
 "refresh_token": "", "refresh_expires": 0, "scope": "openid", "subject": "alice", "username": "alice",
 "name": "", "email": "", "passport": "", "passport_expires": 0, "visas": [], "visas_fetched": 0,
 "logged_in": $now, "refreshed": $now}
JSON
)
# Every command must succeed (and the token must come from the state file) before it is timed.
[ "$("$IMPACT" token)" = bench-access-token ] || { echo "impact token did not print the cached token" >&2; exit 2; }
for args in "--version" "--help" "auth status" "__complete profile"; do
  # shellcheck disable=SC2086
  "$IMPACT" $args >/dev/null || { echo "impact $args failed" >&2; exit 2; }
done

JSON_OUT="$HOME_DIR/hyperfine.json"
hyperfine -N --style basic --warmup 5 --runs "$RUNS" --export-json "$JSON_OUT" \
  -n true /bin/true \
  -n version "$IMPACT --version" \
  -n help "$IMPACT --help" \
  -n token "$IMPACT token" \
  -n "auth status" "$IMPACT auth status" \
  -n "complete profile" "$IMPACT __complete profile" >/dev/null

node - "$JSON_OUT" "$LIMIT" "$RUNS" <<'JS'
const fs = require('node:fs');
const [file, limit, runs] = process.argv.slice(2);
const results = JSON.parse(fs.readFileSync(file, 'utf8')).results;
const ms = (r) => r.median * 1000;
const base = ms(results.find((r) => r.command === 'true'));
let over = false;
console.log(`startup, median of ${runs} runs (hyperfine -N), load ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
console.log('| command | median ms | x /bin/true | CPU ms (user+sys, mean) |');
console.log('|---|---:|---:|---:|');
for (const r of results) {
  const ratio = ms(r) / base;
  if (r.command !== 'true' && ratio > Number(limit)) over = true;
  console.log(`| ${r.command === 'true' ? '/bin/true' : 'impact ' + (r.command === 'version' ? '--version' : r.command === 'help' ? '--help' : r.command === 'complete profile' ? '__complete profile' : r.command)} | ${ms(r).toFixed(2)} | ${ratio.toFixed(2)} | ${((r.user + r.system) * 1000).toFixed(2)} |`);
}
if (over) { console.log(`a command is above ${limit}x /bin/true`); process.exit(1); }
JS
