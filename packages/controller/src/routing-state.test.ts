import { NodeTable } from "@trellis/api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { computeTables } from "./compute-tables.ts";
import { encodeNodeTable, tableDigest } from "./distribute/table-bytes.ts";
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
  it("gives the from-scratch result after any sequence of changes, and replaces exactly the tables and statuses that changed", () => {
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
          expect(tableDigest(table)).toBe(tableDigest(reference.get(node)!));
        }
      }),
      { numRuns: 100 },
    );
  });
});
