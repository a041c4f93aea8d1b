#!/bin/sh
# Installs what the WES part needs: Debian's cwltool (the CWL reference runner; all dialects) and
# Debian's snakemake (the WESkit dialect runs Snakemake workflows).
# Idempotent: installs only what is not already on PATH.
set -eu
missing=""
command -v cwltool >/dev/null 2>&1 || missing="$missing cwltool"
command -v snakemake >/dev/null 2>&1 || missing="$missing snakemake"
if [ -z "$missing" ]; then
  echo "wes/install.sh: cwltool ($(cwltool --version 2>/dev/null || true)) and snakemake ($(snakemake --version 2>/dev/null || true)) already installed"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # $missing is a list of package names
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
cwltool --version
snakemake --version
