import type { LocalPod } from "@trellis/api";
import { describe, expect, it } from "vitest";
import { capturePlan, podIsCaptured } from "./capture-plan.ts";

const pod = (namespace: string, name: string, ips: string[], captured: boolean): LocalPod => ({
  namespace,
  name,
  ips,
  captured,
});

const base = { capturedNamespaces: ["faces"], cniPods: [], deleted: new Map(), servicePorts: [] };

describe("capturePlan", () => {
  it("captures the table's captured pods only", () => {
    const plan = capturePlan({
      ...base,
      localPods: [pod("faces", "a", ["10.244.1.5"], true), pod("faces", "optout", ["10.244.1.6"], false)],
    });
    expect(plan.capturedIps).toEqual(["10.244.1.5"]);
  });

  it("takes a new pod's addresses from the CNI shim before the table knows them", () => {
    const plan = capturePlan({
      ...base,
      localPods: [pod("faces", "a", [], true)],
      cniPods: [{ namespace: "faces", name: "a", ips: ["10.244.1.8"] }],
    });
    expect(plan.capturedIps).toEqual(["10.244.1.8"]);
  });

  it("judges a pod the table does not list by its namespace, and lets the table overrule that", () => {
    const cniPods = [
      { namespace: "faces", name: "new", ips: ["10.244.1.9"] },
      { namespace: "other", name: "x", ips: ["10.244.1.10"] },
    ];
    expect(capturePlan({ ...base, localPods: [], cniPods }).capturedIps).toEqual(["10.244.1.9"]);
    expect(
      capturePlan({ ...base, localPods: [pod("faces", "new", [], false)], cniPods }).capturedIps,
    ).toEqual([]);
  });

  it("releases a pod whose sandbox was deleted even while the table still lists it", () => {
    const plan = capturePlan({
      ...base,
      localPods: [pod("faces", "a", ["10.244.1.5"], true)],
      deleted: new Map([["faces/a", ["10.244.1.5"]]]),
    });
    expect(plan.capturedIps).toEqual([]);
  });

  it("releases every pod of a namespace whose label was removed", () => {
    const plan = capturePlan({
      ...base,
      capturedNamespaces: [],
      localPods: [pod("faces", "a", ["10.244.1.5"], false)],
      cniPods: [{ namespace: "faces", name: "b", ips: ["10.244.1.6"] }],
    });
    expect(plan.capturedIps).toEqual([]);
  });
});

describe("podIsCaptured", () => {
  it("prefers the table's verdict and says whether the pod was listed", () => {
    const table = { localPods: [pod("faces", "optout", [], false)], capturedNamespaces: ["faces"] };
    expect(podIsCaptured(table, "faces", "optout")).toEqual({ captured: false, listed: true });
    expect(podIsCaptured(table, "faces", "other")).toEqual({ captured: true, listed: false });
    expect(podIsCaptured(table, "default", "x")).toEqual({ captured: false, listed: false });
  });
});
