import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderCanaries } from "../cli/canary.ts";
import {
  type CanaryObject,
  type CanaryObservation,
  type CanaryStatus,
  canarySteps,
  decideCanary,
  overlayRoute,
  overlaysFor,
  readCanary,
  statusFingerprint,
} from "./canary.ts";
import { appliedByAgents } from "./canary-loop.ts";

const canaryJson = (spec: Record<string, unknown> = {}, status: CanaryStatus = {}) => ({
  apiVersion: "trellis.dev/v1alpha1",
  kind: "Canary",
  metadata: { namespace: "faces", name: "smiley", generation: 1, resourceVersion: "7" },
  spec: {
    targetRef: { kind: "HTTPRoute", name: "smiley" },
    stableBackend: { name: "smiley", port: 80 },
    canaryBackend: { name: "smiley2", port: 80 },
    steps: [10, 50],
    interval: "5s",
    analysis: { minRequests: 10, maxErrorRate: 0.05, maxP99Ms: 500 },
    ...spec,
  },
  status,
});

const canary = (spec: Record<string, unknown> = {}, status: CanaryStatus = {}): CanaryObject =>
  readCanary(canaryJson(spec, status))!;

const route = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "HTTPRoute",
  metadata: { namespace: "faces", name: "smiley" },
  spec: {
    parentRefs: [{ group: "", kind: "Service", name: "smiley", port: 80 }],
    rules: [{ backendRefs: [{ name: "smiley", port: 80 }] }],
  },
};

const applied = { done: true, acked: 2, agents: 2 };
const notApplied = { done: false, acked: 1, agents: 2 };
const obs = (o: Partial<CanaryObservation> = {}): CanaryObservation => ({
  targetProblem: undefined,
  applied,
  stats: undefined,
  ...o,
});
const T0 = Date.parse("2026-01-01T00:00:00Z");

describe("readCanary", () => {
  it("reads steps, or derives them from stepWeight/maxWeight", () => {
    expect(canary().spec?.steps).toEqual([10, 50]);
    expect(canarySteps({ stepWeight: 20, maxWeight: 60 })).toEqual([20, 40, 60]);
    expect(canarySteps({ stepWeight: 25 })).toEqual([25, 50]);
    expect(canarySteps({ steps: [50, 10] })).toMatch(/increasing/);
    expect(canary({ interval: "soon" }).problem).toMatch(/interval/);
    expect(canary({ canaryBackend: { name: "smiley", port: 80 } }).problem).toMatch(/same/);
  });
});

describe("overlayRoute", () => {
  it("leaves the route alone without an overlay weight and never mutates it", () => {
    const before = JSON.stringify(route);
    expect(overlayRoute(route, overlaysFor([canary()], "HTTPRoute", "faces", "smiley"))).toBe(route);
    const c = canary({}, { phase: "Progressing", canaryWeight: 10, step: 0 });
    const out = overlayRoute(route, overlaysFor([c], "HTTPRoute", "faces", "smiley"));
    expect(out.spec).toEqual({
      parentRefs: route.spec.parentRefs,
      rules: [
        {
          backendRefs: [
            { name: "smiley", port: 80, weight: 90 },
            { name: "smiley2", port: 80, weight: 10 },
          ],
        },
      ],
    });
    expect(JSON.stringify(route)).toBe(before);
  });

  it("sets weights of refs the rule already has; Failed means 0, Succeeded 100", () => {
    const written = {
      ...route,
      spec: {
        ...route.spec,
        rules: [
          {
            backendRefs: [
              { name: "smiley", port: 80, weight: 90 },
              { name: "smiley2", port: 80, weight: 10 },
            ],
          },
        ],
      },
    };
    const weights = (status: CanaryStatus) =>
      (
        overlayRoute(written, overlaysFor([canary({}, status)], "HTTPRoute", "faces", "smiley")).spec as {
          rules: { backendRefs: { weight: number }[] }[];
        }
      ).rules[0]!.backendRefs.map((r) => r.weight);
    expect(weights({ phase: "Failed", canaryWeight: 0 })).toEqual([100, 0]);
    expect(weights({ phase: "Succeeded", canaryWeight: 100 })).toEqual([0, 100]);
    expect(weights({ phase: "Paused", canaryWeight: 50 })).toEqual([50, 50]);
  });

  it("skips canaries of other routes and rules that do not exist", () => {
    const c = canary({ rule: { index: 3 } }, { phase: "Progressing", canaryWeight: 10 });
    expect(overlayRoute(route, overlaysFor([c], "HTTPRoute", "faces", "smiley"))).toBe(route);
    const d = canary({}, { phase: "Progressing", canaryWeight: 10 });
    expect(overlaysFor([d], "GRPCRoute", "faces", "smiley")).toEqual([]);
    expect(overlaysFor([d], "HTTPRoute", "other", "smiley")).toEqual([]);
  });
});

