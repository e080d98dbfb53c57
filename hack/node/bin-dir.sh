#!/usr/bin/env bash
# Prints the directory holding the real node's binaries (and images/) for the pinned versions.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "$NODE_BIN_DIR"
