import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  applyToList,
  applyToObject,
  type CompiledHeaderModifier,
  compileHeaderModifier,
  getFromList,
  listToObject,
} from "./headers.ts";

const mod = (m: Partial<{ set: [string, string][]; add: [string, string][]; remove: string[] }>) =>
  compileHeaderModifier({
    set: (m.set ?? []).map(([name, value]) => ({ name, value })),
    add: (m.add ?? []).map(([name, value]) => ({ name, value })),
    remove: m.remove ?? [],
  }) as CompiledHeaderModifier;

describe("header modifiers", () => {
  it("set overwrites, add appends as old,new, remove deletes, case-insensitively", () => {
    const list = ["Host", "a", "X-Keep", "1", "X-Set", "old", "x-add", "v1", "X-Add", "v2", "X-Gone", "z"];
    applyToList(
      list,
      mod({
        set: [["x-set", "new"]],
        add: [
          ["x-add", "v3"],
          ["x-fresh", "f"],
        ],
        remove: ["x-gone"],
      }),
    );
    expect(listToObject(list)).toEqual({
      host: "a",
      "x-keep": "1",
      "x-set": "new",
      "x-add": "v1,v2,v3",
      "x-fresh": "f",
    });
  });

  it("applies in the order set, add, remove", () => {
    const list: string[] = [];
    applyToList(list, mod({ set: [["x", "1"]], add: [["x", "2"]], remove: [] }));
    expect(getFromList(list, "x")).toBe("1,2");
    const list2: string[] = [];
    applyToList(list2, mod({ set: [["x", "1"]], remove: ["x"] }));
    expect(list2).toEqual([]);
  });

  it("an empty modifier compiles to null", () => {
    expect(compileHeaderModifier(undefined)).toBeNull();
    expect(compileHeaderModifier({ set: [], add: [], remove: [] })).toBeNull();
  });

  const name = fc.constantFrom("a", "b", "c", "X-Mixed", "x-mixed");
  const value = fc.stringMatching(/^[a-z0-9]{0,4}$/);
  const list = fc.array(fc.tuple(name, value), { maxLength: 8 }).map((pairs) => pairs.flat());
  const modifier = fc
    .record({
      set: fc.array(fc.tuple(name, value), { maxLength: 3 }),
      add: fc.array(fc.tuple(name, value), { maxLength: 3 }),
      remove: fc.array(name, { maxLength: 3 }),
    })
    .map((m) =>
      compileHeaderModifier({
        set: m.set.map(([n, v]) => ({ name: n, value: v })),
        add: m.add.map(([n, v]) => ({ name: n, value: v })),
        remove: m.remove,
      }),
    );

  it("list and object representations agree (HTTP/1 and HTTP/2 paths behave the same)", () => {
    fc.assert(
      fc.property(list, modifier, (l, m) => {
        if (m === null) return;
        const asList = l.slice();
        applyToList(asList, m);
        const asObject: Record<string, string | string[] | undefined> = listToObject(l);
        applyToObject(asObject, m);
        expect(listToObject(asList)).toEqual(asObject);
      }),
    );
  });

  it("after a modifier, every set name has exactly its value and no removed name is left", () => {
    fc.assert(
      fc.property(list, modifier, (l, m) => {
        if (m === null) return;
        applyToList(l, m);
        const removed = new Set(m.remove);
        for (const n of removed) expect(getFromList(l, n)).toBeUndefined();
        const lastSet = new Map(m.set);
        for (const [n, v] of lastSet) {
          if (removed.has(n) || m.add.some(([a]) => a === n)) continue;
          expect(getFromList(l, n)).toBe(v);
        }
      }),
    );
  });
});
