import type { NodeTable } from "@trellis/api";
import { describe, expect, it } from "vitest";
import { captureStatuses } from "./capture-status.ts";

const table: NodeTable = {
  node: "n1",
  services: [],
  backends: [],
  capturedNamespaces: ["faces"],
  localPods: [
    { namespace: "faces", name: "a", ips: ["10.244.1.5"], captured: true },
    { namespace: "faces", name: "new", ips: [], captured: true },
    { namespace: "faces", name: "optout", ips: ["10.244.1.6"], captured: false },
  ],
};

describe("captureStatuses", () => {
  it("marks captured pods enabled once applied, pending without an address, and clears uncaptured ones", () => {
    expect(Object.fromEntries(captureStatuses(table, "ack"))).toEqual({
      "faces/a": "enabled",
      "faces/new": "pending",
      "faces/optout": null,
    });
  });

  it("marks captured pods failed when the agent rejected the version", () => {
    expect(captureStatuses(table, "nack").get("faces/a")).toBe("failed");
    expect(captureStatuses(table, "nack").get("faces/optout")).toBeNull();
  });
});
