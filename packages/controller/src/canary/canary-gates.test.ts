// Manual gates via the canary-action annotation, the comparison with the
// stable backend and webhook gating: the pure decisions.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderCanaries, watchFrame } from "../cli/canary.ts";
import {
  type BackendWindow,
  type CanaryObject,
  type CanaryObservation,
  type CanaryStatus,
  compareWithStable,
  decideCanary,
  effectiveGates,
  p99Ratio,
  readCanary,
  type StableComparison,
  type WebhookResult,
} from "./canary.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const iso = (t: number) => new Date(t).toISOString();

const canary = (
  spec: Record<string, unknown> = {},
  status: CanaryStatus = {},
  annotations: Record<string, string> = {},
): CanaryObject =>
  readCanary({
    apiVersion: "trellis.dev/v1alpha1",
    kind: "Canary",
    metadata: {
      namespace: "faces",
      name: "smiley2",
      uid: "u1",
      generation: 1,
      resourceVersion: "7",
      annotations,
    },
    spec: {
      targetRef: { kind: "HTTPRoute", name: "smiley" },
      stableBackend: { name: "smiley", port: 80 },
      canaryBackend: { name: "smiley2", port: 80 },
      steps: [10, 50],
      interval: "5s",
      analysis: { minRequests: 10, maxErrorRate: 0.05 },
      ...spec,
    },
    status,
  })!;

const obs = (o: Partial<CanaryObservation> = {}): CanaryObservation => ({
  targetProblem: undefined,
  applied: { done: true, acked: 2, agents: 2 },
  stats: undefined,
  ...o,
});
const running: CanaryStatus = { phase: "Progressing", step: 0, canaryWeight: 10 };
const analysing: CanaryStatus = { ...running, stepAppliedAt: iso(T0) };
const good = { requests: 100, failures: 1, p99Ms: 50 };

describe("effectiveGates", () => {
  it("abort beats promote beats pause, from either source; the annotation's pause/resume overrides spec.paused", () => {
    const spec = { abort: false, promote: false, paused: false };
    expect(effectiveGates(spec, undefined)).toMatchObject({
      abort: undefined,
      promote: undefined,
      paused: false,
    });
    expect(effectiveGates(spec, "abort").abort).toBe("annotation");
    expect(effectiveGates({ ...spec, abort: true }, "promote")).toMatchObject({
      abort: "spec",
      promote: "annotation",
    });
    expect(effectiveGates({ ...spec, paused: true }, "resume")).toMatchObject({
      paused: false,
      pauseSource: "annotation",
    });
    expect(effectiveGates(spec, "pause")).toMatchObject({ paused: true, pauseSource: "annotation" });
    expect(effectiveGates({ ...spec, paused: true }, undefined)).toMatchObject({
      paused: true,
      pauseSource: "spec",
    });
    expect(effectiveGates(spec, "Promote!").invalid).toBe("Promote!");
    expect(effectiveGates(spec, "").invalid).toBeUndefined();
  });
});

