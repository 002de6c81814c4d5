import { describe, expect, it } from "vitest";
import { AgentRegistry } from "./agent-registry.ts";
import { agentStatusRows } from "./agent-status.ts";

const v = (number: number) => ({ epoch: 9, number });

describe("agentStatusRows", () => {
  it("shows lag while a sent version is unacknowledged, the last NACK, and nodes without agents", () => {
    const reg = new AgentRegistry();
    reg.connected("n1", "trellis-system/agent-a", 0);
    reg.sent("n1", v(2), 1000);
    reg.acked("n1", v(1), 500);
    reg.nacked("n1", v(2), "port in use", 1200);
    reg.connected("n2", "trellis-system/agent-b", 0);
    reg.sent("n2", v(3), 1000);
    reg.acked("n2", v(3), 1100);
    const tables = new Map([
      ["n1", v(2)],
      ["n2", v(3)],
      ["n3", v(4)],
    ]);
    const rows = agentStatusRows(
      { nodes: () => [...tables.keys()], table: (n) => ({ table: { version: tables.get(n) } }) },
      reg.all(),
      1500,
    );
    expect(rows).toEqual([
      {
        node: "n1",
        desired: "9.2",
        applied: "9.1",
        connected: true,
        pod: "trellis-system/agent-a",
        lagMs: 500,
        lastNack: { version: "9.2", reason: "port in use", ageMs: 300 },
      },
      {
        node: "n2",
        desired: "9.3",
        applied: "9.3",
        connected: true,
        pod: "trellis-system/agent-b",
        lagMs: 0,
      },
      { node: "n3", desired: "9.4", applied: "-", connected: false, pod: "", lagMs: 0 },
    ]);
  });
});
