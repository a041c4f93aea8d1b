#!/usr/bin/env bash
# Calling a federation API from other tools with impact's login, without the token ever being an argument
# of a process (where `ps` and /proc/PID/cmdline would show it to every user of the machine).
#
#   examples/token-from-other-tools.sh [URL]     (default: the profile's WES, GET /runs)
#
# `impact token` prints an access token valid for at least --min-valid (default 1m), refreshing it if needed.
set -euo pipefail
URL="${1:-$(impact --json profile show | sed -n 's/^ *"wes": *"\([^"]*\)".*/\1/p')/runs?page_size=1}"

echo "# curl: the header comes from a file descriptor; printf is a shell builtin, so no process gets the token" >&2
curl -sS --fail-with-body -H @<(printf 'Authorization: Bearer %s\n' "$(impact token)") "$URL"
echo

echo "# curl, with a config file on stdin instead" >&2
printf 'header = "Authorization: Bearer %s"\n' "$(impact token)" | curl -sS --fail-with-body -K - "$URL"
echo

echo "# Python requests: the program asks impact itself, and keeps the token in memory" >&2
python3 - "$URL" <<'PY'
import subprocess, sys
import requests

def impact_token(min_valid="1m"):
    return subprocess.run(["impact", "token", "--min-valid", min_valid],
                          check=True, capture_output=True, text=True).stdout.strip()

r = requests.get(sys.argv[1], headers={"Authorization": f"Bearer {impact_token()}"}, timeout=30)
r.raise_for_status()
print(r.text)
PY