describe("the canary-action annotation", () => {
  it("promotes mid-run, recording the gate and its source", () => {
    const d = decideCanary(
      canary({}, analysing, { "trellis.dev/canary-action": "promote" }),
      obs(),
      T0 + 1000,
    );
    expect(d.status).toMatchObject({ phase: "Promoting", canaryWeight: 100 });
    expect(d.status.lastGate).toEqual({ action: "promote", source: "annotation", at: iso(T0 + 1000) });
    expect(d.events[0]?.message).toBe("promoted by annotation trellis.dev/canary-action=promote");
    // Then Succeeded once every agent applied 100 %, annotation still there.
    const s = decideCanary(
      canary({}, d.status, { "trellis.dev/canary-action": "promote" }),
      obs(),
      T0 + 2000,
    );
    expect(s.status.phase).toBe("Succeeded");
  });

  it("aborts (even before the first step) and says so in the event", () => {
    const a = decideCanary(canary({}, running, { "trellis.dev/canary-action": "abort" }), obs(), T0);
    expect(a.status).toMatchObject({
      phase: "Failed",
      canaryWeight: 0,
      lastGate: { action: "abort", source: "annotation" },
    });
    expect(a.events[0]?.message).toMatch(
      /aborted by annotation trellis.dev\/canary-action=abort; traffic back to smiley/,
    );
    const early = decideCanary(canary({}, {}, { "trellis.dev/canary-action": "abort" }), obs(), T0);
    expect(early.status).toMatchObject({ phase: "Failed", canaryWeight: 0 });
  });

  it("pauses and resumes; resume overrides spec.paused; the interval restarts", () => {
    const p = decideCanary(canary({}, analysing, { "trellis.dev/canary-action": "pause" }), obs(), T0 + 1000);
    expect(p.status).toMatchObject({ phase: "Paused", lastGate: { action: "pause", source: "annotation" } });
    expect(p.status.message).toMatch(/paused by annotation/);
    const again = decideCanary(
      canary({}, p.status, { "trellis.dev/canary-action": "pause" }),
      obs(),
      T0 + 2000,
    );
    expect(again.status.lastGate?.at).toBe(iso(T0 + 1000));
    const r = decideCanary(
      canary({ paused: true }, p.status, { "trellis.dev/canary-action": "resume" }),
      obs(),
      T0 + 9000,
    );
    expect(r.status).toMatchObject({ phase: "Progressing", stepAppliedAt: iso(T0 + 9000) });
    expect(r.status.lastGate).toMatchObject({ action: "resume", source: "annotation" });
    expect(r.status.message).toMatch(/resumed by annotation trellis.dev\/canary-action=resume/);
  });

  it("reports an unknown value once, in status and one Warning event, and otherwise ignores it", () => {
    const d = decideCanary(canary({}, analysing, { "trellis.dev/canary-action": "yolo" }), obs(), T0 + 1000);
    expect(d.status.phase).toBe("Progressing");
    expect(d.status.invalidAction).toBe("yolo");
    expect(d.events.map((e) => e.reason)).toContain("InvalidAction");
    const e = decideCanary(canary({}, d.status, { "trellis.dev/canary-action": "yolo" }), obs(), T0 + 2000);
    expect(e.events.map((x) => x.reason)).not.toContain("InvalidAction");
    const cleared = decideCanary(canary({}, d.status), obs(), T0 + 3000);
    expect(cleared.status.invalidAction).toBeUndefined();
  });
});

