import type { BackendStats } from "@trellis/api";
import { describe, expect, it } from "vitest";
import { BackendStatsWindow, backendStatsReport } from "./backend-stats-window.ts";

const report = (id: string, requests: number, failures: number, counts: number[]): BackendStats => ({
  windowStartUnixMs: 0,
  windowEndUnixMs: 0,
  latencyBoundsMs: [10, 100],
  backends: [{ backendId: id, requests, failures, latencyCounts: counts }],
});

describe("BackendStatsWindow", () => {
  it("sums every agent's deltas inside the window and forgets older ones", () => {
    const w = new BackendStatsWindow(10_000);
    w.add(report("s/a:80", 10, 1, [9, 1, 0]), 1_000);
    w.add(report("s/a:80", 90, 0, [90, 0, 0]), 5_000);
    w.add(report("s/b:80", 4, 4, [0, 0, 4]), 5_000);
    expect(w.summaries(6_000)).toEqual([
      { backendId: "s/a:80", requests: 100, failures: 1, p50Ms: 10, p99Ms: 10 },
      { backendId: "s/b:80", requests: 4, failures: 4, p50Ms: Infinity, p99Ms: Infinity },
    ]);
    // 12 s: the first report (at 1 s) has left the 10 s window.
    expect(w.summary("s/a:80", 12_000)).toMatchObject({ requests: 90, failures: 0 });
    expect(backendStatsReport(w, 12_000)).toEqual({
      windowMs: 10_000,
      backends: [
        { backendId: "s/a:80", requests: 90, failures: 0, errorRate: 0, p50Ms: 10, p99Ms: 10 },
        { backendId: "s/b:80", requests: 4, failures: 4, errorRate: 1, p50Ms: "+Inf", p99Ms: "+Inf" },
      ],
    });
    expect(w.summaries(20_000)).toEqual([]);
  });

  it("sums only the reports received since a given time (canary analysis of one step)", () => {
    const w = new BackendStatsWindow(60_000);
    w.add(report("s/a:80", 10, 5, [5, 5, 0]), 1_000);
    w.add(report("s/a:80", 20, 1, [20, 0, 0]), 6_000);
    expect(w.summary("s/a:80", 7_000, 5_000)).toMatchObject({ requests: 20, failures: 1, p99Ms: 10 });
    expect(w.summary("s/a:80", 7_000, 7_000)).toMatchObject({ requests: 0, p99Ms: undefined });
  });
});
