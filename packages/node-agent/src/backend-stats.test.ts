import { describe, expect, it } from "vitest";
import { BackendStatsRecorder, LATENCY_BOUNDS_MS } from "./backend-stats.ts";
import { AgentMetrics } from "./metrics.ts";

const zeros = () => new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0);

describe("BackendStatsRecorder", () => {
  it("counts requests, failures and latency buckets per backend, as deltas per window", () => {
    const r = new BackendStatsRecorder(1000);
    r.record("b/x:80", false, 0.4); // ≤ 1 ms
    r.record("b/x:80", true, 1); // ≤ 1 ms (bounds are inclusive)
    r.record("b/x:80", false, 30); // ≤ 50 ms
    r.record("a/y:80", false, 60_000); // slower than the last bound
    const first = r.take(2000);
    const x = zeros();
    x[0] = 2;
    x[LATENCY_BOUNDS_MS.indexOf(50)] = 1;
    const y = zeros();
    y[LATENCY_BOUNDS_MS.length] = 1;
    expect(first).toEqual({
      windowStartUnixMs: 1000,
      windowEndUnixMs: 2000,
      latencyBoundsMs: LATENCY_BOUNDS_MS,
      backends: [
        { backendId: "a/y:80", requests: 1, failures: 0, latencyCounts: y },
        { backendId: "b/x:80", requests: 3, failures: 1, latencyCounts: x },
      ],
    });
    // The next window starts empty; a window without requests reports nothing.
    r.record("b/x:80", false, 3);
    const second = r.take(3000);
    expect(second?.windowStartUnixMs).toBe(2000);
    expect(second?.backends.map((b) => [b.backendId, b.requests])).toEqual([["b/x:80", 1]]);
    expect(r.take(4000)).toBeUndefined();
  });

  it("is fed by the agent's request metrics: 5xx and non-OK gRPC statuses are failures, agent answers without a backend are not counted", () => {
    const m = new AgentMetrics();
    const base = { sourceNamespace: "a", destination: "s/web:80", route: "", rule: "", grpcStatus: "" };
    m.request({ ...base, backend: "s/web:80", code: 200 }, 0.002);
    m.request({ ...base, backend: "s/web:80", code: 503 }, 0.002);
    m.request({ ...base, backend: "s/web:80", code: 200, grpcStatus: "0" }, 0.002);
    m.request({ ...base, backend: "s/web:80", code: 200, grpcStatus: "14" }, 0.002);
    m.request({ ...base, backend: "s/web:80", code: 404 }, 0.002);
    m.request({ ...base, backend: "", code: 301 }, 0.002);
    expect(m.backendStats.take()?.backends).toEqual([
      { backendId: "s/web:80", requests: 5, failures: 2, latencyCounts: expect.any(Array) },
    ]);
  });
});
