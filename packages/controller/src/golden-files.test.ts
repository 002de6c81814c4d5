// Golden files for the pure core (ARCHITECTURE.md "Testing the pure cores"):
// testdata/<case>.in.yaml holds Kubernetes objects as a user writes them,
// testdata/<case>.out.yaml the statuses and every node's table. Review changes
// as diffs; regenerate with UPDATE_GOLDEN=1.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NodeTable } from "@trellis/api";
import { describe, expect, it } from "vitest";
import { parseAllDocuments, stringify } from "yaml";
import { describeNodeTable } from "./compile/describe-node-table.ts";
import { computeTables } from "./compute-tables.ts";
import type { RouteStatus } from "./resolve/resolution.ts";
import { RoutingState } from "./routing-state.ts";
import { flattenObjects } from "./snapshot/build-snapshot.ts";

const testdata = join(dirname(fileURLToPath(import.meta.url)), "..", "testdata");
const cases = readdirSync(testdata)
  .filter((f) => f.endsWith(".in.yaml"))
  .map((f) => f.slice(0, -".in.yaml".length))
  .sort();
const update = process.env.UPDATE_GOLDEN === "1";

function readObjects(name: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(join(testdata, `${name}.in.yaml`), "utf8"));
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${name}.in.yaml: ${doc.errors[0]?.message}`);
  }
  return docs.map((d) => d.toJS() as unknown).filter((o) => o !== null && o !== undefined);
}

function describeStatuses(statuses: readonly RouteStatus[]): Record<string, unknown> {
  return Object.fromEntries(
    statuses.map((s) => [
      `${s.kind} ${s.namespace}/${s.name}`,
      s.parents.map((p) => ({
        parentRef: p.parentRef,
        controllerName: p.controllerName,
        conditions: p.conditions.map(
          (c) =>
            `${c.type}=${c.status} ${c.reason} (observedGeneration ${c.observedGeneration}): ${c.message}`,
        ),
      })),
    ]),
  );
}

function render(name: string, objects: readonly unknown[]): string {
  const { snapshot, resolution, tables } = computeTables(objects);
  const body = {
    issues: snapshot.issues.map((i) => `${i.object}: ${i.message}`),
    statuses: describeStatuses(resolution.statuses),
    tables: Object.fromEntries([...tables].map(([node, table]) => [node, describeNodeTable(table)])),
  };
  const header = `# Generated from ${name}.in.yaml by src/golden-files.test.ts; regenerate with UPDATE_GOLDEN=1.\n`;
  return header + stringify(body, { lineWidth: 0, aliasDuplicateObjects: false });
}

function encodedTables(objects: readonly unknown[]): Record<string, string> {
  const { tables } = computeTables(objects);
  return Object.fromEntries(
    [...tables].map(([node, t]) => [node, Buffer.from(NodeTable.encode(t).finish()).toString("hex")]),
  );
}

describe("golden files", () => {
  it("has cases", () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  for (const name of cases) {
    it(name, () => {
      const objects = readObjects(name);
      const actual = render(name, objects);
      const outPath = join(testdata, `${name}.out.yaml`);
      if (update) writeFileSync(outPath, actual);
      else
        expect(actual, `${name}.out.yaml is stale; run with UPDATE_GOLDEN=1 and review the diff`).toBe(
          readFileSync(outPath, "utf8"),
        );

      // The same objects in another order (another watch order) give the same bytes.
      expect(encodedTables([...objects].reverse())).toEqual(encodedTables(objects));

      // The controller's incremental state gives the same tables and statuses.
      const state = new RoutingState();
      state.apply(flattenObjects(objects).map(({ obj }) => ({ object: obj })));
      const reference = computeTables(objects);
      expect(
        Object.fromEntries(
          [...state.tables()].map(([node, t]) => [
            node,
            Buffer.from(NodeTable.encode(t).finish()).toString("hex"),
          ]),
        ),
      ).toEqual(encodedTables(objects));
      expect(state.statuses()).toEqual(reference.resolution.statuses);
    });
  }
});
