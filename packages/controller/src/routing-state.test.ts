import { applyTableDelta, ControllerMessage, NodeTable, TableDelta, tableDelta } from "@trellis/api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeTables } from "./compute-tables.ts";
import { encodeNodeTable, encodeTableUpdateMessage, tableDigest } from "./distribute/table-bytes.ts";
import { type ObjectChange, RoutingState } from "./routing-state.ts";
import { objectIdentity } from "./snapshot/build-snapshot.ts";
import { clusterArbitrary } from "./testing/cluster-arbitraries.ts";

function encodedTables(tables: ReadonlyMap<string, NodeTable>): Map<string, string> {
  return new Map(
    [...tables].map(([node, t]) => [node, Buffer.from(NodeTable.encode(t).finish()).toString("hex")]),
  );
}

function keyOf(obj: unknown): string {
  return objectIdentity(obj)?.key ?? "";
}

type Op = { readonly kind: "upsert" | "remove" | "touch"; readonly pick: number; readonly endBatch: boolean };

const op: fc.Arbitrary<Op> = fc.record({
  kind: fc.constantFrom("upsert", "upsert", "upsert", "remove", "touch"),
  pick: fc.nat(),
  endBatch: fc.boolean(),
});

describe("RoutingState", () => {
  it("gives the from-scratch result after any sequence of changes, replaces exactly the tables and statuses that changed, and deltas between versions rebuild them", () => {
    fc.assert(
      fc.property(
        clusterArbitrary,
        clusterArbitrary,
        fc.array(op, { maxLength: 40 }),
        (first, second, ops) => {
          // Two versions of a cluster with overlapping names: picking from both
          // gives adds, updates (same identity, other content) and kind changes.
          const pool = [...first, ...second];
          const current = new Map<string, unknown>();
          const state = new RoutingState();
          const initial = state.apply(first.map((object) => ({ object })));
          for (const o of first) current.set(keyOf(o), o);
          expect(initial.removedNodes).toEqual([]);

          let batch: ObjectChange[] = [];
          let before = new Map(state.tables());
          let beforeEncoded = encodedTables(before);
          let beforeStatuses = new Map(
            state.statuses().map((s) => [`${s.kind}/${s.namespace}/${s.name}`, s]),
          );
          const check = () => {
            const update = state.apply(batch);
            batch = [];
            const reference = computeTables([...current.values()]);
            const after = state.tables();
            const afterEncoded = encodedTables(after);
            expect(afterEncoded).toEqual(encodedTables(reference.tables));
            expect(state.statuses()).toEqual(reference.resolution.statuses);
            expect(state.resolution().services).toEqual(reference.resolution.services);
            expect([...state.resolution().backends]).toEqual([...reference.resolution.backends]);

            // A delta from each node's previous table (through the wire) rebuilds exactly the new one.
            for (const [node, table] of after) {
              const prev = before.get(node);
              if (!prev || prev === table) continue;
              const base = { ...prev, version: { epoch: 1, number: 1 } };
              const next = { ...table, version: { epoch: 1, number: 2 } };
              const wire = TableDelta.decode(TableDelta.encode(tableDelta(base, next)).finish());
              expect(Buffer.from(NodeTable.encode(applyTableDelta(base, wire)).finish())).toEqual(
                Buffer.from(NodeTable.encode(next).finish()),
              );
            }
            // Exactly the nodes whose content changed got a new table object.
            for (const [node, table] of after) {
              const changed = beforeEncoded.get(node) !== afterEncoded.get(node);
              expect(update.changedNodes.includes(node)).toBe(changed);
              if (!changed) expect(table).toBe(before.get(node));
            }
            expect(update.removedNodes).toEqual([...before.keys()].filter((n) => !after.has(n)).sort());
            // Exactly the routes whose status changed are reported.
            const afterStatuses = new Map(
              state.statuses().map((s) => [`${s.kind}/${s.namespace}/${s.name}`, s]),
            );
            const changedRoutes = [...new Set([...beforeStatuses.keys(), ...afterStatuses.keys()])]
              .filter((k) => JSON.stringify(beforeStatuses.get(k)) !== JSON.stringify(afterStatuses.get(k)))
              .sort();
            expect(update.changedRoutes).toEqual(changedRoutes);
            for (const [k, s] of afterStatuses)
              if (!changedRoutes.includes(k)) expect(s).toBe(beforeStatuses.get(k));

            before = new Map(after);
            beforeEncoded = afterEncoded;
            beforeStatuses = afterStatuses;
          };
          for (const o of ops) {
            const obj = pool[o.pick % pool.length];
            const key = keyOf(obj);
            if (o.kind === "upsert") {
              current.set(key, obj);
              batch.push({ object: obj });
            } else if (o.kind === "remove") {
              current.delete(key);
              batch.push({ object: obj, deleted: true });
            } else if (current.has(key)) {
              // A new object with the same content (e.g. only its status changed).
              const copy = structuredClone(current.get(key));
              current.set(key, copy);
              batch.push({ object: copy });
            }
            if (o.endBatch) check();
          }
          check();
        },
      ),
      // TRELLIS_PROPERTY_RUNS=5000 for a longer search after changing RoutingState.
      { numRuns: Number(process.env.TRELLIS_PROPERTY_RUNS ?? 300) },
    );
  }, 120_000);

  it("encodes tables from shared parts exactly like NodeTable.encode, and digests equal content equally", () => {
    fc.assert(
      fc.property(clusterArbitrary, (objects) => {
        const state = new RoutingState();
        state.apply(objects.map((object) => ({ object })));
        const reference = computeTables(objects).tables;
        for (const [node, table] of state.tables()) {
          expect(Buffer.from(encodeNodeTable(table))).toEqual(Buffer.from(NodeTable.encode(table).finish()));
          const message: ControllerMessage = { message: { $case: "tableUpdate", tableUpdate: { table } } };
          expect(encodeTableUpdateMessage(table)).toEqual(
            Buffer.from(ControllerMessage.encode(message).finish()),
          );
          expect(tableDigest(table)).toBe(tableDigest(reference.get(node)!));
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe("RoutingState on a hand-made cluster", () => {
  const ns = (name: string) => ({
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name, labels: { "trellis.dev/capture": "enabled" } },
  });
  const node = (name: string) => ({ apiVersion: "v1", kind: "Node", metadata: { name } });
  const svc = (name: string, ip: string) => ({
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "shop" },
    spec: { clusterIP: ip, ports: [{ name: "http", port: 80, targetPort: 8080 }] },
  });
  const pod = (namespace: string, name: string, nodeName: string, ip: string) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace },
    spec: { nodeName },
    status: { phase: "Running", podIP: ip },
  });
  const route = (namespace: string, name: string, backend: string, weight: number) => ({
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace, generation: weight, creationTimestamp: "2026-01-01T00:00:00Z" },
    spec: {
      parentRefs: [{ group: "", kind: "Service", name: "cart", namespace: "shop", port: 80 }],
      rules: [{ backendRefs: [{ name: backend, namespace: "shop", port: 80, weight }] }],
    },
  });
  const base = [
    ns("shop"),
    ns("web"),
    node("n1"),
    node("n2"),
    svc("cart", "10.96.0.1"),
    svc("cart-v2", "10.96.0.2"),
    pod("web", "frontend", "n1", "10.244.1.2"),
    pod("shop", "cart-0", "n2", "10.244.2.2"),
  ];
  const consumerSets = (state: RoutingState, n: string) =>
    state
      .tables()
      .get(n)!
      .services.find((s) => s.name === "cart")!
      .ports[0]!.routeSets.map((s) => s.clientNamespace);

  it("puts a consumer route only where its clients run, and replaces only the tables it changes", () => {
    const state = new RoutingState();
    state.apply(
      [...base, route("shop", "producer", "cart", 1), route("web", "consumer", "cart-v2", 1)].map(
        (object) => ({ object }),
      ),
    );
    expect(consumerSets(state, "n1")).toEqual(["*", "web"]);
    expect(consumerSets(state, "n2")).toEqual(["*"]);
    // Both nodes share the same Service part for cart-v2, and n2 the base list itself.
    const [t1, t2] = [state.tables().get("n1")!, state.tables().get("n2")!];
    expect(t1.services.find((s) => s.name === "cart-v2")).toBe(t2.services.find((s) => s.name === "cart-v2"));
    expect(t1.backends).toBe(t2.backends);

    // A consumer route change touches only the node with its clients.
    expect(state.apply([{ object: route("web", "consumer", "cart-v2", 2) }]).changedNodes).toEqual(["n1"]);
    expect(state.tables().get("n2")).toBe(t2);
    // A producer route change touches every node.
    expect(state.apply([{ object: route("shop", "producer", "cart-v2", 3) }]).changedNodes).toEqual([
      "n1",
      "n2",
    ]);
    // The client leaving n1 drops the consumer set there.
    const moved = state.apply([{ object: pod("web", "frontend", "n2", "10.244.2.9") }]);
    expect(moved.changedNodes).toEqual(["n1", "n2"]);
    expect(consumerSets(state, "n1")).toEqual(["*"]);
    expect(consumerSets(state, "n2")).toEqual(["*", "web"]);
    // Nothing changed: nothing replaced.
    const again = state.apply([{ object: pod("web", "frontend", "n2", "10.244.2.9") }]);
    expect(again.changedNodes).toEqual([]);
    expect(again.changedRoutes).toEqual([]);
  });
});
