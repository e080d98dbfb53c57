#!/usr/bin/env bash
# Prints the directory holding the control-plane binaries for the pinned versions (for tests and tools).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
echo "$BIN_DIR"
