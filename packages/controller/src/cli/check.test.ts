import { describe, expect, it } from "vitest";
import type { AgentStatusRow } from "../distribute/agent-status.ts";
import { mergeAgentRows } from "./agent-rows.ts";
import { type CheckInput, evaluateCheck, formatCheck, ROUTE_CRDS } from "./check.ts";

const row = (node: string, over: Partial<AgentStatusRow> = {}): AgentStatusRow => ({
  node,
  desired: "1.5",
  applied: "1.5",
  connected: true,
  pod: `trellis-system/trellis-agent-${node}`,
  lagMs: 0,
  ...over,
});

function healthy(): CheckInput {
  return {
    namespace: "trellis-system",
    crds: ROUTE_CRDS.map((name) => ({
      name,
      present: true,
      bundleVersion: "v1.6.1",
      channel: "experimental",
    })),
    controller: { deployed: true, replicas: 2, readyReplicas: 2, agents: [row("n1"), row("n2")] },
    nodes: ["n1", "n2"],
    agentPods: [
      { name: "trellis-agent-a", node: "n1", ready: true, installCniExitCode: 0 },
      { name: "trellis-agent-b", node: "n2", ready: true, installCniExitCode: 0 },
    ],
    capturedNamespaces: ["faces"],
    capturedPods: [
      { namespace: "faces", name: "face-1", node: "n1", captureStatus: "enabled" },
      { namespace: "faces", name: "smiley-1", node: "n2", captureStatus: "enabled" },
    ],
  };
}

const problems = (input: CheckInput) =>
  evaluateCheck(input)
    .findings.filter((f) => !f.ok)
    .map((f) => `${f.check}: ${f.message}`);

describe("mergeAgentRows", () => {
  it("takes each node's row from the replica its agent is connected to", () => {
    const a = [
      row("n1", { desired: "7.3", applied: "7.3" }),
      row("n2", { connected: false, applied: "-", pod: "" }),
    ];
    const b = [
      row("n1", { connected: false, applied: "-", pod: "" }),
      row("n2", { desired: "9.4", applied: "9.4" }),
    ];
    expect(mergeAgentRows([a, b])).toEqual([a[0], b[1]]);
    expect(mergeAgentRows([b, a])).toEqual([a[0], b[1]]);
  });

  it("keeps a node no replica has an agent for, disconnected", () => {
    const off = row("n3", { connected: false, applied: "-", pod: "" });
    expect(mergeAgentRows([[off], [{ ...off, desired: "2.1" }]])).toEqual([off]);
  });
});

describe("evaluateCheck", () => {
  it("passes a healthy install and reports the Gateway API bundle", () => {
    const r = evaluateCheck(healthy());
    expect(r.ok).toBe(true);
    expect(r.findings.every((f) => f.fix === undefined)).toBe(true);
    expect(formatCheck(r)).toContain("bundle version v1.6.1, channel experimental");
    expect(formatCheck(r)).toMatch(/all checks passed\n$/);
  });

  it("names missing CRDs with a fix", () => {
    const input = healthy();
    input.crds[1] = { name: "grpcroutes.gateway.networking.k8s.io", present: false };
    const r = evaluateCheck(input);
    expect(r.ok).toBe(false);
    const f = r.findings.find((x) => !x.ok);
    expect(f?.message).toBe("Gateway API CRDs missing: grpcroutes.gateway.networking.k8s.io");
    expect(f?.fix).toContain("gatewayAPI.installCRDs=true");
  });

  it("flags CRDs from different bundles", () => {
    const input = healthy();
    input.crds[0] = { ...input.crds[0]!, bundleVersion: "v1.2.0" };
    expect(problems(input)).toEqual([
      "gateway-api: Gateway API CRDs present, bundle version v1.2.0 / v1.6.1, channel experimental",
    ]);
  });

  it("names the node whose agent is stopped", () => {
    const input = healthy();
    input.controller.agents = [row("n1"), row("n2", { connected: false, applied: "1.4" })];
    input.agentPods = input.agentPods.filter((p) => p.node !== "n2");
    expect(problems(input)).toEqual([
      "agent: node n2: no agent pod",
      "agent: node n2: no agent connected to the controller",
    ]);
  });

  it("reports an agent behind the desired version with its NACK", () => {
    const input = healthy();
    input.controller.agents = [
      row("n1", { applied: "1.4", lastNack: { version: "1.5", reason: "no free listener port", ageMs: 10 } }),
      row("n2"),
    ];
    const r = evaluateCheck(input);
    const f = r.findings.find((x) => !x.ok);
    expect(f?.message).toContain(
      "node n1: agent trellis-system/trellis-agent-n1 applied 1.4, controller wants 1.5",
    );
    expect(f?.message).toContain("no free listener port");
    expect(f?.fix).toContain("TableRejected");
  });

  it("reports a controller that is down or unreadable", () => {
    const input = healthy();
    input.controller = { deployed: true, replicas: 2, readyReplicas: 0, agents: { error: "HTTP 503" } };
    expect(problems(input)).toEqual([
      "controller: controller not ready (0/2 replicas ready)",
      "controller: cannot read the controller's agent registry: HTTP 503",
    ]);
    input.controller.deployed = false;
    expect(problems(input)[0]).toBe(
      "controller: no trellis-controller Deployment in namespace trellis-system",
    );
  });

  it("reports a shim whose installer has not completed", () => {
    const input = healthy();
    input.agentPods[0] = { name: "trellis-agent-a", node: "n1", ready: false, installCniExitCode: 1 };
    expect(problems(input)).toEqual([
      "agent: node n1: agent pod trellis-agent-a is not ready",
      "cni: node n1: CNI shim not installed (install-cni in trellis-agent-a exited 1)",
    ]);
    delete input.agentPods[0].installCniExitCode;
    expect(problems(input)).toContain(
      "cni: node n1: CNI shim not installed (install-cni in trellis-agent-a has not finished)",
    );
  });

  it("lists captured pods that are pending, failed or unannotated", () => {
    const input = healthy();
    input.capturedPods.push(
      { namespace: "faces", name: "color-1", node: "n1", captureStatus: "pending" },
      { namespace: "faces", name: "color-2", node: "n2", captureStatus: "failed" },
      { namespace: "faces", name: "gui-1", node: "n2" },
    );
    const r = evaluateCheck(input);
    expect(problems(input)).toEqual([
      "capture: pod faces/color-1 on n1: capture pending",
      "capture: pod faces/color-2 on n2: capture failed",
      "capture: pod faces/gui-1 on n2: capture no status",
    ]);
    expect(r.findings.find((f) => f.message.includes("color-2"))?.fix).toContain("TableRejected");
    expect(formatCheck(r)).toMatch(/3 problems found\n$/);
  });
});
