#!/usr/bin/env bash
# Installs the Debian packages the real node needs (lib.sh NODE_APT_PACKAGES) when any is missing.
# CI starts from a fresh machine, so the scripts do this themselves.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
missing=()
for p in "${NODE_APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0
echo "installing Debian packages: ${missing[*]}"
apt=(apt-get -q -o DPkg::Lock::Timeout=300)
[[ $(id -u) == 0 ]] || apt=(sudo "${apt[@]}")
"${apt[@]}" update >/dev/null
DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
