// Telemetry: the admin server's Prometheus metrics after real traffic.

import http from "node:http";
import type { AddressInfo } from "node:net";
import { MatchType, Protocol, RouteKind } from "@trellis/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAdminServer } from "./admin.ts";
import type { Agent } from "./agent.ts";
import { AgentMetrics } from "./metrics.ts";
import {
  backend,
  closeClientAgents,
  forwardTo,
  type HttpBackend,
  httpMatch,
  portRange,
  request,
  startHttpBackend,
  table,
  testAgent,
} from "./testing/loopback.ts";

let h: HttpBackend;
let agent: Agent;
let admin: http.Server;
let adminPort: number;
let port: number;

const range = portRange();
const t = (n: number, withBackend = true) =>
  table(
    {
      settings: range,
      services: [
        {
          namespace: "shop",
          name: "web",
          clusterIps: ["10.96.6.1"],
          ports: [
            {
              port: 80,
              protocol: Protocol.PROTOCOL_HTTP1,
              defaultBackendId: "shop/web:80",
              routeSets: [
                {
                  clientNamespace: "*",
                  kind: RouteKind.ROUTE_KIND_HTTP,
                  rules: [
                    {
                      route: { kind: RouteKind.ROUTE_KIND_HTTP, namespace: "shop", name: "web" },
                      ruleIndex: 0,
                      ruleName: "api",
                      action: forwardTo([withBackend ? "shop/web:80" : "shop/other:80", 1]),
                    },
                  ],
                  matches: [httpMatch(0, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/api" } })],
                },
              ],
            },
          ],
        },
      ],
      // Without "withBackend", shop/web:80 loses its endpoint and the route moves to shop/other:80.
      backends: [backend("shop/web:80", withBackend ? [h.port] : []), backend("shop/other:80", [h.port])],
      localPods: [{ namespace: "mobile", name: "app", ips: ["127.0.0.2"], captured: true }],
    },
    n,
  );

beforeAll(async () => {
  h = await startHttpBackend("h");
  const metrics = new AgentMetrics();
  agent = testAgent({ metrics });
  await agent.apply(t(7));
  port = agent.listenerPorts().get("shop/web:80") as number;
  admin = await startAdminServer(agent, metrics, "127.0.0.1", 0);
  adminPort = (admin.address() as AddressInfo).port;
});

afterAll(async () => {
  closeClientAgents();
  admin.close();
  await agent.close();
  await h.close();
});

function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port: adminPort, path, agent: false }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("metrics", () => {
  it("counts requests by source namespace, destination, route, rule, backend and code", async () => {
    for (let i = 0; i < 3; i++) await request(port, { path: "/api/x", from: "127.0.0.2" });
    await request(port, { path: "/nope" });
    const { status, body } = await get("/metrics");
    expect(status).toBe(200);
    expect(body).toContain(
      'trellis_requests_total{source_namespace="mobile",destination_service="shop/web:80",route="shop/web",rule="api",backend="shop/web:80",code="200",grpc_status=""} 3',
    );
    expect(body).toContain(
      'trellis_requests_total{source_namespace="",destination_service="shop/web:80",route="",rule="",backend="",code="404",grpc_status=""} 1',
    );
    expect(body).toMatch(
      /trellis_request_duration_seconds_bucket\{le="0\.1",source_namespace="mobile",[^}]*\} 3/,
    );
    expect(body).toContain('trellis_table_version{epoch="1"} 7');
    expect(body).toContain('trellis_table_applies_total{result="ok"} 1');
    expect(body).toMatch(/trellis_upstream_connections\{protocol="http1"\} [1-9]/);
    expect(body).toContain('trellis_breaker_endpoints{backend="shop/web:80",state="closed"} 1');
    expect(body).toContain('trellis_breaker_endpoints{backend="shop/other:80",state="closed"} 1');
    expect(body).toContain("trellis_listeners 1");
  });

  it("tracks new versions, rejected tables and endpoints that went away", async () => {
    await agent.apply(t(8, false));
    const bad = t(9);
    bad.backends = [];
    await expect(agent.apply(bad)).rejects.toThrow();
    const { body } = await get("/metrics");
    expect(body).toContain('trellis_table_version{epoch="1"} 8');
    expect(body).not.toContain('trellis_table_version{epoch="1"} 7');
    expect(body).toContain('trellis_table_applies_total{result="rejected"} 1');
    expect(body).toContain('trellis_breaker_endpoints{backend="shop/other:80",state="closed"} 1');
    expect(body).not.toContain('trellis_breaker_endpoints{backend="shop/web:80"');
    await agent.apply(t(10));
  });

  it("serves health, readiness and the port map", async () => {
    expect((await get("/healthz")).status).toBe(200);
    expect((await get("/readyz")).status).toBe(200);
    const pm = JSON.parse((await get("/debug/portmap")).body) as { portMap: { listenerPort: number }[] };
    expect(pm.portMap[0]?.listenerPort).toBe(port);
    const eps = JSON.parse((await get("/debug/endpoints")).body) as { backend: string; breaker: string }[];
    expect(eps.map((e) => `${e.backend} ${e.breaker}`).sort()).toEqual([
      "shop/other:80 closed",
      "shop/web:80 closed",
    ]);
  });
});