describe("compareWithStable", () => {
  const cmp: StableComparison = { maxErrorRateIncrease: 0.05, maxP99Ratio: 2, minStableRequests: 20 };
  const w = (requests: number, failures: number, p99Ms?: number): BackendWindow => ({
    requests,
    failures,
    p99Ms,
  });

  it("waits for the minimum on both sides, then judges error-rate increase and p99 ratio", () => {
    expect(compareWithStable(w(5, 5), w(100, 0), cmp, 10)).toMatchObject({ result: "Waiting" });
    expect(compareWithStable(w(50, 50), w(3, 0), cmp, 10).message).toMatch(/stable has 3 of 20/);
    expect(compareWithStable(w(100, 10), w(100, 4), cmp, 10)).toMatchObject({ result: "Failed" });
    expect(compareWithStable(w(100, 10), w(100, 4), cmp, 10).message).toMatch(
      /6.0 points above stable > max 5.0/,
    );
    expect(compareWithStable(w(100, 9), w(100, 4), cmp, 10).result).toBe("Passed");
    expect(compareWithStable(w(100, 0, 500), w(100, 0, 100), cmp, 10).message).toMatch(/\(5.00x\) > max 2x/);
    expect(compareWithStable(w(100, 0, 200), w(100, 0, 100), cmp, 10).result).toBe("Passed");
    expect(compareWithStable(w(100, 0, undefined), w(100, 0, 100), cmp, 10).message).toMatch(/not compared/);
  });

  it("treats the overflow bucket as unbounded", () => {
    expect(p99Ratio(Number.POSITIVE_INFINITY, 100)).toBe(Number.POSITIVE_INFINITY);
    expect(p99Ratio(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY)).toBe(1);
    expect(p99Ratio(100, Number.POSITIVE_INFINITY)).toBe(0);
  });

  const window = fc
    .tuple(
      fc.nat(500),
      fc.nat(500),
      fc.option(fc.constantFrom(1, 5, 10, 50, 100, 500, Number.POSITIVE_INFINITY), { nil: undefined }),
    )
    .map(([r, f, p]) => w(r, Math.min(f, r), p));
  const comparison = fc.record({
    maxErrorRateIncrease: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
    maxP99Ratio: fc.option(fc.double({ min: 1, max: 10, noNaN: true }), { nil: undefined }),
    minStableRequests: fc.nat(50),
  });

  it("never judges with too few samples on either side (property)", () => {
    fc.assert(
      fc.property(window, window, comparison, fc.nat(50), (c, s, k, min) => {
        const v = compareWithStable(c, s, k, min);
        if (c.requests < Math.max(1, min) || s.requests < Math.max(1, k.minStableRequests))
          expect(v.result).toBe("Waiting");
        else expect(v.result).not.toBe("Waiting");
      }),
    );
  });

  it("a canary identical to stable never fails, and a worse stable never fails a passing canary (property)", () => {
    fc.assert(
      fc.property(window, window, comparison, fc.nat(200), (c, s, k, extra) => {
        expect(compareWithStable(c, c, k, 0).result).not.toBe("Failed");
        if (compareWithStable(c, s, k, 0).result !== "Passed") return;
        const worse = { ...s, requests: s.requests + extra, failures: s.failures + extra };
        expect(compareWithStable(c, worse, k, 0).result).toBe("Passed");
      }),
    );
  });

  it("fails exactly when the error-rate increase exceeds the limit, without a latency check (property)", () => {
    fc.assert(
      fc.property(window, window, fc.double({ min: 0, max: 1, noNaN: true }), (c, s, max) => {
        const v = compareWithStable(
          c,
          s,
          { maxErrorRateIncrease: max, maxP99Ratio: undefined, minStableRequests: 1 },
          1,
        );
        if (v.result === "Waiting") return;
        const increase = c.failures / c.requests - s.failures / s.requests;
        expect(v.result === "Failed").toBe(Math.round((increase - max) * 1e9) > 0);
      }),
    );
  });
});

describe("decideCanary with compareToStable", () => {
  const spec = {
    analysis: { minRequests: 10, maxErrorRate: 0.5, compareToStable: { maxErrorRateIncrease: 0.05 } },
  };

  it("fails a canary much worse than stable even within its absolute limit", () => {
    const d = decideCanary(
      canary(spec, analysing),
      obs({
        stats: { requests: 40, failures: 8, p99Ms: 10 },
        stableStats: { requests: 400, failures: 4, p99Ms: 10 },
      }),
      T0 + 1000,
    );
    expect(d.status.phase).toBe("Failed");
    expect(d.status.message).toMatch(/against stable, error rate 20.0 % vs stable 1.0 %/);
    expect(d.status.lastAnalysis?.stable).toMatchObject({ requests: 400, errors: 4, errorRate: 0.01 });
  });

  it("waits when stable has too little traffic after the interval, then passes with both numbers", () => {
    const w = decideCanary(
      canary(spec, analysing),
      obs({ stats: good, stableStats: { requests: 2, failures: 0, p99Ms: 10 } }),
      T0 + 6000,
    );
    expect(w.status).toMatchObject({ phase: "Progressing", step: 0 });
    expect(w.status.message).toMatch(/stable has 2 of 10 requests needed to compare; waiting/);
    const p = decideCanary(
      canary(spec, analysing),
      obs({ stats: good, stableStats: { requests: 300, failures: 3, p99Ms: 50 } }),
      T0 + 6000,
    );
    expect(p.status).toMatchObject({ step: 1, canaryWeight: 50 });
    expect(p.status.lastAnalysis?.comparison).toMatch(/^Passed: error rate 1.0 % vs stable 1.0 %/);
  });
});

