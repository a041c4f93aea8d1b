#!/usr/bin/env bash
# The CI step: submit a workflow to the federation's WES, wait for it, fail the pipeline if the run fails,
# and keep the results as the job's artifacts. Called by .gitlab-ci.yml and github-actions.yml here.
#
#   examples/ci/submit-and-check.sh WORKFLOW [PARAMS.json] [ATTACHMENT...]
#
# Credentials (from the CI system's masked secrets, never on a command line):
#   IMPACT_TOKEN            a bearer token to use as is, or
#   IMPACT_CLIENT_SECRET    the secret of a confidential OIDC client: `impact login --client-credentials`
# Node: IMPACT_REGISTRY (a GA4GH service registry; a profile "ci" is made from it unless one exists),
# IMPACT_CLIENT_ID (default impact-ci). RESULTS_DIR (default results), IMPACT_TIMEOUT (default 2h).
#
# Exit status: 0 the run COMPLETE and its results downloaded; otherwise impact's: 10 EXECUTOR_ERROR,
# 11 SYSTEM_ERROR, 12 CANCELED, 13 PREEMPTED, 8 still running at the timeout, 4 credentials refused, ...
set -euo pipefail
WORKFLOW="${1:?usage: submit-and-check.sh WORKFLOW [PARAMS.json] [ATTACHMENT...]}"
PARAMS="${2:-}"
shift $(( $# >= 2 ? 2 : 1 ))

if ! impact profile show >/dev/null 2>&1; then
  : "${IMPACT_REGISTRY:?set IMPACT_REGISTRY (or configure a profile) to say which node to use}"
  impact profile add ci --registry "$IMPACT_REGISTRY" --client-id "${IMPACT_CLIENT_ID:-impact-ci}" --default
fi
if [ -z "${IMPACT_TOKEN:-}" ]; then
  : "${IMPACT_CLIENT_SECRET:?set IMPACT_TOKEN or IMPACT_CLIENT_SECRET as a masked CI secret}"
  impact login --client-credentials
fi

args=(run submit "$WORKFLOW" --tag "ci_pipeline=${CI_PIPELINE_ID:-${GITHUB_RUN_ID:-local}}" --wait
      --timeout "${IMPACT_TIMEOUT:-2h}" --poll-interval "${IMPACT_POLL:-10s}")
[ -n "$PARAMS" ] && args+=(--params "$PARAMS")
for f in "$@"; do args+=(--attach "$f"); done

set +e
out="$(impact "${args[@]}")"
status=$?
set -e
printf '%s\n' "$out"
run_id="$(printf '%s\n' "$out" | head -n1)"
if [ "$status" -ne 0 ]; then
  echo "::error::run ${run_id:-(none)} failed (impact exit $status)" >&2
  if [ -n "$run_id" ]; then impact run logs "$run_id" --stderr | tail -n 40 >&2 || true; fi
  exit "$status"
fi
impact results download "$run_id" -o "${RESULTS_DIR:-results}"
