import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeTables } from "../compute-tables.ts";
import { buildSnapshot } from "../snapshot/build-snapshot.ts";
import { clusterArbitrary, corruptedClusterArbitrary } from "../testing/cluster-arbitraries.ts";
import { CONTROLLER_NAME } from "./resolution.ts";
import { resolveRoutes } from "./resolve-routes.ts";

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

describe("resolveRoutes on random clusters", () => {
  it("never throws, even on corrupted objects, and gives every Service parentRef a status", () => {
    fc.assert(
      fc.property(corruptedClusterArbitrary, (objects) => {
        const { snapshot, resolution } = computeTables(objects);
        expect(resolution.statuses.length).toBe(snapshot.routes.length);
        for (const route of snapshot.routes) {
          const status = resolution.statuses.find(
            (s) => s.kind === route.kind && s.namespace === route.namespace && s.name === route.name,
          );
          expect(status).toBeDefined();
          const ours = new Set(
            route.parentRefs
              .filter(
                (p) => p.kind === "Service" && ["", "core", "gateway.networking.k8s.io"].includes(p.group),
              )
              .map((p) =>
                JSON.stringify([p.group, p.namespace ?? route.namespace, p.name, p.port, p.sectionName]),
              ),
          );
          expect(status?.parents.length).toBe(ours.size);
          for (const parent of status?.parents ?? []) {
            expect(parent.controllerName).toBe(CONTROLLER_NAME);
            expect(parent.conditions.map((c) => c.type).slice(0, 2)).toEqual(["Accepted", "ResolvedRefs"]);
            for (const c of parent.conditions) {
              expect(c.observedGeneration).toBe(route.generation);
              expect(c.message.length).toBeGreaterThan(0);
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("programs a route only through parents that accepted it, and keeps the backendRef weights", () => {
    fc.assert(
      fc.property(clusterArbitrary, (objects) => {
        const snapshot = buildSnapshot(objects);
        const resolution = resolveRoutes(snapshot);
        const accepted = new Set(
          resolution.statuses
            .filter((s) =>
              s.parents.some((p) => p.conditions.some((c) => c.type === "Accepted" && c.status === "True")),
            )
            .map((s) => `${s.namespace}/${s.name}`),
        );
        const routes = objects.filter(
          (o): o is Record<string, unknown> =>
            isRecord(o) && (o.kind === "HTTPRoute" || o.kind === "GRPCRoute"),
        );
        for (const service of resolution.services) {
          for (const port of service.ports) {
            for (const set of port.routeSets) {
              for (const match of set.matches) expect(set.rules[match.rule]).toBeDefined();
              for (const rule of set.rules) {
                expect(accepted.has(`${rule.route?.namespace}/${rule.route?.name}`)).toBe(true);
                if (rule.action?.$case !== "forward") continue;
                const source = routes.find((r) => {
                  const meta = r.metadata as Record<string, unknown>;
                  return meta.namespace === rule.route?.namespace && meta.name === rule.route?.name;
                });
                const spec = source?.spec as { rules: { backendRefs?: { weight?: number }[] }[] };
                const refs = spec.rules[rule.ruleIndex]?.backendRefs ?? [];
                const weights = refs.map((r) => r.weight ?? 1).filter((w) => w > 0);
                expect(rule.action.forward.backends.map((b) => b.weight)).toEqual(weights);
              }
            }
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("resolveRoutes examples", () => {
  const service = (name: string, clusterIP: string) => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "app" },
    // An undeclared protocol, so both route kinds may attach.
    spec: { clusterIP, ports: [{ name: "web", port: 80, targetPort: 8080 }] },
  });
  const route = (kind: string, name: string, created: string) => ({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind,
    metadata: { name, namespace: "app", creationTimestamp: created, generation: 3 },
    spec: {
      parentRefs: [{ group: "", kind: "Service", name: "api" }],
      rules: [{ backendRefs: [{ name: "api", port: 80 }] }],
    },
  });

  it("lets the GRPCRoute win a port even when the HTTPRoute is older", () => {
    const { statuses, services } = resolveRoutes(
      buildSnapshot([
        service("api", "10.96.0.1"),
        route("HTTPRoute", "old-http", "2020-01-01T00:00:00Z"),
        route("GRPCRoute", "new-grpc", "2024-01-01T00:00:00Z"),
      ]),
    );
    const http = statuses.find((s) => s.name === "old-http");
    expect(http?.parents[0]?.conditions[0]).toMatchObject({
      type: "Accepted",
      status: "False",
      reason: "Conflicted",
    });
    expect(services[0]?.ports[0]?.routeSets.map((s) => s.rules.map((r) => r.route?.name))).toEqual([
      ["new-grpc"],
    ]);
  });

  it("writes one status entry for a parentRef listed twice", () => {
    const twice = route("HTTPRoute", "twice", "2024-01-01T00:00:00Z");
    twice.spec.parentRefs.push({ group: "", kind: "Service", name: "api" });
    const { statuses } = resolveRoutes(buildSnapshot([service("api", "10.96.0.1"), twice]));
    expect(statuses[0]?.parents).toHaveLength(1);
  });
});
