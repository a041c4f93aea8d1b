#!/bin/sh
# Installs what the WES part needs: Debian's cwltool (the CWL reference runner).
# Idempotent: does nothing when cwltool is already on PATH.
set -eu
if command -v cwltool >/dev/null 2>&1; then
  echo "wes/install.sh: cwltool already installed ($(cwltool --version 2>/dev/null || true))"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends cwltool
cwltool --version
