// The webhook adapter against a real HTTP server on 127.0.0.1: what it sends,
// and how answers, slowness and refused connections become results.
import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CanaryWebhook, WebhookBody, WebhookCall } from "./canary.ts";
import { callWebhooks, postWebhook } from "./webhook.ts";

interface Seen {
  path: string;
  method: string;
  contentType: string | undefined;
  body: WebhookBody;
}

let server: http.Server;
let base = "";
const seen: Seen[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        path: req.url ?? "",
        method: req.method ?? "",
        contentType: req.headers["content-type"],
        body: JSON.parse(Buffer.concat(chunks).toString("utf8") || "null") as WebhookBody,
      });
      if (req.url === "/ok") res.writeHead(204).end();
      else if (req.url === "/busy")
        res.writeHead(503, { "content-type": "text/plain" }).end("not   ready\nyet");
      else if (req.url === "/redirect")
        res.writeHead(302, { location: "http://127.0.0.1:9/elsewhere" }).end();
      else if (req.url === "/slow") setTimeout(() => res.writeHead(200).end(), 3000);
      else res.writeHead(404).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const hook = (name: string, path: string, timeoutMs = 2000): CanaryWebhook => ({
  name,
  type: "Analysis",
  url: `${base}${path}`,
  timeoutMs,
  failureThreshold: 3,
  metadata: { team: name },
});

const body: WebhookBody = {
  apiVersion: "trellis.dev/v1alpha1",
  kind: "CanaryWebhook",
  type: "Analysis",
  canary: { namespace: "faces", name: "smiley2", uid: "u1" },
  target: { kind: "HTTPRoute", name: "smiley", rule: { index: 0 } },
  stableBackend: { name: "smiley", port: 80 },
  canaryBackend: { name: "smiley2", port: 80 },
  phase: "Progressing",
  step: 1,
  steps: 3,
  weight: 50,
  lastAnalysis: {
    requests: 40,
    errors: 0,
    errorRate: 0,
    p99Ms: 50,
    at: "2026-01-01T00:00:00.000Z",
    result: "Passed",
  },
  message: "step 2/3",
  metadata: {},
};

describe("webhook adapter", () => {
  it("POSTs the JSON body with each webhook's metadata and passes on 2xx", async () => {
    seen.length = 0;
    const call: WebhookCall = { type: "Analysis", hooks: [hook("a", "/ok"), hook("b", "/ok")], body };
    const results = await callWebhooks(call);
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ["a", true],
      ["b", true],
    ]);
    expect(results[0]?.message).toMatch(/^HTTP 204 in \d+ ms$/);
    expect(seen).toHaveLength(2);
    const a = seen.find((s) => s.body.metadata.team === "a")!;
    expect(a).toMatchObject({ path: "/ok", method: "POST", contentType: "application/json" });
    expect(a.body).toEqual({ ...body, metadata: { team: "a" } });
  });

  it("fails on non-2xx with an excerpt of the answer, and does not follow redirects", async () => {
    const busy = await postWebhook(hook("busy", "/busy"), body);
    expect(busy).toMatchObject({ ok: false });
    expect(busy.message).toMatch(/^HTTP 503 in \d+ ms: not ready yet$/);
    const moved = await postWebhook(hook("moved", "/redirect"), body);
    expect(moved.ok).toBe(false);
    expect(moved.message).toMatch(/^HTTP 302/);
  });

  it("fails on a timeout and on a refused connection, with the reason", async () => {
    const slow = await postWebhook(hook("slow", "/slow", 300), body);
    expect(slow).toEqual({ name: "slow", ok: false, message: "no answer within 0.3 s (timeoutSeconds)" });
    const closed = http.createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = await postWebhook({ ...hook("gone", ""), url: `http://127.0.0.1:${port}/x` }, body);
    expect(refused.ok).toBe(false);
    expect(refused.message).toMatch(/cannot POST to http:\/\/127.0.0.1:\d+\/x: ECONNREFUSED/);
  });
});
