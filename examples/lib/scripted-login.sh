# shellcheck shell=bash
# For demos and tests only: `impact login` as a person would do it, with the local federation's scripted
# approval (tests/federation/oidc/approve.js) standing in for the browser. Source this file, then:
#
#   scripted_login USER [impact login options...]
#
# It starts `impact login --no-qr` in the background, reads the user code from its stderr (echoed to ours),
# approves it as USER at the profile's issuer, and returns impact's exit status. Needs node and jq-free bash 5.
scripted_login() {
  local user="$1"; shift
  local root; root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  local issuer; issuer="$(impact --json profile show | sed -n 's/^ *"issuer": *"\([^"]*\)".*/\1/p' | head -n1)"
  [ -n "$issuer" ] || { echo "scripted_login: the profile has no issuer" >&2; return 1; }
  local fd pid line code="" next=0
  exec {fd}< <(impact login --no-qr "$@" 2>&1 >/dev/null)
  pid=$!
  # Every read is bounded in time; the loop ends when impact closes its stderr (it exits).
  while IFS= read -r -t 120 -u "$fd" line; do
    printf '%s\n' "$line" >&2
    if [ -z "$code" ]; then
      if [[ $line =~ enter\ the\ code:[[:space:]]*([^[:space:]]*) ]]; then code="${BASH_REMATCH[1]}"; next=1
      elif [ "$next" = 1 ] && [[ $line =~ ^[[:space:]]*([^[:space:]]+) ]]; then code="${BASH_REMATCH[1]}"; fi
      if [ -n "$code" ]; then
        node "$root/tests/federation/oidc/approve.js" --issuer "$issuer" --user-code "$code" --user "$user" >/dev/null ||
          { echo "scripted_login: approval failed" >&2; kill "$pid" 2>/dev/null; }
      fi
    fi
  done
  exec {fd}<&-
  wait "$pid"
}
