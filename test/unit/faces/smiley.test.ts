import { afterEach, describe, expect, it } from "vitest";
import type { SmileyName } from "../../faces/lib/catalog.ts";
import type { RunningWorkload } from "../../faces/lib/running-workload.ts";
import type { WorkloadConfig } from "../../faces/lib/workload-config.ts";
import { startSmiley } from "../../faces/servers/smiley-server.ts";
import { get, loopbackConfig, quiet } from "./workload-harness.ts";

const running: RunningWorkload[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.close()));
});

async function smiley(smileyName: SmileyName, overrides: Partial<WorkloadConfig> = {}): Promise<string> {
  const w = await startSmiley({ ...(await loopbackConfig(overrides)), smiley: smileyName, logger: quiet });
  running.push(w);
  return `http://127.0.0.1:${w.port}`;
}

describe("smiley", () => {
  it("answers any path with the configured smiley and its pod", async () => {
    const base = await smiley("HeartEyes");
    for (const path of ["/center/?row=1&col=2", "/edge/?row=0&col=0", "/anything"]) {
      const res = await get(`${base}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(res.headers.get("x-faces-pod")).toBe("test-pod");
      expect(JSON.parse(res.body)).toEqual({ smiley: "&#x1F60D;", name: "HeartEyes", pod: "test-pod" });
    }
  });

  it("fails every request at ERROR_FRACTION=100 and none at 0", async () => {
    const failing = await smiley("Grinning", { errorFraction: 100 });
    const healthy = await smiley("Grinning", { errorFraction: 0 });
    for (let i = 0; i < 20; i++) {
      const bad = await get(`${failing}/center/?row=1&col=1`);
      expect(bad.status).toBe(500);
      expect(bad.headers.get("x-faces-pod")).toBe("test-pod");
      expect((await get(`${healthy}/center/?row=1&col=1`)).status).toBe(200);
    }
  });

  it("about half fail at ERROR_FRACTION=50", async () => {
    const base = await smiley("RollingEyes", { errorFraction: 50 });
    const statuses = await Promise.all(
      Array.from({ length: 200 }, () => get(`${base}/edge/`).then((r) => r.status)),
    );
    const failed = statuses.filter((s) => s === 500).length;
    // binomial(200, 0.5): 6 standard deviations either side of 100
    expect(failed).toBeGreaterThan(58);
    expect(failed).toBeLessThan(142);
    expect(statuses.every((s) => s === 200 || s === 500)).toBe(true);
  });

  it("sleeps a delay bucket before answering", async () => {
    const base = await smiley("Grinning", { delayBuckets: [100] });
    const res = await get(`${base}/center/`);
    expect(res.status).toBe(200);
    expect(res.ms).toBeGreaterThanOrEqual(98);
  });

  it("keeps /healthz out of delays and errors", async () => {
    const base = await smiley("Grinning", { delayBuckets: [1000], errorFraction: 100 });
    const res = await get(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.ms).toBeLessThan(900);
  });

  it("counts requests in its Prometheus metrics", async () => {
    const w = await startSmiley({ ...(await loopbackConfig()), smiley: "Grinning", logger: quiet });
    running.push(w);
    await get(`http://127.0.0.1:${w.port}/center/?row=1&col=1`);
    await get(`http://127.0.0.1:${w.port}/edge/?row=0&col=0`);
    const metrics = await get(`http://127.0.0.1:${w.metricsPort}/metrics`);
    expect(metrics.body).toContain('faces_requests_total{workload="smiley",kind="center",code="200"} 1');
    expect(metrics.body).toContain('faces_requests_total{workload="smiley",kind="edge",code="200"} 1');
    expect(metrics.body).toContain("process_cpu_seconds_total");
  });
});