describe("webhooks", () => {
  const hooks = (...types: string[]) => ({
    webhooks: types.map((type, i) => ({
      name: `h${i}`,
      type,
      url: `http://127.0.0.1:9/${type}`,
      failureThreshold: 2,
      metadata: { team: "faces" },
    })),
  });
  const results = (type: "PreStep" | "Analysis", ...ok: boolean[]) => ({
    type,
    results: ok.map(
      (x, i): WebhookResult => ({
        name: `h${i}`,
        ok: x,
        message: x ? "HTTP 200 in 1 ms" : "HTTP 503 in 1 ms: busy",
      }),
    ),
  });

  it("asks for PreStep webhooks before the first weight, and starts once they pass", () => {
    const c = canary(hooks("PreStep"));
    const ask = decideCanary(c, obs(), T0);
    expect(ask.call?.type).toBe("PreStep");
    expect(ask.call?.body).toMatchObject({
      kind: "CanaryWebhook",
      type: "PreStep",
      canary: { namespace: "faces", name: "smiley2", uid: "u1" },
      phase: "Initializing",
      step: 0,
      steps: 2,
      weight: 10,
    });
    expect(ask.status).toBe(c.status);
    const go = decideCanary(c, obs({ webhooks: [results("PreStep", true)] }), T0);
    expect(go.call).toBeUndefined();
    expect(go.status).toMatchObject({ phase: "Progressing", canaryWeight: 10 });
    expect(go.status.webhooks).toEqual([
      {
        name: "h0",
        type: "PreStep",
        result: "Passed",
        consecutiveFailures: 0,
        message: "HTTP 200 in 1 ms",
        at: iso(T0),
      },
    ]);
  });

  it("a failing webhook makes the step wait, is retried after the interval, and fails the Canary at its threshold", () => {
    const spec = hooks("Analysis");
    const c0 = canary(spec, analysing);
    const ask = decideCanary(c0, obs({ stats: good }), T0 + 6000);
    expect(ask.call).toMatchObject({
      type: "Analysis",
      body: { step: 0, weight: 10, lastAnalysis: { requests: 100, result: "Passed" } },
    });
    const first = decideCanary(c0, obs({ stats: good, webhooks: [results("Analysis", false)] }), T0 + 6000);
    expect(first.status).toMatchObject({ phase: "Progressing", step: 0 });
    expect(first.status.message).toMatch(
      /Analysis webhook h0 failed \(HTTP 503 in 1 ms: busy\), 1\/2; retrying in 5 s/,
    );
    expect(first.events.map((e) => e.reason)).toEqual(["WebhookFailed"]);
    const c1 = canary(spec, first.status);
    // Within the retry spacing: no call, still waiting.
    const held = decideCanary(c1, obs({ stats: good }), T0 + 8000);
    expect(held.call).toBeUndefined();
    expect(held.status.message).toMatch(/waiting for webhook h0 .*next call in 3 s/);
    // After it: called again; a second failure reaches the threshold.
    expect(decideCanary(c1, obs({ stats: good }), T0 + 11_000).call?.type).toBe("Analysis");
    const second = decideCanary(
      c1,
      obs({ stats: good, webhooks: [results("Analysis", false)] }),
      T0 + 11_000,
    );
    expect(second.status).toMatchObject({ phase: "Failed", canaryWeight: 0 });
    expect(second.status.message).toMatch(/Analysis webhook h0 failed 2 time\(s\) in a row/);
    // A pass in between resets the count.
    const pass = decideCanary(c1, obs({ stats: good, webhooks: [results("Analysis", true)] }), T0 + 11_000);
    expect(pass.status).toMatchObject({ step: 1, canaryWeight: 50 });
    expect(pass.status.webhooks?.[0]).toMatchObject({ result: "Passed", consecutiveFailures: 0 });
  });

  it("runs Analysis then PreStep of the next weight; promotion gets PreStep with weight 100", () => {
    const spec = hooks("Analysis", "PreStep");
    const c = canary(spec, { phase: "Progressing", step: 1, canaryWeight: 50, stepAppliedAt: iso(T0) });
    const a = decideCanary(c, obs({ stats: good }), T0 + 6000);
    expect(a.call?.type).toBe("Analysis");
    const p = decideCanary(c, obs({ stats: good, webhooks: [results("Analysis", true, true)] }), T0 + 6000);
    expect(p.call).toMatchObject({ type: "PreStep", body: { step: 2, weight: 100 } });
    const done = decideCanary(
      c,
      obs({ stats: good, webhooks: [results("Analysis", true, true), results("PreStep", true, true)] }),
      T0 + 6000,
    );
    expect(done.status.phase).toBe("Promoting");
  });

  it("notifies Rollback webhooks when a canary fails; manual gates skip webhooks", () => {
    const spec = hooks("Rollback", "PreStep");
    const d = decideCanary(
      canary(spec, analysing),
      obs({ stats: { requests: 40, failures: 20, p99Ms: 5 } }),
      T0 + 1000,
    );
    expect(d.status.phase).toBe("Failed");
    expect(d.notify).toMatchObject({ type: "Rollback", body: { phase: "Failed", weight: 0 } });
    expect(d.notify?.hooks.map((h) => h.name)).toEqual(["h0"]);
    const promoted = decideCanary(
      canary(spec, analysing, { "trellis.dev/canary-action": "promote" }),
      obs(),
      T0,
    );
    expect(promoted.call).toBeUndefined();
    expect(promoted.status.phase).toBe("Promoting");
    // Before the first step too: no PreStep call for a step that will never run.
    const early = decideCanary(canary(spec, {}, { "trellis.dev/canary-action": "promote" }), obs(), T0);
    expect(early.call).toBeUndefined();
    expect(early.status).toMatchObject({ phase: "Promoting", canaryWeight: 100 });
  });

  it("rejects bad webhook specs with the field", () => {
    expect(canary({ webhooks: [{ name: "A", type: "PreStep", url: "http://x" }] }).problem).toMatch(
      /webhooks\[0\].name/,
    );
    expect(canary({ webhooks: [{ name: "a", type: "Later", url: "http://x" }] }).problem).toMatch(
      /type must be one of/,
    );
    expect(canary({ webhooks: [{ name: "a", type: "PreStep", url: "ftp://x" }] }).problem).toMatch(/url/);
    expect(canary({ analysis: { compareToStable: {} } }).problem).toMatch(
      /maxErrorRateIncrease and\/or maxP99Ratio/,
    );
  });
});

