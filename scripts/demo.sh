#!/usr/bin/env bash
# The demo: bootstrap, bring the cluster-in-a-box up, stay in the foreground;
# Ctrl-C tears everything down.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec node "$TRELLIS_ROOT/test/demo/demo.ts"
