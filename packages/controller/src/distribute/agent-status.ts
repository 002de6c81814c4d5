// One row per node for `trellis status`: the version the controller wants the
// node to serve, what its agent last applied, how long it has been behind, and
// its last NACK. Pure, so the CLI and tests read the same thing.
import type { TableVersion } from "@trellis/api";
import { type AgentState, sameVersion } from "./agent-registry.ts";

export interface AgentStatusRow {
  node: string;
  desired: string;
  applied: string;
  connected: boolean;
  pod: string;
  /** ms since the desired version was sent and not yet ACKed; 0 when in sync. */
  lagMs: number;
  lastNack?: { version: string; reason: string; ageMs: number };
}

const fmt = (v: TableVersion | undefined) => (v ? `${v.epoch}.${v.number}` : "-");

export function agentStatusRows(
  tables: { nodes(): string[]; table(node: string): { table: { version?: TableVersion } } | undefined },
  agents: readonly AgentState[],
  now: number,
): AgentStatusRow[] {
  const byNode = new Map(agents.map((a) => [a.node, a]));
  const nodes = [...new Set([...tables.nodes(), ...byNode.keys()])].sort();
  return nodes.map((node) => {
    const desired = tables.table(node)?.table.version;
    const a = byNode.get(node);
    const inSync = sameVersion(desired, a?.lastAcked);
    return {
      node,
      desired: fmt(desired),
      applied: fmt(a?.lastAcked),
      connected: a?.connected ?? false,
      pod: a?.pod ?? "",
      lagMs: inSync || !a?.lastSentAt ? 0 : now - a.lastSentAt,
      ...(a?.lastNack
        ? {
            lastNack: {
              version: fmt(a.lastNack.version),
              reason: a.lastNack.reason,
              ageMs: now - a.lastNack.at,
            },
          }
        : {}),
    };
  });
}