describe("decideCanary", () => {
  it("walks the happy path: start, wait for ACK, analyse, step, promote, succeed", () => {
    let c = canary();
    let d = decideCanary(c, obs(), T0);
    expect(d.status).toMatchObject({ phase: "Progressing", step: 0, canaryWeight: 10 });
    expect(d.events.map((e) => e.reason)).toEqual(["Started"]);
    c = canary({}, d.status);
    d = decideCanary(c, obs({ applied: notApplied }), T0 + 100);
    expect(d.status.stepAppliedAt).toBeUndefined();
    expect(d.status.message).toMatch(/1\/2 ACKed/);
    d = decideCanary(c, obs(), T0 + 200);
    expect(d.status.stepAppliedAt).toBe(new Date(T0 + 200).toISOString());
    c = canary({}, d.status);
    const good = { requests: 100, failures: 1, p99Ms: 50 };
    d = decideCanary(c, obs({ stats: good }), T0 + 3000);
    expect(d.status.step).toBe(0);
    expect(d.status.message).toMatch(/next decision in 3 s/);
    d = decideCanary(c, obs({ stats: good }), T0 + 5200);
    expect(d.status).toMatchObject({ phase: "Progressing", step: 1, canaryWeight: 50 });
    expect(d.status.stepAppliedAt).toBeUndefined();
    expect(d.status.lastAnalysis).toMatchObject({ requests: 100, errors: 1, result: "Passed" });
    expect(d.events[0]?.message).toMatch(/100 requests, 1 errors \(1.0 %\)/);
    c = canary({}, d.status);
    d = decideCanary(c, obs(), T0 + 6000);
    c = canary({}, d.status);
    d = decideCanary(c, obs({ stats: good }), T0 + 11_000);
    expect(d.status).toMatchObject({ phase: "Promoting", canaryWeight: 100 });
    c = canary({}, d.status);
    d = decideCanary(c, obs({ applied: notApplied }), T0 + 11_500);
    expect(d.status.phase).toBe("Promoting");
    d = decideCanary(c, obs(), T0 + 12_000);
    expect(d.status).toMatchObject({ phase: "Succeeded", canaryWeight: 100 });
    expect(decideCanary(canary({}, d.status), obs(), T0 + 20_000).events).toEqual([]);
  });

  it("waits without passing or failing when there are too few requests", () => {
    const c = canary(
      {},
      { phase: "Progressing", step: 0, canaryWeight: 10, stepAppliedAt: new Date(T0).toISOString() },
    );
    const d = decideCanary(c, obs({ stats: { requests: 3, failures: 3, p99Ms: 5000 } }), T0 + 60_000);
    expect(d.status).toMatchObject({ phase: "Progressing", step: 0, canaryWeight: 10 });
    expect(d.status.message).toMatch(/3 of 10 requests/);
    expect(d.status.lastAnalysis?.result).toBe("Waiting");
    expect(d.events.map((e) => e.reason)).toEqual(["WaitingForTraffic"]);
  });

  it("fails on error rate or p99, with weight 0 and the numbers in the event", () => {
    const c = canary(
      {},
      { phase: "Progressing", step: 1, canaryWeight: 50, stepAppliedAt: new Date(T0).toISOString() },
    );
    const d = decideCanary(c, obs({ stats: { requests: 40, failures: 20, p99Ms: 10 } }), T0 + 2000);
    expect(d.status).toMatchObject({ phase: "Failed", canaryWeight: 0 });
    expect(d.events[0]).toMatchObject({ type: "Warning", reason: "AnalysisFailed" });
    expect(d.events[0]?.message).toMatch(/error rate 50.0 % > max 5.0 %.*40 requests, 20 errors/);
    const slow = decideCanary(c, obs({ stats: { requests: 40, failures: 0, p99Ms: 1000 } }), T0 + 6000);
    expect(slow.status.phase).toBe("Failed");
    expect(slow.status.message).toMatch(/p99 1000 ms > max 500 ms/);
  });

  it("honours abort, promote and pause", () => {
    const running: CanaryStatus = { phase: "Progressing", step: 0, canaryWeight: 10 };
    expect(decideCanary(canary({ abort: true }, running), obs(), T0).status).toMatchObject({
      phase: "Failed",
      canaryWeight: 0,
    });
    expect(decideCanary(canary({ promote: true }, running), obs(), T0).status).toMatchObject({
      phase: "Promoting",
      canaryWeight: 100,
    });
    const paused = decideCanary(canary({ paused: true }, running), obs(), T0).status;
    expect(paused).toMatchObject({ phase: "Paused", canaryWeight: 10 });
    expect(decideCanary(canary({}, paused), obs(), T0).status.phase).toBe("Progressing");
  });

  it("stays Initializing while the target route is missing", () => {
    const d = decideCanary(canary(), obs({ targetProblem: "not found" }), T0);
    expect(d.status.phase).toBe("Initializing");
    expect(d.status.message).toMatch(/HTTPRoute smiley: not found/);
  });

  it("keeps its invariants for any sequence of observations (property)", () => {
    const observation = fc.record({
      targetProblem: fc.constantFrom(undefined, "missing"),
      applied: fc.record({ done: fc.boolean(), acked: fc.nat(3), agents: fc.nat(3) }),
      stats: fc.option(
        fc.record({
          requests: fc.nat(200),
          failures: fc.nat(200),
          p99Ms: fc.option(fc.nat(2000), { nil: undefined }),
        }),
        { nil: undefined },
      ),
    });
    const specPart = fc.record({
      paused: fc.boolean(),
      promote: fc.boolean(),
      abort: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(observation, specPart, fc.nat(10_000)), { maxLength: 40 }), (ticks) => {
        let status: CanaryStatus = {};
        let now = T0;
        let lastStep = 0;
        for (const [o, flags] of ticks) {
          now += 1000;
          const stats = o.stats
            ? { ...o.stats, failures: Math.min(o.stats.failures, o.stats.requests) }
            : undefined;
          const before = status;
          const d = decideCanary(canary(flags, status), { ...o, stats }, now);
          status = d.status;
          const w = status.canaryWeight;
          if (status.phase === "Failed") expect(w).toBe(0);
          if (status.phase === "Succeeded" || status.phase === "Promoting") expect(w).toBe(100);
          if (status.phase === "Progressing" || status.phase === "Paused") expect([10, 50]).toContain(w);
          // Terminal phases stay terminal.
          if (before.phase === "Failed" || before.phase === "Succeeded")
            expect(status.phase).toBe(before.phase);
          // Steps only move forward, one at a time.
          const step = status.step ?? 0;
          expect(step - lastStep === 0 || step - lastStep === 1).toBe(true);
          lastStep = step;
          // A step is only judged after its weights were applied.
          if (status.lastAnalysis?.result === "Passed" && before.lastAnalysis !== status.lastAnalysis)
            expect(before.stepAppliedAt).toBeDefined();
          // Succeeded only after every agent applied 100 %.
          if (status.phase === "Succeeded" && before.phase !== "Succeeded") expect(o.applied.done).toBe(true);
        }
      }),
    );
  });

  it("writes nothing new while only the waiting analysis timestamp moves", () => {
    const c = canary(
      {},
      { phase: "Progressing", step: 0, canaryWeight: 10, stepAppliedAt: new Date(T0).toISOString() },
    );
    const a = decideCanary(c, obs({ stats: { requests: 1, failures: 0, p99Ms: 5 } }), T0 + 10_000).status;
    const b = decideCanary(
      canary({}, a),
      obs({ stats: { requests: 1, failures: 0, p99Ms: 5 } }),
      T0 + 11_000,
    ).status;
    expect(statusFingerprint(a)).toBe(statusFingerprint(b));
  });
});

