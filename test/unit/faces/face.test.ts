import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import type { FaceCell } from "../../faces/lib/face-cell.ts";
import type { RunningWorkload } from "../../faces/lib/running-workload.ts";
import { startColor } from "../../faces/servers/color-server.ts";
import { startFace } from "../../faces/servers/face-server.ts";
import { startSmiley } from "../../faces/servers/smiley-server.ts";
import { freePort } from "../../support/free-port.ts";
import { type ColorStubAnswer, colorStub, type StubAnswer, smileyStub } from "./upstream-stubs.ts";
import { get, loopbackConfig, quiet } from "./workload-harness.ts";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanup.splice(0).map((c) => c()));
});
function track<T extends { close(): Promise<void> }>(w: T): T {
  cleanup.push(() => w.close());
  return w;
}

const GRINNING: StubAnswer = { status: 200, body: JSON.stringify({ smiley: "&#x1F603;" }) };
const BLUE: ColorStubAnswer = { response: { color: "#66CCEE", rate: "1.0", errors: [] } };

async function face(smileyAddress: string, colorAddress: string): Promise<string> {
  const w: RunningWorkload = track(
    await startFace({
      ...(await loopbackConfig()),
      smileyService: smileyAddress,
      colorService: colorAddress,
      logger: quiet,
    }),
  );
  return `http://127.0.0.1:${w.port}`;
}

async function cell(base: string, path: string, headers: Record<string, string> = {}): Promise<FaceCell> {
  const res = await get(`${base}${path}`, headers);
  expect(res.status).toBe(200);
  expect(res.headers.get("x-faces-pod")).toBe("test-pod");
  return JSON.parse(res.body) as FaceCell;
}

