#!/usr/bin/env bash
# The researcher's journey, end to end, on a local federation node started from this repository:
# configure the node, log in, find data, fetch it through DRS, find the analysis in the node's workflow
# registry (GA4GH TRS), run it on WES, bring the results home.
# Works on a fresh Debian bookworm machine as root: it installs what it needs, builds impact, starts the
# federation on loopback, uses it, and stops it again.
#
#   examples/quickstart.sh [--base-port N]      (default 18700)
#   examples/quickstart.sh --registry URL       (a federation that is already running; impact from PATH)
#
# IMPACT_DEMO_DIR=DIR keeps the demo's files (configuration, downloads, results) in DIR afterwards.
# The login is scripted: tests/federation/oidc/approve.js plays the person who opens the URL in a browser.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE=18700
REGISTRY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base-port) BASE="${2:?--base-port needs a number}"; shift 2 ;;
    --registry) REGISTRY="${2:?--registry needs a URL}"; shift 2 ;;
    *) echo "usage: $0 [--base-port N | --registry URL]" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

# A private home for this demo, so your own impact configuration is left alone.
DEMO="${IMPACT_DEMO_DIR:-$(mktemp -d)}"
mkdir -p "$DEMO"
export XDG_CONFIG_HOME="$DEMO/config" XDG_STATE_HOME="$DEMO/state" XDG_CACHE_HOME="$DEMO/cache" XDG_DATA_HOME="$DEMO/data"
STATE="$DEMO/federation"
cleanup() {
  [ -n "$REGISTRY_STARTED" ] && { "$ROOT/tests/federation/down" --state "$STATE" --quiet || true; }
  [ -n "${IMPACT_DEMO_DIR:-}" ] || rm -rf "$DEMO"
}
REGISTRY_STARTED=""
trap cleanup EXIT

if [ -z "$REGISTRY" ]; then
  say "Installing dependencies and building impact"
  "$ROOT/tests/install-deps.sh"
  cmake -S "$ROOT" -B "$ROOT/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$ROOT/build" -j "$(nproc)" >/dev/null
  export PATH="$ROOT/build/cli:$PATH"

  say "Starting a local federation node (identity, beacons, DRS, WES, object storage)"
  REGISTRY_STARTED=1
  "$ROOT/tests/federation/up" --no-install --base-port "$BASE" --state "$STATE"
  REGISTRY="http://127.0.0.1:$BASE"
fi
# shellcheck source=examples/lib/scripted-login.sh
. "$ROOT/examples/lib/scripted-login.sh"

say "1. Configure the node from its GA4GH service registry, and check it"
run impact profile add local --registry "$REGISTRY"
run impact profile show
run impact doctor

say "2. Log in (device flow; here the federation's scripted approval plays the browser)"
printf '$ impact login\n'
scripted_login alice
run impact auth status
run impact passport

say "3. Find data: ask every beacon of the node at once"
run impact search individuals --filter HP:0001250 --granularity count
run impact search datasets

say "4. Fetch the controlled dataset's VCF through DRS, with the passport's visa"
DRS_HOST="$(impact --json profile show | sed -n '/"drs"/,/}/s/.*"https\{0,1\}:\/\/\([^/"]*\).*/\1/p' | head -n1)"
mkdir -p "$DEMO/analysis"
run impact drs download "drs://$DRS_HOST/egad-controlled-1.vcf" -o "$DEMO/analysis/data"
VCF="data/EGAD-CONTROLLED-1.vcf"     # impact names the file after the DRS object's name
printf '{"vcf": {"class": "File", "location": "%s"}}\n' "$VCF" > "$DEMO/analysis/params.json"

say "4b. Fetch controlled files from the node's archive: re-encrypted for your Crypt4GH key, decrypted on the fly"
run impact keys generate demo --no-passphrase
run impact archive datasets
run impact archive download EGAD-CONTROLLED-1 --prefix samples/ -o "$DEMO/archive"

say "4c. Read one region of a genome through htsget: only the blocks that hold it, in order, as one BAM"
run impact htsget reads htsnexus_test_NA12878 --region 11:5000000-5010000 -o "$DEMO/slice.bam"

say "5. Find the analysis in the node's workflow registry (GA4GH TRS) and look at what it holds"
run impact workflow search variants --type CWL
WF='#workflow/github.com/impact-fed/count-variants-multi:main'   # the node's Dockstore-like registry
run impact workflow show "$WF"

say "6. Run it on the node's WES (impact fetches it, verified, and sends it) and wait for the run to end"
printf "\$ impact run submit --trs '%s' --params params.json --attach %s --wait\n" "$WF" "$VCF"
OUT="$(cd "$DEMO/analysis" && impact run submit --trs "$WF" --params params.json --attach "$VCF" \
         --tag example=quickstart --wait --poll-interval 1s)"
printf '%s\n' "$OUT"
RUN_ID="$(printf '%s\n' "$OUT" | head -n1)"
run impact run show "$RUN_ID"

say "7. Bring the non-sensitive results home"
run impact results download "$RUN_ID" -o "$DEMO/results"
run cat "$DEMO/results/counts.tsv" "$DEMO/results/total.txt"

say "8. Log out (the tokens are revoked)"
run impact logout
echo "Done: run $RUN_ID, results in $DEMO/results${IMPACT_DEMO_DIR:+ (kept)}."
