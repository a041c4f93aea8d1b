#!/usr/bin/env bash
# One containerised step on a GA4GH TES, no workflow needed: count the lines of a local file on the node,
# keep the count in the node's object storage, and bring it home.
#
#   examples/tes/count-lines.sh FILE [OUT_DIR]
#
# Needs a profile with a TES and storage (e.g. `impact profile add local --registry URL`) and a login
# (`impact login`) or IMPACT_TOKEN. RESULTS_BUCKET (default: results) is where the output goes.
# The file travels inside the task (`content`), so keep it small; larger inputs are given by URL
# (`--input URL=PATH`). On the local federation the image is ignored: the command runs without a container.
#
# Exit status: 0 the task COMPLETE and its output downloaded; otherwise `impact task wait`'s
# (10 EXECUTOR_ERROR, 11 SYSTEM_ERROR, 12 CANCELED, 13 PREEMPTED, 8 still running).
set -euo pipefail
FILE="${1:?usage: count-lines.sh FILE [OUT_DIR]}"
OUT="${2:-tes-results}"
BUCKET="${RESULTS_BUCKET:-results}"
KEY="tes-examples/$(date -u +%Y%m%dT%H%M%SZ)-$$/lines.txt"

# The task document: the file as the input's content, one executor, one output to the node's storage.
TASK="$(mktemp)"
trap 'rm -f "$TASK"' EXIT
python3 - "$FILE" "$BUCKET" "$KEY" > "$TASK" <<'PY'
import json, sys
path, bucket, key = sys.argv[1:4]
with open(path, encoding='utf-8') as f:
    content = f.read()
print(json.dumps({
    "name": "count-lines",
    "inputs": [{"path": "/data/input.txt", "content": content}],
    "outputs": [{"path": "/results/lines.txt", "url": f"s3://{bucket}/{key}"}],
    "executors": [{"image": "debian:bookworm-slim",
                   "command": ["/bin/sh", "-c", "wc -l < /data/input.txt > /results/lines.txt && echo counted"]}],
    "resources": {"cpu_cores": 1, "ram_gb": 0.5},
}))
PY

set +e
out="$(impact task submit "$TASK" --tag example=count-lines --wait --timeout 10m --poll-interval 2s)"
status=$?
set -e
printf '%s\n' "$out"
task_id="$(printf '%s\n' "$out" | head -n1)"
if [ "$status" -ne 0 ]; then
  echo "the task did not complete; its stderr:" >&2
  impact task logs "$task_id" --stderr >&2 || true
  exit "$status"
fi
impact task logs "$task_id"
impact results download "s3://$BUCKET/$KEY" -o "$OUT"
echo "lines: $(cat "$OUT/lines.txt")"
