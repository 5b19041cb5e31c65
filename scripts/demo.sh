#!/usr/bin/env bash
# The minivm demo, from a fresh Debian machine: installs what the build
# needs, builds, then (scripts/demo.py) boots a 1 GiB guest running the a-b
# workload, saves it while it runs to a file with mapped-ram + multifd +
# direct-io, restores it into a new VM, verifies guest memory (per-block
# digests and the a-b checker), lets the restored guest run, and prints
# what it measured.
#
#     scripts/demo.sh                      # RAM=1G CHANNELS=2 BUILD=build
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
step() { printf '\n== %s\n' "$*"; }

step "Dependencies"
scripts/install-deps.sh
step "Build ($BUILD)"
[ -f "$BUILD/build.ninja" ] || ./configure --builddir="$BUILD"
make BUILD="$BUILD" >/dev/null
echo "built $BUILD/minivm"

# The save file goes under the build tree: a disk-backed directory, since
# direct-io needs a file system with O_DIRECT (tmpfs has none).
exec python3 scripts/demo.py "$BUILD" --ram "${RAM:-1G}" \
    --channels "${CHANNELS:-2}" ${DEMO_DIR:+--dir "$DEMO_DIR"}
