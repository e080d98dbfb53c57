#!/usr/bin/env bash
# Prints the node's parts (binaries, image archives) not yet built for the pinned versions, one a line;
# exits 1 when any is missing. `make node` builds them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
missing=0
for b in "${NODE_BINARIES[@]}"; do [[ -x "$NODE_BIN_DIR/$b" ]] || { echo "$b"; missing=1; }; done
for i in "${NODE_IMAGE_ARCHIVES[@]}"; do [[ -f "$NODE_IMAGE_DIR/$i" ]] || { echo "$i"; missing=1; }; done
exit "$missing"
