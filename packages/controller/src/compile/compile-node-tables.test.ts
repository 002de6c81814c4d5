import { NodeTable } from "@trellis/api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeTables } from "../compute-tables.ts";
import { clusterArbitrary, permute } from "../testing/cluster-arbitraries.ts";

function encoded(objects: readonly unknown[]): Map<string, string> {
  const { tables } = computeTables(objects);
  return new Map(
    [...tables].map(([node, t]) => [node, Buffer.from(NodeTable.encode(t).finish()).toString("base64")]),
  );
}

describe("compileNodeTables", () => {
  it("is deterministic and independent of the order objects were watched in", () => {
    fc.assert(
      fc.property(clusterArbitrary, fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), (objects, keys) => {
        const first = encoded(objects);
        expect(encoded(objects)).toEqual(first);
        expect(encoded(permute(objects, keys))).toEqual(first);
      }),
      { numRuns: 200 },
    );
  });

  it("keeps endpoints: every ready endpoint of a backend's Service port, and nothing unusable", () => {
    fc.assert(
      fc.property(clusterArbitrary, (objects) => {
        const { snapshot, tables } = computeTables(objects);
        for (const table of tables.values()) {
          for (const backend of table.backends) {
            const service = snapshot.services.get(`${backend.serviceNamespace}/${backend.serviceName}`);
            const port = service?.ports.find((p) => p.port === backend.servicePort);
            expect(port).toBeDefined();
            const slices =
              snapshot.endpointSlices.get(`${backend.serviceNamespace}/${backend.serviceName}`) ?? [];
            const expected = new Set<string>();
            const usable = new Set<string>();
            for (const slice of slices) {
              const slicePort = slice.ports.find((p) => p.name === port?.name);
              for (const e of slice.endpoints) {
                const key = `${e.address}:${slicePort?.port}`;
                if (e.ready) expected.add(key);
                if (e.ready || e.serving) usable.add(key);
              }
            }
            const actual = backend.endpoints.map((e) => `${e.ip}:${e.port}`);
            expect(new Set(actual).size).toBe(actual.length);
            for (const key of expected) expect(actual).toContain(key);
            for (const key of actual) expect(usable.has(key)).toBe(true);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it("puts only local pods and only local client namespaces' consumer routes in a node's table", () => {
    fc.assert(
      fc.property(clusterArbitrary, (objects) => {
        const { snapshot, tables } = computeTables(objects);
        for (const [node, table] of tables) {
          const local = snapshot.pods.filter((p) => p.nodeName === node && !p.hostNetwork);
          expect(table.localPods.map((p) => `${p.namespace}/${p.name}`)).toEqual(
            local.map((p) => `${p.namespace}/${p.name}`),
          );
          const clients = new Set(table.localPods.filter((p) => p.captured).map((p) => p.namespace));
          const referenced = new Set<string>();
          for (const service of table.services) {
            for (const port of service.ports) {
              referenced.add(port.defaultBackendId);
              for (const set of port.routeSets) {
                expect(set.clientNamespace === "*" || clients.has(set.clientNamespace)).toBe(true);
                for (const rule of set.rules) {
                  for (const m of rule.mirrors) referenced.add(m.backendId);
                  if (rule.action?.$case !== "forward") continue;
                  for (const b of rule.action.forward.backends) {
                    if (b.target?.$case === "backendId") referenced.add(b.target.backendId);
                  }
                }
              }
            }
          }
          expect(table.backends.map((b) => b.id).sort()).toEqual([...referenced].sort());
        }
      }),
      { numRuns: 200 },
    );
  });
});