describe("trellis canary status, new rows", () => {
  it("shows the stable numbers, the comparison, webhooks, the annotation and the next step", () => {
    const c = canary(
      { webhooks: [{ name: "smoke", type: "Analysis", url: "http://x/", failureThreshold: 3 }] },
      {
        ...analysing,
        lastAnalysis: {
          requests: 40,
          errors: 0,
          errorRate: 0,
          p99Ms: 50,
          at: "",
          result: "Waiting",
          stable: { requests: 300, errors: 3, errorRate: 0.01, p99Ms: 25 },
          comparison: "Passed: error rate 0.0 % vs stable 1.0 %",
        },
        webhooks: [
          {
            name: "smoke",
            type: "Analysis",
            result: "Failed",
            consecutiveFailures: 1,
            message: "HTTP 503",
            at: "",
          },
        ],
      },
      { "trellis.dev/canary-action": "pause" },
    );
    const text = renderCanaries([c], T0 + 2000);
    expect(text).toContain("stable, same window: 300 requests, success 99.0 %, p99 25 ms");
    expect(text).toContain("vs stable: Passed: error rate 0.0 % vs stable 1.0 %");
    expect(text).toContain("webhook smoke (Analysis): Failed 1/3, HTTP 503");
    expect(text).toContain("next decision in 3 s (needs 10 requests), then step 2/2 at 50 %");
    expect(text).toContain("trellis.dev/canary-action: pause");
  });

  it("redraws in place on a terminal and prints plain blocks otherwise", () => {
    const at = new Date(T0);
    expect(watchFrame("a\nb\n", at, false)).toBe(`--- ${iso(T0)}\na\nb\n`);
    const frame = watchFrame("a\nb\n", at, true);
    expect(frame.startsWith("\x1b[H")).toBe(true);
    expect(frame).toContain("a\x1b[K\n");
    expect(frame.endsWith("\x1b[J")).toBe(true);
  });
});
