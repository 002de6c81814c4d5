import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AgentAnswer } from "./agent-client.ts";
import type { CapturedNamespaces } from "./captured-namespaces.ts";
import { agentWaitMs, verdict } from "./decision.ts";

const settings = {
  socketPath: "/var/run/trellis/cni.sock",
  capturedNamespacesFile: "/var/run/trellis/captured-namespaces.json",
  timeoutSeconds: 30,
  uncapturedTimeoutSeconds: 2,
};
const listed = (...ns: string[]): CapturedNamespaces => ({ kind: "listed", namespaces: new Set(ns) });
const down: AgentAnswer = { kind: "unavailable", reason: "connect ECONNREFUSED /var/run/trellis/cni.sock" };
const at = (agent: AgentAnswer, namespaces: CapturedNamespaces, podNamespace = "shop") =>
  verdict({ agent, namespaces, podNamespace, podName: "web-0", settings });

describe("verdict", () => {
  it("the agent's 200 lets the pod start", () => {
    expect(at({ kind: "done", captured: true }, listed("shop"))).toEqual({ kind: "pass", captured: true });
  });

  it("the agent's refusal fails the pod with its message", () => {
    expect(at({ kind: "refused", status: 500, message: "nft failed" }, listed())).toEqual({
      kind: "fail",
      code: 100,
      msg: "Trellis agent refused pod shop/web-0: nft failed",
      details: "HTTP 500 from /var/run/trellis/cni.sock",
    });
  });

  it("agent down and namespace captured: try again later (code 11), saying why", () => {
    const v = at(down, listed("other", "shop"));
    expect(v.kind).toBe("fail");
    if (v.kind !== "fail") return;
    expect(v.code).toBe(11);
    expect(v.msg).toContain("Trellis agent at /var/run/trellis/cni.sock is not reachable");
    expect(v.msg).toContain("namespace shop is captured");
    expect(v.msg).toContain("the runtime will retry the sandbox");
    expect(v.details).toContain("ECONNREFUSED");
  });

  it.each<[string, CapturedNamespaces]>([
    ["not listed", listed("other")],
    ["file absent", { kind: "absent" }],
    ["file corrupt", { kind: "unusable", reason: "not JSON" }],
  ])("agent down and namespace %s: the pod starts uncaptured", (_, ns) => {
    const v = at(down, ns);
    expect(v.kind).toBe("pass");
    if (v.kind === "pass") expect(v.captured).toBe(false);
  });

  it("fails exactly when the agent refuses, or is unavailable for a listed namespace", () => {
    const answer = fc.oneof(
      fc.record({ kind: fc.constant("done" as const), captured: fc.boolean() }),
      fc.record({
        kind: fc.constant("refused" as const),
        status: fc.integer({ min: 400, max: 599 }),
        message: fc.string(),
      }),
      fc.record({ kind: fc.constant("unavailable" as const), reason: fc.string() }),
    );
    const namespaces = fc.oneof(
      fc.array(fc.constantFrom("a", "b", "c")).map((ns) => listed(...ns)),
      fc.constant<CapturedNamespaces>({ kind: "absent" }),
      fc.constant<CapturedNamespaces>({ kind: "unusable", reason: "x" }),
    );
    fc.assert(
      fc.property(answer, namespaces, fc.constantFrom("a", "b", "c"), (a, n, pod) => {
        const isListed = n.kind === "listed" && n.namespaces.has(pod);
        const shouldFail = a.kind === "refused" || (a.kind === "unavailable" && isListed);
        expect(at(a, n, pod).kind).toBe(shouldFail ? "fail" : "pass");
      }),
    );
  });
});

describe("agentWaitMs", () => {
  it("waits the full timeout only for listed namespaces", () => {
    expect(agentWaitMs(settings, listed("shop"), "shop")).toBe(30_000);
    expect(agentWaitMs(settings, listed("shop"), "kube-system")).toBe(2_000);
    expect(agentWaitMs(settings, { kind: "absent" }, "shop")).toBe(2_000);
  });

  it("never waits longer than timeoutSeconds", () => {
    expect(agentWaitMs({ timeoutSeconds: 1, uncapturedTimeoutSeconds: 2 }, { kind: "absent" }, "x")).toBe(
      1_000,
    );
  });
});
