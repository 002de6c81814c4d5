import { MatchType, type NodeTable, Protocol, RouteKind } from "@trellis/api";
import { afterAll, describe, expect, it } from "vitest";
import { EndpointRegistry } from "../endpoints/backend.ts";
import { BreakerGroup } from "../endpoints/breaker.ts";
import { backend, forwardTo, httpMatch, type RuleP, table } from "../testing/loopback.ts";
import { compileTable, directAnswer, grpcStatusForHttp, TableError } from "./compile.ts";

const breakers = new BreakerGroup();
const registry = new EndpointRegistry({ breakers, ewmaDecayMs: 1000, ewmaInitialMs: 0 });
afterAll(() => {
  registry.close();
  breakers.close();
});

function withRules(rules: RuleP[], extra: Partial<Parameters<typeof table>[0]> = {}): NodeTable {
  return table({
    services: [
      {
        namespace: "n",
        name: "s",
        clusterIps: ["10.0.0.1"],
        ports: [
          {
            port: 80,
            protocol: Protocol.PROTOCOL_HTTP1,
            defaultBackendId: "n/s:80",
            routeSets: [
              {
                clientNamespace: "*",
                kind: RouteKind.ROUTE_KIND_HTTP,
                rules,
                matches: rules.map((_, i) =>
                  httpMatch(i, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/" } }),
                ),
              },
            ],
          },
        ],
      },
    ],
    backends: [backend("n/s:80", [8080]), backend("n/t:80", [8081])],
    ...extra,
  });
}

const compile = (t: NodeTable) => compileTable(t, registry);

describe("compileTable", () => {
  it("compiles a table into port plans, route sets and backends", () => {
    const c = compile(withRules([{ action: forwardTo(["n/s:80", 3], ["n/t:80", 1]) }]));
    const plan = c.ports.get("n/s:80");
    expect(plan?.protocol).toBe("h1");
    expect(plan?.producer?.matches).toHaveLength(1);
    expect(plan?.defaultRule?.action.kind).toBe("forward");
    expect([...c.backends.keys()].sort()).toEqual(["n/s:80", "n/t:80"]);
    expect(c.versionLabel).toBe("1/1");
  });

  it("rejects references to backends the table does not define", () => {
    expect(() => compile(withRules([{ action: forwardTo(["n/missing:80", 1]) }]))).toThrow(TableError);
    expect(() =>
      compile(withRules([{ action: forwardTo(["n/s:80", 1]), mirrors: [{ backendId: "n/x:80" }] }])),
    ).toThrow(/mirror refers to backend/);
  });

  it("rejects a forward without weight, a match pointing past the rules and an uncompilable regex", () => {
    expect(() => compile(withRules([{ action: forwardTo(["n/s:80", 0]) }]))).toThrow(/weight > 0/);
    const t = withRules([{ action: forwardTo(["n/s:80", 1]) }]);
    const set = t.services[0]?.ports[0]?.routeSets[0];
    if (set === undefined) throw new Error("fixture");
    set.matches.push({ rule: 5, match: undefined });
    expect(() => compile(t)).toThrow(/refers to rule 5/);
    const bad = withRules([{ action: forwardTo(["n/s:80", 1]) }]);
    const m = bad.services[0]?.ports[0]?.routeSets[0]?.matches[0];
    if (m?.match?.$case === "http") m.match.http.path = { type: MatchType.MATCH_TYPE_REGEX, value: "(" };
    expect(() => compile(bad)).toThrow(TableError);
  });

  it("rejects header modifiers and rewrites that could inject into a request", () => {
    const inject = (v: string) =>
      withRules([{ action: forwardTo(["n/s:80", 1]), requestHeaders: { set: [{ name: "x-a", value: v }] } }]);
    expect(() => compile(inject("ok value"))).not.toThrow();
    expect(() => compile(inject("a\r\nx-evil: 1"))).toThrow(/invalid value/);
    expect(() =>
      compile(
        withRules([
          { action: forwardTo(["n/s:80", 1]), requestHeaders: { add: [{ name: "bad name", value: "v" }] } },
        ]),
      ),
    ).toThrow(/invalid header name/);
    expect(() =>
      compile(withRules([{ action: forwardTo(["n/s:80", 1]), urlRewrite: { hostname: "a b" } }])),
    ).toThrow(/URLRewrite hostname/);
  });

  it("rejects duplicate service ports and an unusable listener port range", () => {
    const t = withRules([{ action: forwardTo(["n/s:80", 1]) }]);
    const svc = t.services[0];
    if (svc === undefined) throw new Error("fixture");
    t.services.push(svc);
    expect(() => compile(t)).toThrow(/defined twice/);
    const r = withRules([{ action: forwardTo(["n/s:80", 1]) }]);
    r.settings = { listenerPortMin: 2000, listenerPortMax: 1000, failMode: 0, retryBodyLimitBytes: 0 };
    expect(() => compile(r)).toThrow(/not a valid range/);
  });

  it("maps HTTP statuses to gRPC statuses for agent answers", () => {
    expect(grpcStatusForHttp(404)).toBe(12);
    expect(grpcStatusForHttp(503)).toBe(14);
    expect(directAnswer(503, 0, "x").grpcStatus).toBe(14);
    expect(directAnswer(500, 12, "x").grpcStatus).toBe(12);
    expect(directAnswer(0, undefined, "").httpStatus).toBe(500);
  });
});
