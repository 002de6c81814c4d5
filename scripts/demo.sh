#!/usr/bin/env bash
# The demo: bootstrap, bring the cluster-in-a-box up, install Trellis, deploy
# the faces demo and print the GUI's address; stays in the foreground and
# Ctrl-C tears everything down.
set -euo pipefail
TRELLIS_DEMO_T0_MS="$(date +%s%3N)"
export TRELLIS_DEMO_T0_MS
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec node "$TRELLIS_ROOT/test/demo/demo.ts"
