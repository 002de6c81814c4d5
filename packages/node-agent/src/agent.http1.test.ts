// GAMMA behaviours on HTTP/1.1, end to end over loopback sockets.

import { MatchType, PathRewriteType, Protocol, RouteKind } from "@trellis/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "./agent.ts";
import {
  backend,
  closeClientAgents,
  forwardTo,
  type HttpBackend,
  httpMatch,
  type RuleP,
  request,
  seededRandom,
  sleep,
  startHttpBackend,
  table,
  testAgent,
} from "./testing/loopback.ts";

const route = (name: string, ns = "shop"): RuleP["route"] => ({
  kind: RouteKind.ROUTE_KIND_HTTP,
  namespace: ns,
  name,
});

let a: HttpBackend;
let b: HttpBackend;
let canary: HttpBackend;
let mirror: HttpBackend;
let agent: Agent;
let web: number;
let plain: number;
let silent: Agent;
let silentWeb: number;

beforeAll(async () => {
  [a, b, canary, mirror] = await Promise.all([
    startHttpBackend("a"),
    startHttpBackend("b"),
    startHttpBackend("canary"),
    startHttpBackend("mirror"),
  ]);
  const rules: RuleP[] = [
    {
      route: route("web"),
      ruleIndex: 0,
      action: {
        $case: "forward",
        forward: {
          backends: [
            {
              weight: 1,
              target: { $case: "backendId", backendId: "shop/canary:80" },
              requestHeaders: {
                set: [{ name: "x-level", value: "backend" }],
                add: [{ name: "x-list", value: "be" }],
              },
              responseHeaders: { add: [{ name: "x-resp", value: "backend" }] },
            },
          ],
        },
      },
      requestHeaders: {
        set: [{ name: "x-level", value: "rule" }],
        add: [{ name: "x-list", value: "rule" }],
        remove: ["x-secret"],
      },
      responseHeaders: { set: [{ name: "x-resp", value: "rule" }], remove: ["x-backend"] },
    },
    {
      route: route("web"),
      ruleIndex: 1,
      action: {
        $case: "redirect",
        redirect: {
          scheme: "https",
          hostname: "secure.example",
          statusCode: 301,
          path: { type: PathRewriteType.PATH_REWRITE_TYPE_PREFIX_MATCH, value: "/new" },
        },
      },
    },
    {
      route: route("web"),
      ruleIndex: 2,
      action: forwardTo(["shop/a:80", 1]),
      urlRewrite: {
        hostname: "rewritten.example",
        path: { type: PathRewriteType.PATH_REWRITE_TYPE_PREFIX_MATCH, value: "/v2" },
      },
    },
    {
      route: route("web"),
      ruleIndex: 3,
      action: forwardTo(["shop/a:80", 1]),
      urlRewrite: { path: { type: PathRewriteType.PATH_REWRITE_TYPE_FULL_PATH, value: "/replaced" } },
    },
    {
      route: route("web"),
      ruleIndex: 4,
      action: { $case: "direct", direct: { httpStatus: 500, grpcStatus: 12, message: "invalid rule" } },
    },
    { route: route("web"), ruleIndex: 5, action: forwardTo(["shop/a:80", 80], ["shop/b:80", 20]) },
    {
      route: route("web"),
      ruleIndex: 6,
      action: forwardTo(
        ["shop/a:80", 1],
        [{ httpStatus: 500, grpcStatus: 14, message: "backend not found" }, 1],
      ),
    },
    { route: route("web"), ruleIndex: 7, action: forwardTo(["shop/empty:80", 1]) },
    { route: route("web"), ruleIndex: 8, action: forwardTo(["shop/terminating:80", 1]) },
    {
      route: route("web"),
      ruleIndex: 9,
      action: forwardTo(["shop/a:80", 1]),
      mirrors: [{ backendId: "shop/mirror:80", numerator: 1, denominator: 1 }],
    },
    {
      route: route("web"),
      ruleIndex: 10,
      action: forwardTo(["shop/a:80", 1]),
      mirrors: [{ backendId: "shop/down:80", numerator: 1, denominator: 1 }],
    },
    { route: route("web"), ruleIndex: 11, ruleName: "post-only", action: forwardTo(["shop/b:80", 1]) },
    { route: route("web"), ruleIndex: 12, action: forwardTo(["shop/canary:80", 1]) },
    { route: route("web-b"), ruleIndex: 0, action: forwardTo(["shop/a:80", 1]) },
  ];
  const t = table({
    services: [
      {
        namespace: "shop",
        name: "web",
        clusterIps: ["10.96.0.10"],
        ports: [
          {
            port: 80,
            name: "http",
            protocol: Protocol.PROTOCOL_HTTP1,
            defaultBackendId: "shop/a:80",
            routeSets: [
              {
                clientNamespace: "*",
                kind: RouteKind.ROUTE_KIND_HTTP,
                rules,
                matches: [
                  httpMatch(0, {
                    headers: [{ name: "x-canary", type: MatchType.MATCH_TYPE_EXACT, value: "yes" }],
                  }),
                  httpMatch(1, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/old" } }),
                  httpMatch(2, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/api" } }),
                  httpMatch(3, { path: { type: MatchType.MATCH_TYPE_EXACT, value: "/full" } }),
                  httpMatch(4, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/invalid" } }),
                  httpMatch(5, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/split" } }),
                  httpMatch(6, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/mixed" } }),
                  httpMatch(7, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/empty" } }),
                  httpMatch(8, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/terminating" } }),
                  httpMatch(9, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/mirrored" } }),
                  httpMatch(10, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/mirror-down" } }),
                  httpMatch(11, {
                    path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/orders" },
                    method: "POST",
                  }),
                  httpMatch(12, {
                    path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/orders" },
                    queryParams: [{ name: "v", type: MatchType.MATCH_TYPE_REGEX, value: "2|3" }],
                  }),
                  // Second match of the same rule: ORed with the first.
                  httpMatch(12, { path: { type: MatchType.MATCH_TYPE_EXACT, value: "/also-canary" } }),
                  httpMatch(13, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/orders" } }),
                ],
              },
              {
                clientNamespace: "mobile",
                kind: RouteKind.ROUTE_KIND_HTTP,
                rules: [
                  {
                    route: route("mobile-web", "mobile"),
                    ruleIndex: 0,
                    action: forwardTo(["shop/b:80", 1]),
                    requestHeaders: { set: [{ name: "x-consumer", value: "mobile" }] },
                  },
                ],
                matches: [httpMatch(0, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/orders" } })],
              },
            ],
          },
        ],
      },
      {
        namespace: "shop",
        name: "plain",
        clusterIps: ["10.96.0.11"],
        ports: [{ port: 8080, protocol: Protocol.PROTOCOL_HTTP1, defaultBackendId: "shop/b:80" }],
      },
    ],
    backends: [
      backend("shop/a:80", [a.port]),
      backend("shop/b:80", [b.port]),
      backend("shop/canary:80", [canary.port]),
      backend("shop/mirror:80", [mirror.port]),
      // Port 1 on loopback refuses connections: a mirror that is down.
      backend("shop/down:80", [1]),
      {
        ...backend("shop/empty:80", []),
        endpoints: [{ ip: "127.0.0.1", port: a.port, ready: false, serving: false }],
      },
      {
        ...backend("shop/terminating:80", []),
        endpoints: [{ ip: "127.0.0.1", port: a.port, ready: false, serving: true, terminating: true }],
      },
    ],
    localPods: [
      { namespace: "mobile", name: "app-1", ips: ["127.0.0.2"], captured: true },
      { namespace: "shop", name: "front-1", ips: ["127.0.0.3"], captured: true },
    ],
  });
  agent = testAgent({ debugHeaders: true, random: seededRandom(42) });
  await agent.apply(t);
  const ports = agent.listenerPorts();
  web = ports.get("shop/web:80") as number;
  plain = ports.get("shop/plain:8080") as number;
  silent = testAgent();
  await silent.apply(t);
  silentWeb = silent.listenerPorts().get("shop/web:80") as number;
});

afterAll(async () => {
  closeClientAgents();
  await Promise.all([agent.close(), silent.close()]);
  await Promise.all([a.close(), b.close(), canary.close(), mirror.close()]);
});

const body = (r: { body: string }) =>
  JSON.parse(r.body) as { backend: string; url: string; headers: Record<string, string> };

describe("table → listeners", () => {
  it("exposes one listener per meshed service port and the VIP:port → listener port map", () => {
    const map = agent.portMap();
    expect(map).toEqual([
      { serviceIp: "10.96.0.10", port: 80, listenerPort: web, service: "shop/web:80", protocol: "h1" },
      {
        serviceIp: "10.96.0.11",
        port: 8080,
        listenerPort: plain,
        service: "shop/plain:8080",
        protocol: "h1",
      },
    ]);
    expect(agent.version).toEqual({ epoch: 1, number: 1 });
  });
});

describe("which routes a request sees", () => {
  it("a service port without routes forwards to the Service's own endpoints", async () => {
    const r = await request(plain, { path: "/anything" });
    expect(r.status).toBe(200);
    expect(body(r).backend).toBe("b");
  });

  it("producer routes apply to unknown sources and to clients without a consumer set", async () => {
    for (const from of ["127.0.0.1", "127.0.0.3"]) {
      const r = await request(web, { path: "/orders", from });
      expect(body(r).backend).toBe("a");
      expect(r.headers["x-trellis-route"]).toBe("shop/web-b#0");
    }
  });

  it("a consumer set replaces the producer routes for its namespace", async () => {
    const r = await request(web, { path: "/orders", from: "127.0.0.2" });
    expect(r.status).toBe(200);
    expect(body(r).backend).toBe("b");
    expect(body(r).headers["x-consumer"]).toBe("mobile");
    // Not merged: a path only the producer routes know is a 404 for the consumer.
    const miss = await request(web, { path: "/api/x", from: "127.0.0.2" });
    expect(miss.status).toBe(404);
  });

  it("routes attached but no rule matches → 404", async () => {
    const r = await request(web, { path: "/nothing-here" });
    expect(r.status).toBe(404);
  });

  it("first match in compiled order wins; method, query and ORed matches", async () => {
    expect(body(await request(web, { path: "/orders", method: "POST" })).backend).toBe("b");
    expect(body(await request(web, { path: "/orders?v=3" })).backend).toBe("canary");
    expect(body(await request(web, { path: "/orders?v=4" })).backend).toBe("a");
    expect(body(await request(web, { path: "/also-canary" })).backend).toBe("canary");
    // The header match precedes everything else in this table.
    expect(body(await request(web, { path: "/old/x", headers: { "x-canary": "yes" } })).backend).toBe(
      "canary",
    );
  });

  it("the Host header does not influence routing", async () => {
    const r = await request(web, { path: "/orders", headers: { host: "unrelated.example" } });
    expect(body(r).backend).toBe("a");
    expect(body(r).headers.host).toBe("unrelated.example");
  });
});

describe("filters", () => {
  it("request header modifiers run rule first, then backend; response modifiers likewise", async () => {
    const r = await request(web, {
      path: "/p",
      headers: { "x-canary": "yes", "x-level": "client", "X-List": "client", "x-secret": "s" },
    });
    const got = body(r);
    expect(got.backend).toBe("canary");
    expect(got.headers["x-level"]).toBe("backend");
    expect(got.headers["x-list"]).toBe("client,rule,be");
    expect(got.headers["x-secret"]).toBeUndefined();
    expect(r.headers["x-resp"]).toBe("rule,backend");
    expect(r.headers["x-backend"]).toBeUndefined();
  });

  it("RequestRedirect answers without a backend: scheme, host, prefix path, status; query kept", async () => {
    const before = a.requests.length + b.requests.length + canary.requests.length;
    const r = await request(web, { path: "/old/page?q=1" });
    expect(r.status).toBe(301);
    expect(r.headers.location).toBe("https://secure.example/new/page?q=1");
    expect(a.requests.length + b.requests.length + canary.requests.length).toBe(before);
  });

  it("URLRewrite replaces the matched prefix and the Host", async () => {
    const r = await request(web, { path: "/api/items/7?x=1" });
    const got = body(r);
    expect(got.url).toBe("/v2/items/7?x=1");
    expect(got.headers.host).toBe("rewritten.example");
  });

  it("URLRewrite ReplaceFullPath", async () => {
    const got = body(await request(web, { path: "/full?k=v" }));
    expect(got.url).toBe("/replaced?k=v");
  });

  it("RequestMirror sends a copy, and a mirror that is down never affects the response", async () => {
    const seen = mirror.requests.length;
    const r = await request(web, { path: "/mirrored/x", method: "POST", body: "payload" });
    expect(r.status).toBe(200);
    expect(body(r).backend).toBe("a");
    for (let i = 0; i < 50 && mirror.requests.length === seen; i++) await sleep(10);
    const copy = mirror.requests[mirror.requests.length - 1];
    expect(copy?.url).toBe("/mirrored/x");
    expect(copy?.body).toBe("payload");
    const down = await request(web, { path: "/mirror-down" });
    expect(down.status).toBe(200);
    expect(body(down).backend).toBe("a");
  });

  it("a slow mirror does not delay the response", async () => {
    mirror.handler = (_req, res) => setTimeout(() => res.end("late"), 1_000);
    try {
      const t0 = performance.now();
      const r = await request(web, { path: "/mirrored/slow" });
      expect(r.status).toBe(200);
      expect(performance.now() - t0).toBeLessThan(500);
    } finally {
      mirror.handler = null;
    }
  });
});

describe("answers made by the agent", () => {
  it("an invalid rule answers 500", async () => {
    expect((await request(web, { path: "/invalid" })).status).toBe(500);
  });

  it("an invalid backend gets its share of requests as 500", async () => {
    const codes = new Map<number, number>();
    for (let i = 0; i < 200; i++) {
      const s = (await request(web, { path: "/mixed" })).status;
      codes.set(s, (codes.get(s) ?? 0) + 1);
    }
    expect([...codes.keys()].sort()).toEqual([200, 500]);
    // 1:1 weights; the seeded random keeps this deterministic, and ±15 % is > 4 σ anyway.
    expect(codes.get(500)).toBeGreaterThan(70);
    expect(codes.get(500)).toBeLessThan(130);
  });

  it("a backend without ready or serving endpoints answers 503", async () => {
    expect((await request(web, { path: "/empty" })).status).toBe(503);
  });

  it("serving-while-terminating endpoints are used when none is ready", async () => {
    const r = await request(web, { path: "/terminating" });
    expect(r.status).toBe(200);
    expect(body(r).backend).toBe("a");
  });
});

describe("weights", () => {
  it("an 80/20 split holds within ±5 % over 1,000 requests", async () => {
    // The agent's random source is a seeded PRNG and requests are sequential, so
    // the outcome is deterministic. With Math.random the bound would still be
    // safe: the share's standard deviation is sqrt(0.8·0.2/1000) ≈ 1.26 %, so
    // ±5 % is ≈ 4 σ (two-sided failure probability ≈ 7·10⁻⁵).
    let toA = 0;
    for (let i = 0; i < 1_000; i++) {
      const r = await request(web, { path: "/split" });
      if (body(r).backend === "a") toA++;
    }
    expect(Math.abs(toA / 1_000 - 0.8)).toBeLessThanOrEqual(0.05);
  });
});

describe("debug headers", () => {
  it("are off by default and name route#rule and backend when on", async () => {
    const off = await request(silentWeb, { path: "/orders" });
    expect(off.headers["x-trellis-route"]).toBeUndefined();
    expect(off.headers["x-trellis-backend"]).toBeUndefined();
    const on = await request(web, { path: "/orders", method: "POST" });
    expect(on.headers["x-trellis-route"]).toBe("shop/web#post-only");
    expect(on.headers["x-trellis-backend"]).toBe("shop/b:80");
  });
});
