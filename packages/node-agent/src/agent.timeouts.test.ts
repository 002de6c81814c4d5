// Timeouts and retries, end to end.

import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { MatchType, Protocol, RouteKind } from "@trellis/api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Agent } from "./agent.ts";
import { type EchoClientT, echoClient, type GrpcBackend, startGrpcBackend, unary } from "./testing/grpc.ts";
import {
  backend,
  closeClientAgents,
  forwardTo,
  grpcMatch,
  type HttpBackend,
  httpMatch,
  type RuleP,
  request,
  startHttpBackend,
  table,
  testAgent,
} from "./testing/loopback.ts";

let slow: HttpBackend;
let flaky: HttpBackend;
let good: HttpBackend;
let g: GrpcBackend;
let agent: Agent;
let port: number;
let grpcPort: number;
let grpcClient: EchoClientT;
/** Per test: how many requests the flaky backend fails, and how it fails. */
let failFirst = 0;
let failStatus = 503;
let slowFirst = 0;

const route = { kind: RouteKind.ROUTE_KIND_HTTP, namespace: "t", name: "r" };
const rule = (i: number, r: Omit<RuleP, "route" | "ruleIndex">): RuleP => ({ route, ruleIndex: i, ...r });

beforeAll(async () => {
  [slow, flaky, good, g] = await Promise.all([
    startHttpBackend("slow"),
    startHttpBackend("flaky"),
    startHttpBackend("good"),
    startGrpcBackend("g"),
  ]);
  slow.handler = (req, res) => {
    const delay = Number(new URL(req.url ?? "/", "http://x").searchParams.get("delay") ?? "1000");
    const t = setTimeout(() => res.end("slow"), delay);
    res.on("close", () => clearTimeout(t));
  };
  flaky.handler = (_req, res, body) => {
    const n = flaky.requests.length;
    const reply = (): void => {
      if (n <= failFirst) {
        res.writeHead(failStatus);
        res.end("fail");
      } else {
        res.end(`ok after ${n}: ${body.length}`);
      }
    };
    if (n <= slowFirst) {
      const t = setTimeout(reply, 1_000);
      res.on("close", () => clearTimeout(t));
    } else reply();
  };
  const rules: RuleP[] = [
    rule(0, { action: forwardTo(["t/slow:80", 1]), timeouts: { requestMs: 200 } }),
    rule(1, {
      action: forwardTo(["t/flaky:80", 1]),
      timeouts: { backendRequestMs: 150 },
      retry: { codes: [504], attempts: 2, backoffMs: 0 },
    }),
    rule(2, {
      action: forwardTo(["t/flaky:80", 1]),
      retry: { codes: [500, 502, 503, 504], attempts: 2, backoffMs: 10 },
    }),
    rule(3, { action: forwardTo(["t/halfdown:80", 1]), retry: { codes: [], attempts: 1, backoffMs: 0 } }),
    rule(4, {
      action: forwardTo(["t/flaky:80", 1]),
      timeouts: { requestMs: 300 },
      retry: { codes: [503], attempts: 5, backoffMs: 100 },
    }),
    rule(5, { action: forwardTo(["t/slow:80", 1]), timeouts: { backendRequestMs: 100 } }),
    rule(6, { action: forwardTo(["t/down:80", 1]) }),
  ];
  const grpcRoute = { kind: RouteKind.ROUTE_KIND_GRPC, namespace: "t", name: "g" };
  agent = testAgent();
  await agent.apply(
    table({
      settings: { retryBodyLimitBytes: 64 * 1024 },
      services: [
        {
          namespace: "t",
          name: "web",
          clusterIps: ["10.96.2.1"],
          ports: [
            {
              port: 80,
              protocol: Protocol.PROTOCOL_HTTP1,
              defaultBackendId: "t/good:80",
              routeSets: [
                {
                  clientNamespace: "*",
                  kind: RouteKind.ROUTE_KIND_HTTP,
                  rules,
                  matches: [
                    "/req-timeout",
                    "/try-timeout",
                    "/retry",
                    "/connect",
                    "/budget",
                    "/no-retry-timeout",
                    "/down",
                  ].map((p, i) => httpMatch(i, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: p } })),
                },
              ],
            },
          ],
        },
        {
          namespace: "t",
          name: "rpc",
          clusterIps: ["10.96.2.2"],
          ports: [
            {
              port: 9000,
              protocol: Protocol.PROTOCOL_GRPC,
              defaultBackendId: "t/g:9000",
              routeSets: [
                {
                  clientNamespace: "*",
                  kind: RouteKind.ROUTE_KIND_GRPC,
                  rules: [
                    {
                      route: grpcRoute,
                      ruleIndex: 0,
                      action: forwardTo(["t/g:9000", 1]),
                      timeouts: { requestMs: 200 },
                    },
                  ],
                  matches: [grpcMatch(0)],
                },
              ],
            },
          ],
        },
      ],
      backends: [
        backend("t/slow:80", [slow.port]),
        backend("t/flaky:80", [flaky.port]),
        backend("t/good:80", [good.port]),
        // One endpoint refuses connections (port 1), the other works.
        backend("t/halfdown:80", [1, good.port]),
        backend("t/down:80", [1]),
        backend("t/g:9000", [g.port], Protocol.PROTOCOL_GRPC),
      ],
    }),
  );
  port = agent.listenerPorts().get("t/web:80") as number;
  grpcPort = agent.listenerPorts().get("t/rpc:9000") as number;
  grpcClient = echoClient(grpcPort);
});

afterAll(async () => {
  grpcClient.close();
  closeClientAgents();
  await agent.close();
  await Promise.all([slow.close(), flaky.close(), good.close(), g.close()]);
});

