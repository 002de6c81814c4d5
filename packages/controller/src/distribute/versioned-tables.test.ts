import type { NodeTable } from "@trellis/api";
import { describe, expect, it } from "vitest";
import { VersionedTables } from "./versioned-tables.ts";

const table = (node: string, pods: string[]): NodeTable => ({
  node,
  services: [],
  backends: [],
  localPods: pods.map((name) => ({ namespace: "ns", name, ips: [], captured: true })),
  capturedNamespaces: ["ns"],
});

describe("VersionedTables", () => {
  it("bumps a node's version only when it gets a new table object", () => {
    const v = new VersionedTables(7);
    const n1 = table("n1", ["a"]);
    const n2 = table("n2", []);
    expect(
      v.update(
        new Map([
          ["n1", n1],
          ["n2", n2],
        ]),
      ).changed,
    ).toEqual(["n1", "n2"]);
    const first = v.get("n1")!.table.version;
    expect(
      v.update(
        new Map([
          ["n1", n1],
          ["n2", n2],
        ]),
      ).changed,
    ).toEqual([]);
    expect(v.get("n1")!.table.version).toEqual(first);
    expect(
      v.update(
        new Map([
          ["n1", table("n1", ["a", "b"])],
          ["n2", n2],
        ]),
      ).changed,
    ).toEqual(["n1"]);
    expect(v.get("n1")!.table.version?.epoch).toBe(7);
    expect(v.get("n1")!.table.version?.number).toBeGreaterThan(first!.number);
  });

  it("gives equal content the same digest, whatever the version", () => {
    const v = new VersionedTables(1);
    v.update(new Map([["n1", table("n1", ["a"])]]));
    const before = v.get("n1")!.digest;
    v.update(new Map([["n1", table("n1", ["a"])]]));
    expect(v.get("n1")!.digest).toBe(before);
    v.update(new Map([["n1", table("n1", ["b"])]]));
    expect(v.get("n1")!.digest).not.toBe(before);
  });

  it("forgets nodes that no longer have a table", () => {
    const v = new VersionedTables(1);
    v.update(new Map([["n1", table("n1", [])]]));
    expect(v.update(new Map()).removed).toEqual(["n1"]);
    expect(v.nodes()).toEqual([]);
  });
});
