// What the controller knows about each node's agent: connected or not, which
// version it was sent, which it applied, and its last NACK. Read by metrics,
// `trellis status` and (later) canary steps that wait for every agent's ACK.
import type { TableVersion } from "@trellis/api";

export interface NackRecord {
  version: TableVersion;
  reason: string;
  at: number;
}

export interface AgentState {
  node: string;
  connected: boolean;
  /** Pod the agent authenticated as ("ns/name"), when known. */
  pod: string;
  connectedAt: number;
  lastSent?: TableVersion;
  lastSentAt?: number;
  lastAcked?: TableVersion;
  lastAckedAt?: number;
  lastNack?: NackRecord;
}

export function sameVersion(a: TableVersion | undefined, b: TableVersion | undefined): boolean {
  return !!a && !!b && a.epoch === b.epoch && a.number === b.number;
}

export class AgentRegistry {
  #agents = new Map<string, AgentState>();
  #ackWaiters: Array<{ node: string; version: TableVersion; resolve: () => void }> = [];

  connected(node: string, pod: string, now = Date.now()): AgentState {
    const prev = this.#agents.get(node);
    const state: AgentState = { ...(prev ?? { node }), node, pod, connected: true, connectedAt: now };
    this.#agents.set(node, state);
    return state;
  }

  disconnected(node: string): void {
    const s = this.#agents.get(node);
    if (s) s.connected = false;
  }

  sent(node: string, version: TableVersion, now = Date.now()): void {
    const s = this.#agents.get(node);
    if (s) Object.assign(s, { lastSent: version, lastSentAt: now });
  }

  acked(node: string, version: TableVersion, now = Date.now()): void {
    const s = this.#agents.get(node);
    if (!s) return;
    Object.assign(s, { lastAcked: version, lastAckedAt: now });
    this.#ackWaiters = this.#ackWaiters.filter((w) => {
      if (w.node === node && sameVersion(w.version, version)) {
        w.resolve();
        return false;
      }
      return true;
    });
  }

  nacked(node: string, version: TableVersion, reason: string, now = Date.now()): void {
    const s = this.#agents.get(node);
    if (s) s.lastNack = { version, reason, at: now };
  }

  get(node: string): AgentState | undefined {
    return this.#agents.get(node);
  }

  all(): AgentState[] {
    return [...this.#agents.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }

  /** Resolves when `node` ACKs exactly `version` (a canary step waits on this for every node). */
  waitForAck(node: string, version: TableVersion): Promise<void> {
    if (sameVersion(this.#agents.get(node)?.lastAcked, version)) return Promise.resolve();
    return new Promise((resolve) => this.#ackWaiters.push({ node, version, resolve }));
  }
}
