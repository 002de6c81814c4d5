// A short rolling window of per-backend traffic, summed over every agent's
// reports. Agents send deltas per window, so summing is exact; the canary
// analysis reads totals, error rate and a latency quantile from here.
import type { BackendStats } from "@trellis/api";

interface Sample {
  at: number;
  bounds: readonly number[];
  requests: number;
  failures: number;
  counts: readonly number[];
}

export interface BackendSummary {
  backendId: string;
  requests: number;
  failures: number;
  /** Upper bound (ms) of the bucket holding the 99th percentile; Infinity when in the overflow bucket. */
  p99Ms: number | undefined;
}

export class BackendStatsWindow {
  readonly windowMs: number;
  #samples = new Map<string, Sample[]>();

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  add(report: BackendStats, now = Date.now()): void {
    for (const b of report.backends) {
      const list = this.#samples.get(b.backendId) ?? [];
      list.push({
        at: now,
        bounds: report.latencyBoundsMs,
        requests: b.requests,
        failures: b.failures,
        counts: b.latencyCounts,
      });
      this.#samples.set(b.backendId, list);
    }
    this.#prune(now);
  }

  summary(backendId: string, now = Date.now()): BackendSummary {
    this.#prune(now);
    const samples = this.#samples.get(backendId) ?? [];
    let requests = 0;
    let failures = 0;
    // Reports with different bucket layouts cannot be merged; use the newest layout.
    const bounds = samples.at(-1)?.bounds ?? [];
    const counts = new Array<number>(bounds.length + 1).fill(0);
    for (const s of samples) {
      requests += s.requests;
      failures += s.failures;
      if (s.bounds.length === bounds.length && s.bounds.every((v, i) => v === bounds[i])) {
        s.counts.forEach((c, i) => {
          if (i < counts.length) counts[i]! += c;
        });
      }
    }
    const total = counts.reduce((a, b) => a + b, 0);
    let p99Ms: number | undefined;
    if (total > 0) {
      const target = Math.ceil(total * 0.99);
      let seen = 0;
      for (let i = 0; i < counts.length; i++) {
        seen += counts[i]!;
        if (seen >= target) {
          p99Ms = i < bounds.length ? bounds[i]! : Number.POSITIVE_INFINITY;
          break;
        }
      }
    }
    return { backendId, requests, failures, p99Ms };
  }

  #prune(now: number): void {
    for (const [id, list] of this.#samples) {
      const kept = list.filter((s) => now - s.at <= this.windowMs);
      if (kept.length) this.#samples.set(id, kept);
      else this.#samples.delete(id);
    }
  }
}
