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
  /** Upper bound (ms) of the bucket holding the median; Infinity when in the overflow bucket. */
  p50Ms: number | undefined;
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

  /** Totals over the window, or over the reports received at or after `since` (canary analysis). */
  summary(backendId: string, now = Date.now(), since = Number.NEGATIVE_INFINITY): BackendSummary {
    this.#prune(now);
    const samples = (this.#samples.get(backendId) ?? []).filter((s) => s.at >= since);
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
    return {
      backendId,
      requests,
      failures,
      p50Ms: quantile(bounds, counts, 0.5),
      p99Ms: quantile(bounds, counts, 0.99),
    };
  }

  /** Every backend with traffic in the window, by id. */
  summaries(now = Date.now()): BackendSummary[] {
    this.#prune(now);
    return [...this.#samples.keys()].sort().map((id) => this.summary(id, now));
  }

  #prune(now: number): void {
    for (const [id, list] of this.#samples) {
      const kept = list.filter((s) => now - s.at <= this.windowMs);
      if (kept.length) this.#samples.set(id, kept);
      else this.#samples.delete(id);
    }
  }
}

/** Upper bound of the bucket holding quantile q of the counts; Infinity for the overflow bucket. */
function quantile(bounds: readonly number[], counts: readonly number[], q: number): number | undefined {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  const target = Math.ceil(total * q);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= target) return i < bounds.length ? bounds[i]! : Number.POSITIVE_INFINITY;
  }
  return Number.POSITIVE_INFINITY;
}

/** A latency bound as JSON can carry it: "+Inf" for the overflow bucket, null without data. */
export type LatencyBound = number | "+Inf" | null;

export interface BackendStatsRow {
  backendId: string;
  requests: number;
  failures: number;
  /** failures / requests, 0 without requests. */
  errorRate: number;
  /** Upper bound (ms) of the latency bucket holding the median. */
  p50Ms: LatencyBound;
  /** Upper bound (ms) of the latency bucket holding the 99th percentile. */
  p99Ms: LatencyBound;
}

export interface BackendStatsReport {
  /** How far back the window reaches. */
  windowMs: number;
  backends: BackendStatsRow[];
}

const bound = (v: number | undefined): LatencyBound =>
  v === undefined ? null : Number.isFinite(v) ? v : "+Inf";

/** The window as the admin endpoint serves it (/debug/backends, `trellis backends`). */
export function backendStatsReport(window: BackendStatsWindow | undefined, now: number): BackendStatsReport {
  return {
    windowMs: window?.windowMs ?? 0,
    backends: (window?.summaries(now) ?? []).map((s) => ({
      backendId: s.backendId,
      requests: s.requests,
      failures: s.failures,
      errorRate: s.requests > 0 ? s.failures / s.requests : 0,
      p50Ms: bound(s.p50Ms),
      p99Ms: bound(s.p99Ms),
    })),
  };
}