beforeEach(() => {
  flaky.requests.length = 0;
  failFirst = 0;
  failStatus = 503;
  slowFirst = 0;
  g.delayMs = 0;
});

async function timed<T>(p: Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await p;
  return [r, performance.now() - t0];
}

describe("timeouts", () => {
  it("request timeout answers 504 at once", async () => {
    const [r, ms] = await timed(request(port, { path: "/req-timeout?delay=2000" }));
    expect(r.status).toBe(504);
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(ms).toBeLessThan(800);
  });

  it("backendRequest timeout without retry answers 504 after one try", async () => {
    const [r, ms] = await timed(request(port, { path: "/no-retry-timeout?delay=2000" }));
    expect(r.status).toBe(504);
    expect(ms).toBeLessThan(800);
  });

  it("a try that times out is retried when 504 is a retry code", async () => {
    slowFirst = 1;
    const r = await request(port, { path: "/try-timeout" });
    expect(r.status).toBe(200);
    expect(r.body).toBe("ok after 2: 0");
    expect(flaky.requests.length).toBe(2);
  });

  it("every try timing out ends in 504 after attempts + 1 tries", async () => {
    slowFirst = 100;
    const [r, ms] = await timed(request(port, { path: "/try-timeout" }));
    expect(r.status).toBe(504);
    expect(flaky.requests.length).toBe(3);
    expect(ms).toBeLessThan(1_000);
  });
});

describe("retries", () => {
  it("retries on a listed code until success", async () => {
    failFirst = 2;
    const r = await request(port, { path: "/retry" });
    expect(r.status).toBe(200);
    expect(flaky.requests.length).toBe(3);
  });

  it("exhausted retries pass the last response through", async () => {
    failFirst = 100;
    failStatus = 502;
    const r = await request(port, { path: "/retry" });
    expect(r.status).toBe(502);
    expect(flaky.requests.length).toBe(3);
  });

  it("codes not listed are not retried", async () => {
    failFirst = 100;
    failStatus = 429;
    const r = await request(port, { path: "/retry" });
    expect(r.status).toBe(429);
    expect(flaky.requests.length).toBe(1);
  });

  it("connection failures are retried on another endpoint", async () => {
    for (let i = 0; i < 20; i++) {
      const r = await request(port, { path: "/connect" });
      expect(r.status).toBe(200);
    }
  });

  it("a connection failure without retries answers 503", async () => {
    expect((await request(port, { path: "/down" })).status).toBe(503);
  });

  it("never retries past the request timeout", async () => {
    failFirst = 100;
    const [r, ms] = await timed(request(port, { path: "/budget" }));
    // Tries at ~0 and ~100 ms; the next backoff (200 ms) would end past 300 ms, so the last answer goes back.
    expect(r.status).toBe(503);
    expect(flaky.requests.length).toBe(2);
    expect(ms).toBeLessThan(450);
  });

  it("small bodies are replayed on retry; bodies over the limit are not retried", async () => {
    failFirst = 1;
    const small = "s".repeat(10_000);
    const r = await request(port, { path: "/retry", method: "POST", body: small });
    expect(r.status).toBe(200);
    expect(r.body).toBe("ok after 2: 10000");
    expect(flaky.requests[1]?.body).toBe(small);

    flaky.requests.length = 0;
    failFirst = 1;
    const big = "b".repeat(100_000);
    const r2 = await request(port, { path: "/retry", method: "POST", body: big });
    expect(r2.status).toBe(503);
    expect(flaky.requests.length).toBe(1);
    expect(flaky.requests[0]?.body.length).toBe(100_000);
  });
});

describe("gRPC deadlines", () => {
  it("a route timeout answers DEADLINE_EXCEEDED", async () => {
    g.delayMs = 1_000;
    const [err, ms] = await timed(
      unary(grpcClient, { text: "x" }, { deadlineMs: 5_000 }).catch((e: unknown) => e),
    );
    expect(err).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED, details: "request timeout" });
    expect(ms).toBeLessThan(800);
  });

  it("the client's grpc-timeout is honoured with a trailers-only DEADLINE_EXCEEDED", async () => {
    g.delayMs = 1_000;
    const session = http2.connect(`http://127.0.0.1:${grpcPort}`);
    try {
      const t0 = performance.now();
      const res = await new Promise<{ headers: http2.IncomingHttpHeaders; flags: number }>(
        (resolve, reject) => {
          const s = session.request({
            ":method": "POST",
            ":path": "/test.Echo/Unary",
            "content-type": "application/grpc",
            te: "trailers",
            "grpc-timeout": "80m",
          });
          s.on("response", (headers, flags) => resolve({ headers, flags }));
          s.on("error", reject);
          const msg = Buffer.from(JSON.stringify({ text: "x" }));
          const frame = Buffer.alloc(5 + msg.length);
          frame.writeUInt32BE(msg.length, 1);
          msg.copy(frame, 5);
          s.end(frame);
        },
      );
      const ms = performance.now() - t0;
      expect(res.flags & http2.constants.NGHTTP2_FLAG_END_STREAM).toBeTruthy();
      expect(res.headers["grpc-status"]).toBe("4");
      expect(ms).toBeGreaterThanOrEqual(70);
      expect(ms).toBeLessThan(180);
    } finally {
      session.close();
    }
  });

  it("a grpc-timeout is passed upstream as the remaining budget", async () => {
    const { msg } = await unary(grpcClient, { text: "x" }, { deadlineMs: 3_000 });
    const sent = msg.metadata?.["grpc-timeout"];
    // grpc-js reads grpc-timeout itself and does not expose it as metadata; the call succeeding within its deadline is the check.
    expect(sent === undefined || /^\d+[mS]$/.test(sent)).toBe(true);
  });
});
