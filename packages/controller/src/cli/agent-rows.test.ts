import type { CoreV1Api, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { AgentStatusRow } from "../distribute/agent-status.ts";
import { readAgentRows } from "./agent-rows.ts";

const row = (node: string, connected: boolean, pod = ""): AgentStatusRow => ({
  node,
  desired: connected ? "3.1" : "4.1",
  applied: connected ? "3.1" : "-",
  connected,
  pod,
  lagMs: 0,
});

const pod = (name: string, ready: boolean): V1Pod => ({
  metadata: { name },
  spec: { containers: [{ name: "controller", ports: [{ name: "http-admin", containerPort: 9191 }] }] },
  status: { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
});

/** The two calls readAgentRows makes, answered per replica. */
function fakeCore(pods: V1Pod[], answers: Record<string, AgentStatusRow[]>, asked: string[]): CoreV1Api {
  const api = {
    listNamespacedPod: async () => ({ items: pods }),
    connectGetNamespacedPodProxyWithPath: async (p: { name: string; namespace: string; path: string }) => {
      asked.push(`${p.namespace}/${p.name}/${p.path}`);
      // The client hands the proxied body back as a string.
      return JSON.stringify(answers[p.name] ?? []);
    },
  };
  return api as unknown as CoreV1Api;
}

describe("readAgentRows across controller replicas", () => {
  it("asks every ready replica through the pod proxy and keeps each node's connected row", async () => {
    const asked: string[] = [];
    const core = fakeCore(
      [pod("c-a", true), pod("c-b", true), pod("c-c", false)],
      {
        "c-a:9191": [row("n1", true, "trellis-system/agent-1"), row("n2", false)],
        "c-b:9191": [row("n1", false), row("n2", true, "trellis-system/agent-2")],
      },
      asked,
    );
    const rows = await readAgentRows({ namespace: "trellis-system" }, core);
    expect(asked.sort()).toEqual([
      "trellis-system/c-a:9191/debug/agents",
      "trellis-system/c-b:9191/debug/agents",
    ]);
    expect(rows.map((r) => [r.node, r.connected, r.pod])).toEqual([
      ["n1", true, "trellis-system/agent-1"],
      ["n2", true, "trellis-system/agent-2"],
    ]);
  });

  it("fails with a reason when no replica is ready", async () => {
    await expect(
      readAgentRows({ namespace: "trellis-system" }, fakeCore([pod("c-a", false)], {}, [])),
    ).rejects.toThrow(/no ready controller pod in namespace trellis-system/);
  });
});
