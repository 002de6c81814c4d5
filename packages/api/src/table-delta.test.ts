import { describe, expect, it } from "vitest";
import type { NodeTable } from "./gen/trellis/v1/node_table.ts";
import { applyTableDelta, TableDeltaError, tableDelta } from "./table-delta.ts";

const pod = (name: string) => ({ namespace: "ns", name, ips: [], captured: true });
const base: NodeTable = {
  version: { epoch: 7, number: 1 },
  node: "n1",
  services: [],
  backends: [],
  localPods: [pod("a"), pod("b"), pod("c")],
  capturedNamespaces: ["ns"],
};

describe("table deltas", () => {
  it("copies runs of unchanged parts and inserts the rest, in order", () => {
    const next: NodeTable = {
      ...base,
      version: { epoch: 7, number: 2 },
      localPods: [base.localPods[0]!, pod("x"), base.localPods[2]!],
    };
    const delta = tableDelta(base, next);
    expect(delta.localPods.map((e) => e.edit?.$case)).toEqual(["copy", "insert", "copy"]);
    expect(delta.capturedNamespaces).toBeUndefined();
    expect(applyTableDelta(base, delta)).toEqual(next);
  });

  it("gives a correct (insert-only) delta for tables that share no parts", () => {
    const next: NodeTable = { ...base, version: { epoch: 7, number: 2 }, localPods: [pod("a"), pod("b")] };
    const delta = tableDelta(base, next);
    expect(delta.localPods.every((e) => e.edit?.$case === "insert")).toBe(true);
    expect(applyTableDelta(base, delta)).toEqual(next);
  });

  it("refuses a delta for another base, and one that copies past the base's lists", () => {
    const next: NodeTable = { ...base, version: { epoch: 7, number: 3 } };
    const delta = tableDelta({ ...base, version: { epoch: 7, number: 2 } }, next);
    expect(() => applyTableDelta(base, delta)).toThrow(TableDeltaError);
    const bad = { ...tableDelta(base, next) };
    bad.localPods = [{ edit: { $case: "copy", copy: { from: 2, count: 2 } } }];
    expect(() => applyTableDelta(base, bad)).toThrow(/past the base list of 3/);
  });
});
