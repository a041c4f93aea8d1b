#!/usr/bin/env bash
# Installs what building impact and running the local federation need, on Debian bookworm as root.
# Idempotent: packages already installed are not touched. Used by tests/run.sh and examples/quickstart.sh.
#
#   tests/install-deps.sh [--no-federation] [PACKAGE...]   PACKAGEs: more Debian packages; --no-federation:
#                                                         leave out the federation's services (Ceph RGW,
#                                                         cwltool, npm packages), as tests/run.sh --quick does
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive
federation=1
if [ "${1:-}" = --no-federation ]; then federation=0; shift; fi

packages=(build-essential cmake ninja-build pkg-config
          libcli11-dev nlohmann-json3-dev libfmt-dev libssl-dev libcurl4-openssl-dev doctest-dev
          libtomlplusplus-dev libqrencode-dev libpugixml-dev libjq-dev util-linux zsh fish procps
          curl python3-requests python3-cryptography mandoc dpkg-dev lintian samtools bcftools "$@")
command -v node >/dev/null 2>&1 || packages+=(nodejs)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v npm >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends npm >/dev/null

# The federation's services: Ceph RGW, cwltool, and the npm packages from the committed lockfile.
[ "$federation" = 1 ] || exit 0
for script in "$ROOT"/tests/federation/*/install.sh; do
  [ -f "$script" ] && bash "$script"
done
if [ ! -d "$ROOT/tests/federation/node_modules" ] || \
   [ "$ROOT/tests/federation/package-lock.json" -nt "$ROOT/tests/federation/node_modules/.package-lock.json" ]; then
  (cd "$ROOT/tests/federation" && npm ci --no-audit --no-fund --loglevel=error)
fi
