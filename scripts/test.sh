#!/usr/bin/env bash
# The whole test suite: bootstrap, lint, unit, integration and e2e (the last two
# against the cluster-in-a-box, which their vitest global setup brings up and
# tears down). Ends with a plain "N passed, N failed" line.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
set +e
cd "$TRELLIS_ROOT"
out="$TRELLIS_ROOT/.artifacts/test"
rm -rf "$out" && mkdir -p "$out"
status=0

echo "== lint (biome + tsc)"
if pnpm -s lint >"$out/lint.log" 2>&1; then lint_failed=0; echo "lint ok"; else lint_failed=1; status=1; cat "$out/lint.log"; fi

for project in unit lifecycle integration e2e; do
  echo "== $project"
  if [[ "$project" != unit && $(id -u) -ne 0 ]]; then
    echo "SKIP $project: needs root (network namespaces, nftables); run as root"
    continue
  fi
  pnpm exec vitest run --project "$project" --passWithNoTests \
    --reporter=default --reporter=json --outputFile.json="$out/$project.json" || status=1
done

node "$TRELLIS_ROOT/scripts/summarize-tests.ts" "$out" "$lint_failed" || status=1
exit "$status"
