import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CniRequest } from "@trellis/api/cni";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { askAgent, classifyAnswer } from "./agent-client.ts";

const dir = mkdtempSync(join(tmpdir(), "trellis-cni-agent-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const req: CniRequest = {
  command: "ADD",
  containerId: "c1",
  netns: "/var/run/netns/p",
  ifName: "eth0",
  podNamespace: "shop",
  podName: "web-0",
  podUid: "u1",
  ips: ["10.244.1.5"],
};

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

function agent(path: string, answer: (body: unknown, res: import("node:http").ServerResponse) => void) {
  server = createServer((rq, res) => {
    let body = "";
    rq.on("data", (c) => {
      body += c;
    });
    rq.on("end", () => answer({ method: rq.method, url: rq.url, body: JSON.parse(body) }, res));
  });
  return new Promise<void>((r) => server?.listen(path, r));
}

describe("classifyAnswer", () => {
  it.each([
    [200, '{"captured":true}', { kind: "done", captured: true }],
    [200, '{"captured":false}', { kind: "done", captured: false }],
    [500, '{"error":"nft failed"}', { kind: "refused", status: 500, message: "nft failed" }],
    [400, "bad request", { kind: "refused", status: 400, message: "bad request" }],
    [404, "", { kind: "refused", status: 404, message: "HTTP 404" }],
    [503, '{"error":"no table yet"}', { kind: "unavailable", reason: "agent answered 503: no table yet" }],
  ])("%i %s", (status, body, want) => {
    expect(classifyAnswer(status, body)).toEqual(want);
  });

  it("a 200 without {captured} is a broken agent, not a success", () => {
    expect(classifyAnswer(200, "ok").kind).toBe("refused");
  });
});

describe("askAgent over a unix socket", () => {
  it("POSTs the request as JSON to /v1/cni", async () => {
    const path = join(dir, "ok.sock");
    let seen: unknown;
    await agent(path, (r, res) => {
      seen = r;
      res.writeHead(200, { "content-type": "application/json" }).end('{"captured":true}');
    });
    expect(await askAgent(path, req, 5000)).toEqual({ kind: "done", captured: true });
    expect(seen).toEqual({ method: "POST", url: "/v1/cni", body: req });
  });

  it("no socket file: unavailable", async () => {
    const a = await askAgent(join(dir, "none.sock"), req, 5000);
    expect(a.kind).toBe("unavailable");
    expect(a.kind === "unavailable" && a.reason).toContain("ENOENT");
  });

  it("a socket file nobody listens on (crashed agent): unavailable", async () => {
    const path = join(dir, "stale.sock");
    // A process killed while listening leaves its socket file behind, as a crashed agent would.
    spawnSync(process.execPath, [
      "-e",
      `require("node:net").createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, "SIGKILL"))`,
    ]);
    expect(existsSync(path)).toBe(true);
    const a = await askAgent(path, req, 5000);
    expect(a.kind === "unavailable" && a.reason).toContain("ECONNREFUSED");
  });

  it("an agent that does not answer in time: unavailable", async () => {
    const path = join(dir, "slow.sock");
    await agent(path, (_r, res) => setTimeout(() => res.writeHead(200).end('{"captured":true}'), 2000));
    const t = performance.now();
    const a = await askAgent(path, req, 200);
    expect(a).toEqual({ kind: "unavailable", reason: "no answer within 0.2s" });
    expect(performance.now() - t).toBeLessThan(1500);
  });

  it("an agent that drops the connection: unavailable", async () => {
    const path = join(dir, "drop.sock");
    await agent(path, (_r, res) => res.socket?.destroy());
    expect((await askAgent(path, req, 5000)).kind).toBe("unavailable");
  });
});
