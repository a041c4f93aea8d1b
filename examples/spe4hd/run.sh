#!/usr/bin/env bash
# SPE4HD runs WESkit: a Snakemake workflow from submission to results on a WESkit server. Submit, wait,
# read the logs, look at the run, and download its outputs, which WESkit hands out as presigned S3 URLs
# (no storage profile or keys needed).
#
#   examples/spe4hd/run.sh [RESULTS_DIR]          (default: results-RUN_ID in the current folder)
#
# Needs a profile whose WES is the WESkit server and a login, e.g.
#   impact profile add spe4hd --issuer https://login.example.org --client-id ID \
#       --wes https://wes.example.org/ga4gh/wes/v1 --default
#   impact login
# (or IMPACT_TOKEN). IMPACT_POLL (default 10s) and IMPACT_TIMEOUT (default 2h) bound the wait.
# What impact does for WESkit — a file: workflow URL, no workflow_engine field, a run_dir tag where the
# server requires one, logs only after completion, presigned outputs — is listed in docs/servers.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { printf '\n# %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "1. Submit the Snakemake workflow with its VCF (both attached, side by side) and wait for it"
printf '$ impact run submit Snakefile --params params.json --attach example.vcf --wait\n'
set +e
OUT="$(impact run submit "$HERE/Snakefile" --params "$HERE/params.json" --attach "$HERE/example.vcf" \
         --tag example=spe4hd --wait --timeout "${IMPACT_TIMEOUT:-2h}" --poll-interval "${IMPACT_POLL:-10s}")"
STATUS=$?
set -e
printf '%s\n' "$OUT"
RUN_ID="$(printf '%s\n' "$OUT" | head -n1)"
[ -n "$RUN_ID" ] || exit "$STATUS"

say "2. Snakemake's log (WESkit serves it once the run is COMPLETE)"
run impact run logs "$RUN_ID" --stderr || true

say "3. The run: state, times, outputs (signatures of the presigned URLs are not shown)"
run impact run show "$RUN_ID"
[ "$STATUS" -eq 0 ] || { echo "run $RUN_ID did not complete (impact exit $STATUS)" >&2; exit "$STATUS"; }

say "4. Download the results from the presigned S3 URLs"
RESULTS="${1:-results-$RUN_ID}"
run impact results download "$RUN_ID" --include 'results/*' -o "$RESULTS"
run cat "$RESULTS/results/counts.tsv" "$RESULTS/results/total.txt"
echo "Done: run $RUN_ID, results in $RESULTS."