describe("face", () => {
  it("composes the real smiley and color workloads into one cell", async () => {
    const smiley = track(
      await startSmiley({
        ...(await loopbackConfig({ pod: "smiley-1" })),
        smiley: "HeartEyes",
        logger: quiet,
      }),
    );
    const color = track(
      await startColor({ ...(await loopbackConfig({ pod: "color-1" })), color: "green", logger: quiet }),
    );
    const base = await face(`127.0.0.1:${smiley.port}`, `127.0.0.1:${color.port}`);
    const c = await cell(base, "/center/?row=1&col=2");
    expect(c).toMatchObject({
      smiley: "&#x1F60D;",
      smileyName: "HeartEyes",
      color: "#228833",
      colorName: "green",
      pod: "test-pod",
      served: { smiley: { status: "200", pod: "smiley-1" }, color: { status: "OK", pod: "color-1" } },
    });
    expect(c.errors).toBeUndefined();
  });

  it("calls smiley on the cell's path and ColorService/Center or /Edge with row and column", async () => {
    const smiley = track(await smileyStub(GRINNING));
    const color = track(await colorStub(BLUE));
    const base = await face(smiley.address, color.address);
    await cell(base, "/center/?row=2&col=1");
    await cell(base, "/edge/?row=3&col=0");
    expect(smiley.seen.map((s) => s.path)).toEqual(["/center/?row=2&col=1", "/edge/?row=3&col=0"]);
    expect(color.seen).toEqual([
      { method: "Center", row: 2, column: 1, user: undefined },
      { method: "Edge", row: 3, column: 0, user: undefined },
    ]);
  });

  it("forwards X-Faces-User to smiley (header) and color (metadata)", async () => {
    const smiley = track(await smileyStub(GRINNING));
    const color = track(await colorStub(BLUE));
    const base = await face(smiley.address, color.address);
    await cell(base, "/edge/?row=0&col=0", { "X-Faces-User": "heart" });
    expect(smiley.seen[0]?.headers["x-faces-user"]).toBe("heart");
    expect(color.seen[0]?.user).toBe("heart");
  });

  it.each([
    [{ status: 504, body: "upstream request timeout" }, "Sleeping", "&#x1F634;"],
    [{ status: 500, body: "{}" }, "Cursing", "&#x1F92C;"],
    [{ status: 503, body: "no healthy upstream" }, "Cursing", "&#x1F92C;"],
    [{ status: 200, body: "not json" }, "Cursing", "&#x1F92C;"],
    [{ status: 200, body: '{"face": 1}' }, "Cursing", "&#x1F92C;"],
  ] as const)("degrades smiley %j to %s, still answering 200", async (answer, name, entity) => {
    const smiley = track(await smileyStub(answer));
    const color = track(await colorStub(BLUE));
    const base = await face(smiley.address, color.address);
    const c = await cell(base, "/center/?row=1&col=1");
    expect(c).toMatchObject({ smiley: entity, smileyName: name, color: "#66CCEE" });
    expect(c.errors).toHaveLength(1);
    expect(c.errors?.[0]).toMatch(/^smiley: /);
  });

  it("shows Cursing when smiley cannot be reached", async () => {
    const color = track(await colorStub(BLUE));
    const base = await face(`127.0.0.1:${await freePort()}`, color.address);
    const c = await cell(base, "/edge/?row=0&col=3");
    expect(c).toMatchObject({
      smileyName: "Cursing",
      color: "#66CCEE",
      served: { smiley: { status: "error" } },
    });
  });

  it("turns any color failure grey", async () => {
    const smiley = track(await smileyStub(GRINNING));
    const failing = track(await colorStub({ error: grpc.status.INTERNAL, details: "boom" }));
    const timedOut = track(
      await colorStub({ error: grpc.status.DEADLINE_EXCEEDED, details: "mesh timeout" }),
    );
    for (const [address, status] of [
      [failing.address, "INTERNAL"],
      [timedOut.address, "DEADLINE_EXCEEDED"],
      [`127.0.0.1:${await freePort()}`, "UNAVAILABLE"],
    ]) {
      const base = await face(smiley.address, address ?? "");
      const c = await cell(base, "/center/?row=1&col=1");
      expect(c).toMatchObject({ smileyName: "Grinning", color: "#BBBBBB", colorName: "grey" });
      expect(c.served.color.status).toBe(status);
      expect(c.errors?.[0]).toMatch(/^color: /);
    }
  });

  it("passes the mesh's route and backend headers of both calls through to the GUI", async () => {
    const smiley = track(
      await smileyStub({
        ...GRINNING,
        headers: { "x-trellis-route": "faces/smiley-edge/0", "x-trellis-backend": "faces/smiley2:80" },
      }),
    );
    const color = track(
      await colorStub({
        ...BLUE,
        headers: { "x-trellis-route": "faces/color-edge/0", "x-trellis-backend": "faces/color2:80" },
      }),
    );
    const base = await face(smiley.address, color.address);
    const c = await cell(base, "/edge/?row=0&col=1");
    expect(c.served.smiley).toMatchObject({ route: "faces/smiley-edge/0", backend: "faces/smiley2:80" });
    expect(c.served.color).toMatchObject({ route: "faces/color-edge/0", backend: "faces/color2:80" });
  });

  it("reads the mesh's headers from trailers of a failed call too", async () => {
    const smiley = track(await smileyStub(GRINNING));
    const color = track(
      await colorStub({
        error: grpc.status.UNAVAILABLE,
        details: "no healthy upstream",
        trailers: { "x-trellis-route": "faces/color/0" },
      }),
    );
    const base = await face(smiley.address, color.address);
    const c = await cell(base, "/center/?row=1&col=1");
    expect(c.served.color).toMatchObject({ status: "UNAVAILABLE", route: "faces/color/0" });
  });

  it("waits for slow upstreams without a timeout of its own", async () => {
    const smiley = track(
      await startSmiley({
        ...(await loopbackConfig({ delayBuckets: [1200] })),
        smiley: "Grinning",
        logger: quiet,
      }),
    );
    const color = track(await colorStub(BLUE));
    const base = await face(`127.0.0.1:${smiley.port}`, color.address);
    const res = await get(`${base}/center/?row=1&col=1`);
    expect(res.ms).toBeGreaterThanOrEqual(1190);
    expect(JSON.parse(res.body)).toMatchObject({ smileyName: "Grinning" });
  });

  it("answers 404 off the cell paths and 200 on /healthz", async () => {
    const base = await face("127.0.0.1:1", "127.0.0.1:1");
    expect((await get(`${base}/`)).status).toBe(404);
    expect((await get(`${base}/healthz`)).status).toBe(200);
  });
});
