// Per-backend request counters for the controller (agent.proto BackendStats):
// requests, failures and a latency histogram per backend id, reported as
// deltas since the last report so the controller can add up every agent's
// windows. record() runs once per request: a map lookup, a short bucket scan
// and three increments; nothing is allocated once a backend has been seen.
import type { BackendCounters, BackendStats } from "@trellis/api";

/** Upper bounds (ms, inclusive) of the latency buckets; a last bucket holds slower requests. */
export const LATENCY_BOUNDS_MS: readonly number[] = [
  1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];

class Counters {
  requests = 0;
  failures = 0;
  readonly latency: number[] = new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);
}

export class BackendStatsRecorder {
  readonly #byBackend = new Map<string, Counters>();
  #windowStart: number;

  constructor(now = Date.now()) {
    this.#windowStart = now;
  }

  /** One finished request to `backendId`: failed when the answer was a 5xx, a gRPC status other than OK, a connect failure or a timeout. */
  record(backendId: string, failed: boolean, ms: number): void {
    let c = this.#byBackend.get(backendId);
    if (c === undefined) {
      c = new Counters();
      this.#byBackend.set(backendId, c);
    }
    c.requests++;
    if (failed) c.failures++;
    const bounds = LATENCY_BOUNDS_MS;
    let i = 0;
    while (i < bounds.length && ms > (bounds[i] as number)) i++;
    (c.latency[i] as number)++;
  }

  /** Adds a window another recorder took (a proxy worker's), bucket for bucket. */
  add(stats: BackendStats): void {
    for (const b of stats.backends) {
      let c = this.#byBackend.get(b.backendId);
      if (c === undefined) {
        c = new Counters();
        this.#byBackend.set(b.backendId, c);
      }
      c.requests += b.requests;
      c.failures += b.failures;
      for (let i = 0; i < c.latency.length; i++) (c.latency[i] as number) += b.latencyCounts[i] ?? 0;
    }
  }

  /**
   * The counts since the last call (undefined when no request finished) and a
   * new window. Backends without requests in the window are forgotten, so
   * backends that left the table do not accumulate.
   */
  take(now = Date.now()): BackendStats | undefined {
    const backends: BackendCounters[] = [];
    for (const [backendId, c] of this.#byBackend) {
      if (c.requests === 0) {
        this.#byBackend.delete(backendId);
        continue;
      }
      backends.push({
        backendId,
        requests: c.requests,
        failures: c.failures,
        latencyCounts: c.latency.slice(),
      });
      c.requests = 0;
      c.failures = 0;
      c.latency.fill(0);
    }
    const start = this.#windowStart;
    this.#windowStart = now;
    if (backends.length === 0) return undefined;
    backends.sort((a, b) => (a.backendId < b.backendId ? -1 : a.backendId > b.backendId ? 1 : 0));
    return {
      windowStartUnixMs: start,
      windowEndUnixMs: now,
      latencyBoundsMs: [...LATENCY_BOUNDS_MS],
      backends,
    };
  }
}
