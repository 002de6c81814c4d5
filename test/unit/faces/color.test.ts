import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { ColorName } from "../../faces/lib/catalog.ts";
import { ColorClient } from "../../faces/lib/color-service.ts";
import type { RunningWorkload } from "../../faces/lib/running-workload.ts";
import type { WorkloadConfig } from "../../faces/lib/workload-config.ts";
import { startColor } from "../../faces/servers/color-server.ts";
import { get, loopbackConfig, quiet } from "./workload-harness.ts";

const running: RunningWorkload[] = [];
const clients: ColorClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(running.splice(0).map((w) => w.close()));
});

async function color(name: ColorName, overrides: Partial<WorkloadConfig> = {}): Promise<ColorClient> {
  const w = await startColor({ ...(await loopbackConfig(overrides)), color: name, logger: quiet });
  running.push(w);
  const client = new ColorClient(`127.0.0.1:${w.port}`);
  clients.push(client);
  return client;
}

describe("color", () => {
  it("answers Center and Edge with the configured colour and its pod in the response headers", async () => {
    const client = await color("green");
    for (const method of ["Center", "Edge"] as const) {
      const r = await client.call(method, { row: 1, column: 2 }, new grpc.Metadata());
      if (!r.ok) throw r.error;
      expect(r.response.color).toBe("#228833");
      expect(r.response.errors).toEqual([]);
      expect(Number(r.response.rate)).toBeGreaterThan(0);
      expect(r.headers.get("x-faces-pod")).toEqual(["test-pod"]);
    }
  });

  it("serves the package-less service name ColorService over h2c", async () => {
    const w = await startColor({ ...(await loopbackConfig()), color: "blue", logger: quiet });
    running.push(w);
    // a raw client on the exact wire path, without the typed wrapper
    const raw = new grpc.Client(`127.0.0.1:${w.port}`, grpc.credentials.createInsecure());
    const answer = await new Promise<Buffer>((done, fail) =>
      raw.makeUnaryRequest(
        "/ColorService/Edge",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (err, value) => (err ? fail(err) : done(value ?? Buffer.alloc(0))),
      ),
    );
    raw.close();
    expect(answer.subarray(0, 9).toString("hex")).toBe(`0a07${Buffer.from("#66CCEE").toString("hex")}`);
    const unknown = new grpc.Client(`127.0.0.1:${w.port}`, grpc.credentials.createInsecure());
    const status = await new Promise<grpc.ServiceError | null>((done) =>
      unknown.makeUnaryRequest(
        "/faces.ColorService/Edge",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        (err) => done(err),
      ),
    );
    unknown.close();
    expect(status?.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it("fails every call with INTERNAL at ERROR_FRACTION=100 and none at 0", async () => {
    const failing = await color("blue", { errorFraction: 100 });
    const healthy = await color("blue", { errorFraction: 0 });
    for (let i = 0; i < 20; i++) {
      const bad = await failing.call("Center", { row: 1, column: 1 }, new grpc.Metadata());
      expect(bad.ok).toBe(false);
      if (!bad.ok) expect(bad.error.code).toBe(grpc.status.INTERNAL);
      expect(bad.trailers.get("x-faces-pod")).toEqual(["test-pod"]);
      expect((await healthy.call("Edge", { row: 0, column: 0 }, new grpc.Metadata())).ok).toBe(true);
    }
  });

  it("sleeps a delay bucket before answering", async () => {
    const client = await color("darkblue", { delayBuckets: [100] });
    const started = performance.now();
    const r = await client.call("Center", { row: 1, column: 1 }, new grpc.Metadata());
    expect(r.ok && r.response.color).toBe("#4477AA");
    expect(performance.now() - started).toBeGreaterThanOrEqual(98);
  });

  it("counts calls in its Prometheus metrics", async () => {
    const w = await startColor({ ...(await loopbackConfig()), color: "blue", logger: quiet });
    running.push(w);
    const client = new ColorClient(`127.0.0.1:${w.port}`);
    clients.push(client);
    await client.call("Edge", { row: 0, column: 0 }, new grpc.Metadata());
    const metrics = await get(`http://127.0.0.1:${w.metricsPort}/metrics`);
    expect(metrics.body).toContain('faces_requests_total{workload="color",kind="edge",code="OK"} 1');
  });
});
