import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CONTROLLER_NAME, type RouteParentStatus } from "../resolve/resolution.ts";
import { type ApiParentStatus, mergeRouteParents } from "./route-parent-status.ts";

const ours = (reason: string, port = 80): RouteParentStatus => ({
  parentRef: { group: "", kind: "Service", name: "smiley", port },
  controllerName: CONTROLLER_NAME,
  conditions: [
    {
      type: "Accepted",
      status: reason === "Accepted" ? "True" : "False",
      reason,
      message: "m",
      observedGeneration: 2,
    },
    { type: "ResolvedRefs", status: "True", reason: "ResolvedRefs", message: "ok", observedGeneration: 2 },
  ],
});

const other: ApiParentStatus = {
  parentRef: { group: "gateway.networking.k8s.io", kind: "Gateway", name: "gw" },
  controllerName: "example.com/other",
  conditions: [
    { type: "Accepted", status: "True", reason: "Accepted", message: "", lastTransitionTime: "t0" },
  ],
};

describe("mergeRouteParents", () => {
  it("adds our entry and keeps another controller's entry untouched", () => {
    const merged = mergeRouteParents([other], [ours("Accepted")], "t1");
    expect(merged).toHaveLength(2);
    expect(merged?.[0]).toBe(other);
    expect(merged?.[1]?.conditions.map((c) => c.lastTransitionTime)).toEqual(["t1", "t1"]);
  });

  it("returns undefined when the status already says the same, whatever the order", () => {
    const first = mergeRouteParents([other], [ours("Accepted")], "t1")!;
    expect(mergeRouteParents([...first].reverse(), [ours("Accepted")], "t2")).toBeUndefined();
  });

  it("moves lastTransitionTime only for conditions whose status changed", () => {
    const first = mergeRouteParents([], [ours("Accepted")], "t1")!;
    const second = mergeRouteParents(first, [ours("NoMatchingParent")], "t2")!;
    const byType = Object.fromEntries(second[0]!.conditions.map((c) => [c.type, c.lastTransitionTime]));
    expect(byType).toEqual({ Accepted: "t2", ResolvedRefs: "t1" });
  });

  it("drops our entries for parents the route no longer has", () => {
    const first = mergeRouteParents([other], [ours("Accepted", 80), ours("Accepted", 81)], "t1")!;
    const second = mergeRouteParents(first, [ours("Accepted", 80)], "t2")!;
    expect(second.map((p) => p.parentRef.port ?? p.parentRef.name)).toEqual(["gw", 80]);
  });

  it("is idempotent: merging its own output again changes nothing (property)", () => {
    const reasons = fc.constantFrom("Accepted", "NoMatchingParent", "Conflicted", "UnsupportedValue");
    fc.assert(
      fc.property(fc.array(fc.tuple(reasons, fc.integer({ min: 1, max: 5 })), { maxLength: 5 }), (spec) => {
        const unique = [...new Map(spec.map(([r, p]) => [p, ours(r, p)])).values()];
        const once = mergeRouteParents([other], unique, "t1") ?? [other];
        expect(mergeRouteParents(once, unique, "t2")).toBeUndefined();
      }),
    );
  });
});