describe("appliedByAgents", () => {
  const v = (number: number) => ({ epoch: 5, number });
  const agent = (node: string, acked: number | undefined, connected = true) => ({
    node,
    pod: `trellis-system/agent-${node}`,
    connected,
    connectedAt: 0,
    ...(acked === undefined ? {} : { lastAcked: v(acked) }),
  });
  const status: CanaryStatus = { phase: "Progressing", canaryWeight: 20, step: 0 };
  const applied = {
    weight: 20,
    versions: new Map([
      ["a", v(3)],
      ["b", v(7)],
    ]),
  };

  it("needs every connected agent at or past the version that carried the weights", () => {
    expect(appliedByAgents(status, applied, [agent("a", 3), agent("b", 6)])).toEqual({
      done: false,
      acked: 1,
      agents: 2,
    });
    expect(
      appliedByAgents(status, applied, [agent("a", 4), agent("b", 7), agent("c", undefined, false)]).done,
    ).toBe(true);
  });

  it("is not done while the tables carry another weight, or with no agent at all", () => {
    expect(
      appliedByAgents({ ...status, canaryWeight: 50 }, applied, [agent("a", 9), agent("b", 9)]).done,
    ).toBe(false);
    expect(appliedByAgents(status, undefined, [agent("a", 9)]).done).toBe(false);
    expect(appliedByAgents(status, applied, []).done).toBe(false);
  });
});

describe("trellis canary status", () => {
  it("shows weights as a bar, the last analysis and the countdown", () => {
    const c = canary(
      {},
      {
        phase: "Progressing",
        step: 1,
        canaryWeight: 50,
        stepAppliedAt: new Date(T0).toISOString(),
        message: "analysing",
        lastAnalysis: { requests: 40, errors: 2, errorRate: 0.05, p99Ms: 250, at: "", result: "Waiting" },
      },
    );
    const text = renderCanaries([c], T0 + 2000);
    expect(text).toContain("smiley 50 % [##########..........] smiley2 50 %   step 2/2");
    expect(text).toContain("40 requests, success 95.0 %, 2 errors, p99 250 ms");
    expect(text).toContain("next decision in 3 s");
  });
});
