#!/bin/bash
#SBATCH --job-name=impact-count-variants
#SBATCH --time=48:00:00
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --output=impact-%j.out
#
# A long analysis on the federation's WES, driven from an HPC login node's batch system. Before anything
# else it checks that the login (refresh token) and the passport's visas stay valid for the whole job:
# a job that would lose its credentials half-way fails at once, with exit 4 and a hint: "run: impact login",
# or, when the identity provider's sessions are shorter than the job, what can be done instead.
# At the end it downloads the run's results next to the job.
#
#   impact login                          # once, on the login node (device flow, no browser needed there)
#   sbatch examples/hpc/slurm-job.sh WORKFLOW PARAMS.json [ATTACHMENT...]
#
# Environment: IMPACT_PROFILE (which node), IMPACT_MIN_VALID (default 48h, as --time above),
# RESULTS_DIR (default ./results-<run id>). Works as a plain shell script too (the #SBATCH lines are comments).
set -euo pipefail
WORKFLOW="${1:?usage: slurm-job.sh WORKFLOW PARAMS.json [ATTACHMENT...]}"
PARAMS="${2:?usage: slurm-job.sh WORKFLOW PARAMS.json [ATTACHMENT...]}"
shift 2
MIN_VALID="${IMPACT_MIN_VALID:-48h}"

echo "job ${SLURM_JOB_ID:-(not under SLURM)} on $(hostname): checking the login stays valid for $MIN_VALID"
impact auth status --min-valid "$MIN_VALID"    # exit 4 (with a hint) if it would not: nothing is submitted

attach=()
for f in "$@"; do attach+=(--attach "$f"); done
# Submit first, so the job log names the run at once, then wait. The exit code of the wait tells how the run
# ended (0 COMPLETE, 10 EXECUTOR_ERROR, 11 SYSTEM_ERROR, 12 CANCELED, 13 PREEMPTED).
run_id="$(impact run submit "$WORKFLOW" --params "$PARAMS" "${attach[@]}" --tag "slurm_job=${SLURM_JOB_ID:-none}")"
echo "submitted run $run_id (from another shell: impact run logs $run_id --stderr --follow)"
status=0
impact run wait "$run_id" --poll-interval "${IMPACT_POLL:-30s}" || status=$?
if [ "$status" -ne 0 ]; then
  echo "run $run_id did not complete (exit $status); its log: impact run logs $run_id --stderr" >&2
  exit "$status"
fi

dest="${RESULTS_DIR:-results-$run_id}"
impact results download "$run_id" -o "$dest"
echo "results of run $run_id in $dest"
