#!/usr/bin/env bash
# Installs what s3/start.sh needs (Debian bookworm: Ceph 16.2 monitor, OSD, RGW, CLI tools). Idempotent.
set -euo pipefail
PKGS="ceph-mon ceph-osd radosgw ceph-common curl"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "s3/install.sh: already installed ($PKGS)"
  exit 0
fi
echo "s3/install.sh: installing$missing"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
