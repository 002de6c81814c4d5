// Peak-EWMA latency estimate and power-of-two-choices selection (the Finagle /
// Linkerd load balancer). The estimate jumps up to any slower observation at
// once ("peak") and decays towards faster ones with time constant tau, so a
// slow endpoint is avoided quickly and trusted again gradually. The cost also
// decays while an endpoint gets no traffic, so an endpoint that once looked
// slow is eventually tried again.

const UNKNOWN_PENALTY = 1e6;

export class PeakEwma {
  #estimateMs: number;
  #stampMs: number;
  readonly #tauMs: number;
  /** Requests sent and not finished. */
  pending = 0;

  constructor(tauMs: number, initialMs: number, nowMs: number) {
    this.#tauMs = tauMs;
    this.#estimateMs = initialMs;
    this.#stampMs = nowMs;
  }

  /** Current estimate, decayed by the time since the last observation. */
  estimate(nowMs: number): number {
    const elapsed = nowMs - this.#stampMs;
    return elapsed <= 0 ? this.#estimateMs : this.#estimateMs * Math.exp(-elapsed / this.#tauMs);
  }

  observe(rttMs: number, nowMs: number): void {
    const rtt = Math.max(rttMs, 0);
    const current = this.estimate(nowMs);
    if (rtt > current) {
      this.#estimateMs = rtt;
    } else {
      const elapsed = Math.max(0, nowMs - this.#stampMs);
      const w = Math.exp(-elapsed / this.#tauMs);
      this.#estimateMs = current * w + rtt * (1 - w);
    }
    this.#stampMs = nowMs;
  }

  /**
   * Load-adjusted cost: latency times the queue it would join. An endpoint
   * with no estimate yet costs nothing while idle (so it is tried), and a large
   * penalty while its first requests are outstanding (so a burst does not all
   * land on an unknown endpoint).
   */
  cost(nowMs: number): number {
    const estimate = this.estimate(nowMs);
    if (estimate === 0) return this.pending === 0 ? 0 : UNKNOWN_PENALTY + this.pending;
    return estimate * (this.pending + 1);
  }
}

export interface HasCost {
  cost(nowMs: number): number;
}

/**
 * Picks two distinct candidates at random and returns the cheaper; with one
 * candidate returns it. `r1`, `r2` are uniform in [0, 1).
 */
export function pickP2C<T>(candidates: readonly T[], costOf: (c: T) => number, r1: number, r2: number): T {
  const n = candidates.length;
  if (n === 1) return candidates[0] as T;
  const i = Math.floor(r1 * n);
  let j = Math.floor(r2 * (n - 1));
  if (j >= i) j++;
  const a = candidates[i] as T;
  const b = candidates[j] as T;
  return costOf(b) < costOf(a) ? b : a;
}
