#!/usr/bin/env bash
# Cluster-in-a-box: scripts/cluster.sh up|down|status|kubeconfig [--nodes N]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec node "$TRELLIS_ROOT/test/cluster/cluster.ts" "$@"
