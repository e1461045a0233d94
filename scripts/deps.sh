#!/usr/bin/env bash
# Installs the Debian packages tether's build, tests and demo need, if any is missing.
# Usage: scripts/deps.sh   (as root on Debian 12; a no-op when everything is present)
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config clang
          libboost-dev nlohmann-json3-dev catch2 libbenchmark-dev
          libsqlite3-dev libcpp-httplib-dev libcli11-dev libjwt-dev libssl-dev
          libpq-dev postgresql-15)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
