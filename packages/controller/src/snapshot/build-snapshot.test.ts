import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildSnapshot } from "./build-snapshot.ts";

describe("buildSnapshot", () => {
  it("turns anything into a snapshot plus issues, never an exception", () => {
    fc.assert(
      fc.property(fc.array(fc.anything()), (objects) => {
        const snapshot = buildSnapshot(objects);
        expect(snapshot.routes.length).toBeLessThanOrEqual(objects.length);
      }),
      { numRuns: 500 },
    );
  });

  it("reports unreadable objects and fields with where they are", () => {
    const snapshot = buildSnapshot([
      "not an object",
      { kind: "Service", metadata: { name: "no-namespace" } },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web", namespace: "app" },
        spec: { ports: "80" },
      },
      { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web", namespace: "app" } },
    ]);
    expect(snapshot.issues.map((i) => `${i.object}: ${i.message}`)).toEqual([
      "Deployment app/web: kind apps/v1/Deployment is not watched by Trellis",
      'Service app/web: spec.ports: must be a list, got string "80"',
      "Service no-namespace: has no metadata.namespace; skipped",
      'document 1: is string "not an object", not a Kubernetes object',
    ]);
    expect(snapshot.services.get("app/web")?.ports).toEqual([]);
  });

  it("applies the defaults the API server would", () => {
    const snapshot = buildSnapshot([
      {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        metadata: { name: "r", namespace: "app" },
        spec: {
          parentRefs: [{ name: "gw" }, { group: "", kind: "Service", name: "web" }],
          rules: [{ backendRefs: [{ name: "web", port: 80 }] }],
        },
      },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web", namespace: "app" },
        spec: { clusterIP: "10.96.0.1", ports: [{ name: "http", port: 80 }] },
      },
    ]);
    const route = snapshot.routes[0];
    expect(route?.parentRefs.map((p) => `${p.group}/${p.kind}/${p.name}`)).toEqual([
      "gateway.networking.k8s.io/Gateway/gw",
      "/Service/web",
    ]);
    expect(route?.rules[0]?.backendRefs[0]).toMatchObject({
      group: "",
      kind: "Service",
      namespace: "app",
      weight: 1,
    });
    expect(route?.createdAtMs).toBe(Number.POSITIVE_INFINITY);
    expect(snapshot.services.get("app/web")?.ports[0]).toMatchObject({ protocol: "TCP", targetPort: 80 });
  });

  it("keeps an HTTPRoute without rules as one catch-all rule, as the CRD defaults it", () => {
    const snapshot = buildSnapshot([
      {
        apiVersion: "gateway.networking.k8s.io/v1",
        kind: "HTTPRoute",
        metadata: { name: "r", namespace: "app" },
        spec: { parentRefs: [{ group: "", kind: "Service", name: "web" }] },
      },
    ]);
    expect(snapshot.routes[0]?.rules).toHaveLength(1);
    expect(snapshot.routes[0]?.rules[0]?.matches).toEqual([]);
  });
});
