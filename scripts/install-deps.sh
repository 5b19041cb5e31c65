#!/usr/bin/env bash
# Installs the Debian packages minivm needs to build and test, only when
# something is missing, so it is cheap to call before every build.
set -euo pipefail
pkgs=(meson ninja-build pkg-config gcc clang python3 libglib2.0-dev
      libjson-glib-dev zlib1g-dev libzstd-dev liburing-dev
      libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
