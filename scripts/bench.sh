#!/usr/bin/env bash
# All benchmarks (never part of the test suite): the controller's recompute
# benchmark and the agent's data-plane benchmark against direct and HAProxy
# baselines measured in the same run. Results: packages/*/bench/results/.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$TRELLIS_ROOT"
echo "== controller: recompute and memory (packages/controller/bench/results/)"
node packages/controller/bench/run.ts
echo "== agent: throughput, added latency, memory vs direct and HAProxy (packages/node-agent/bench/results/)"
node packages/node-agent/bench/run.ts
echo "== agent with --workers 2 vs HAProxy with 2 threads (packages/node-agent/bench/results/agent-bench-workers-2.*)"
node packages/node-agent/bench/run.ts --workers 2
echo "== agent: nftables capture programming (packages/node-agent/bench/results/)"
node packages/node-agent/bench/capture.ts
echo "== cni-shim: CNI ADD latency with the shim vs a no-op plugin (packages/cni-shim/bench/results/)"
node packages/cni-shim/bench/add-latency.ts
echo "== controller: table propagation to 100 agents, deltas vs full tables (packages/controller/bench/results/)"
node packages/controller/bench/propagation.ts
