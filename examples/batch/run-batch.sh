#!/usr/bin/env bash
# One workflow run per row of a sample sheet, at most a few at once, then every sample's results in one table.
#
#   examples/batch/run-batch.sh [SHEET.tsv] [OUT_DIR]      (defaults: samples.tsv next to this script, ./batch-results)
#
# The sheet is tab-separated: line 1 names the workflow's parameters, each further line is one run; a cell that
# is JSON (such as a CWL File object) is passed as JSON. Files named by "location" are sent as attachments, so
# their paths are relative to this folder (where the workflow is). impact keeps a ledger of the batch: run this
# script again after an interruption (Ctrl-C, a lost connection, a killed job) and it resumes where it stopped,
# without submitting any row twice. Exit status: 0 all complete, 6 some runs failed (the others' results are
# downloaded), anything else as impact(1) says.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SHEET="${1:-$HERE/samples.tsv}"
OUT="${2:-batch-results}"

attach=()
while IFS= read -r loc; do attach+=(--attach "$HERE/$loc"); done \
  < <(grep -o '"location": *"[^"]*"' "$SHEET" | sed 's/.*"\([^"]*\)"$/\1/' | sort -u)

set +e
impact run submit "$HERE/count-records.cwl" --batch "$SHEET" --max-in-flight "${MAX_IN_FLIGHT:-2}" \
  "${attach[@]}" --poll-interval "${IMPACT_POLL:-2s}" > "$OUT.runs.tsv"
status=$?
set -e
[ "$status" -eq 0 ] || [ "$status" -eq 6 ] || exit "$status"

# One line per row: ROW <TAB> RUN_ID <TAB> STATE. Fetch each complete run's summary and join them.
mkdir -p "$OUT"
: > "$OUT/summary.tsv"
while IFS=$'\t' read -r row run_id state; do
  if [ "$state" = COMPLETE ]; then
    impact results download "$run_id" -o "$OUT/row-$row" >/dev/null
    cat "$OUT/row-$row/summary.tsv" >> "$OUT/summary.tsv"
  else
    echo "row $row: run $run_id ended $state (see: impact run logs $run_id --stderr)" >&2
  fi
done < "$OUT.runs.tsv"
echo "$(wc -l < "$OUT/summary.tsv") sample(s) summarised in $OUT/summary.tsv" >&2
exit "$status"
