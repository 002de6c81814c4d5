// Progressive canaries, the pure part: reading a Canary object, the weight
// overlay applied to its route before the route enters the snapshot (the
// user's route object is never written), and the state machine that moves a
// Canary from step to step. No I/O here; canary-loop.ts is the adapter.
//
// The Canary's status is the whole state: every replica derives the overlay
// weights from status.phase and status.canaryWeight, and the leader advances
// the status. So a restarted controller (or a new leader) resumes from
// status.step and status.stepAppliedAt.
import { parseGatewayDuration } from "../resolve/duration.ts";

export const CANARY_PHASES = [
  "Initializing",
  "Progressing",
  "Paused",
  "Promoting",
  "Succeeded",
  "Failed",
] as const;
export type CanaryPhase = (typeof CANARY_PHASES)[number];

export interface BackendName {
  readonly name: string;
  readonly port: number;
}

export interface CanarySpec {
  readonly targetKind: "HTTPRoute" | "GRPCRoute";
  readonly targetName: string;
  /** Rule by index or by name; index 0 when neither is given. */
  readonly rule: { readonly index: number } | { readonly name: string };
  readonly stable: BackendName;
  readonly canary: BackendName;
  /** Canary weights in percent, increasing, each 1–99. */
  readonly steps: readonly number[];
  readonly intervalMs: number;
  readonly minRequests: number;
  readonly maxErrorRate: number;
  readonly maxP99Ms: number | undefined;
  readonly paused: boolean;
  readonly promote: boolean;
  readonly abort: boolean;
}

export interface CanaryAnalysis {
  readonly requests: number;
  readonly errors: number;
  readonly errorRate: number;
  /** Bucket upper bound; -1 for the overflow bucket; null without data. */
  readonly p99Ms: number | null;
  readonly at: string;
  readonly result: "Passed" | "Failed" | "Waiting";
}

export interface CanaryCondition {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration: number;
}

export interface CanaryStatus {
  readonly phase?: CanaryPhase;
  readonly canaryWeight?: number;
  readonly step?: number;
  readonly stepAppliedAt?: string;
  readonly message?: string;
  readonly lastAnalysis?: CanaryAnalysis;
  readonly conditions?: readonly CanaryCondition[];
  readonly observedGeneration?: number;
}

export interface CanaryObject {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly generation: number;
  readonly resourceVersion: string;
  /** undefined when the spec cannot be read; `problem` says why. */
  readonly spec: CanarySpec | undefined;
  readonly problem: string | undefined;
  readonly status: CanaryStatus;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const int = (v: unknown): number | undefined =>
  typeof v === "number" && Number.isInteger(v) ? v : undefined;
const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

function backendName(v: unknown): BackendName | undefined {
  if (!isObj(v)) return undefined;
  const name = str(v.name);
  const port = int(v.port);
  return name && port !== undefined && port > 0 && port < 65536 ? { name, port } : undefined;
}

/** The steps a spec asks for: `steps`, or stepWeight, 2·stepWeight, … up to maxWeight (default 50). */
export function canarySteps(spec: Json): number[] | string {
  if (Array.isArray(spec.steps)) {
    const steps = spec.steps.map(int);
    if (!steps.length) return "steps is empty";
    for (let i = 0; i < steps.length; i++) {
      const w = steps[i];
      if (w === undefined || w < 1 || w > 99) return `steps[${i}] must be an integer 1-99`;
      if (i > 0 && w <= steps[i - 1]!) return "steps must be strictly increasing";
    }
    return steps as number[];
  }
  const step = int(spec.stepWeight);
  if (step === undefined || step < 1 || step > 99) return "set steps or stepWeight (1-99)";
  const max = int(spec.maxWeight) ?? 50;
  if (max < step || max > 99) return "maxWeight must be at least stepWeight and at most 99";
  const out: number[] = [];
  for (let w = step; w <= max; w += step) out.push(w);
  return out;
}

/** Reads a Canary as the informer delivers it. Never throws. */
export function readCanary(obj: Json): CanaryObject | undefined {
  const meta = isObj(obj.metadata) ? obj.metadata : undefined;
  const namespace = str(meta?.namespace);
  const name = str(meta?.name);
  if (!namespace || !name) return undefined;
  const base = {
    namespace,
    name,
    uid: str(meta?.uid) ?? "",
    generation: int(meta?.generation) ?? 0,
    resourceVersion: str(meta?.resourceVersion) ?? "",
    status: readStatus(obj.status),
  };
  const parsed = readSpec(obj.spec);
  return typeof parsed === "string"
    ? { ...base, spec: undefined, problem: parsed }
    : { ...base, spec: parsed, problem: undefined };
}

function readSpec(spec: unknown): CanarySpec | string {
  if (!isObj(spec)) return "spec is missing";
  const target = isObj(spec.targetRef) ? spec.targetRef : {};
  const targetKind = target.kind;
  const targetName = str(target.name);
  if ((targetKind !== "HTTPRoute" && targetKind !== "GRPCRoute") || !targetName)
    return "spec.targetRef needs kind HTTPRoute or GRPCRoute and a name";
  const ruleSpec = isObj(spec.rule) ? spec.rule : {};
  const ruleName = str(ruleSpec.name);
  const rule = ruleName ? { name: ruleName } : { index: int(ruleSpec.index) ?? 0 };
  const stable = backendName(spec.stableBackend);
  const canary = backendName(spec.canaryBackend);
  if (!stable || !canary) return "spec.stableBackend and spec.canaryBackend need a name and a port";
  if (stable.name === canary.name && stable.port === canary.port)
    return "stableBackend and canaryBackend are the same";
  const steps = canarySteps(spec);
  if (typeof steps === "string") return steps;
  const interval = parseGatewayDuration(str(spec.interval) ?? "1m");
  if (!interval.ok) return `spec.interval: ${interval.message}`;
  if (interval.ms <= 0) return "spec.interval must be positive";
  const analysis = isObj(spec.analysis) ? spec.analysis : {};
  const maxErrorRate = typeof analysis.maxErrorRate === "number" ? analysis.maxErrorRate : 0.01;
  const maxP99 = analysis.maxP99Ms;
  return {
    targetKind,
    targetName,
    rule,
    stable,
    canary,
    steps,
    intervalMs: interval.ms,
    minRequests: Math.max(0, int(analysis.minRequests) ?? 20),
    maxErrorRate,
    maxP99Ms: typeof maxP99 === "number" && maxP99 > 0 ? maxP99 : undefined,
    paused: spec.paused === true,
    promote: spec.promote === true,
    abort: spec.abort === true,
  };
}

function readStatus(v: unknown): CanaryStatus {
  if (!isObj(v)) return {};
  const phase = CANARY_PHASES.find((p) => p === v.phase);
  const out: {
    -readonly [K in keyof CanaryStatus]: CanaryStatus[K];
  } = {};
  if (phase) out.phase = phase;
  const w = int(v.canaryWeight);
  if (w !== undefined) out.canaryWeight = w;
  const step = int(v.step);
  if (step !== undefined) out.step = step;
  const at = str(v.stepAppliedAt);
  if (at) out.stepAppliedAt = at;
  const msg = str(v.message);
  if (msg) out.message = msg;
  if (isObj(v.lastAnalysis)) out.lastAnalysis = v.lastAnalysis as unknown as CanaryAnalysis;
  if (Array.isArray(v.conditions)) out.conditions = v.conditions as CanaryCondition[];
  const og = int(v.observedGeneration);
  if (og !== undefined) out.observedGeneration = og;
  return out;
}

/** Canary weight (percent) the tables carry for this Canary; undefined = no overlay (route as written). */
export function overlayWeight(status: CanaryStatus): number | undefined {
  switch (status.phase) {
    case "Progressing":
    case "Paused":
      return status.canaryWeight ?? 0;
    case "Promoting":
    case "Succeeded":
      return 100;
    case "Failed":
      return 0;
    default:
      return undefined;
  }
}

export interface RouteOverlay {
  readonly rule: CanarySpec["rule"];
  readonly stable: BackendName;
  readonly canary: BackendName;
  readonly weight: number;
}

/** The overlays of every Canary (with readable spec and an overlay weight) that targets this route. */
export function overlaysFor(
  canaries: Iterable<CanaryObject>,
  kind: string,
  namespace: string,
  name: string,
): RouteOverlay[] {
  const out: { key: string; overlay: RouteOverlay }[] = [];
  for (const c of canaries) {
    if (!c.spec || c.namespace !== namespace) continue;
    if (c.spec.targetKind !== kind || c.spec.targetName !== name) continue;
    const weight = overlayWeight(c.status);
    if (weight === undefined) continue;
    out.push({
      key: c.name,
      overlay: { rule: c.spec.rule, stable: c.spec.stable, canary: c.spec.canary, weight },
    });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((o) => o.overlay);
}

/** Index of the rule a Canary names, or a reason why there is none. */
export function findRule(route: Json, rule: CanarySpec["rule"]): number | string {
  const spec = isObj(route.spec) ? route.spec : {};
  const rules = Array.isArray(spec.rules) ? spec.rules : [];
  if ("name" in rule) {
    const i = rules.findIndex((r) => isObj(r) && r.name === rule.name);
    return i >= 0 ? i : `the route has no rule named "${rule.name}"`;
  }
  return rule.index < rules.length
    ? rule.index
    : `the route has ${rules.length} rule(s); no index ${rule.index}`;
}

function refMatches(ref: unknown, b: BackendName, namespace: string | undefined): boolean {
  if (!isObj(ref)) return false;
  if (ref.group !== undefined && ref.group !== "" && ref.group !== "core") return false;
  if (ref.kind !== undefined && ref.kind !== "Service") return false;
  if (ref.namespace !== undefined && ref.namespace !== namespace) return false;
  return ref.name === b.name && ref.port === b.port;
}

/** Why a Canary cannot overlay this route, or undefined when it can. */
export function overlayProblem(route: Json, spec: Pick<CanarySpec, "rule" | "stable">): string | undefined {
  const i = findRule(route, spec.rule);
  if (typeof i === "string") return i;
  const meta = isObj(route.metadata) ? route.metadata : {};
  const rules = (route.spec as Json).rules as unknown[];
  const rule = rules[i] as Json;
  const refs = Array.isArray(rule.backendRefs) ? rule.backendRefs : [];
  if (!refs.some((r) => refMatches(r, spec.stable, str(meta.namespace))))
    return `rule ${i} has no backendRef ${spec.stable.name}:${spec.stable.port} (the stable backend)`;
  return undefined;
}

/**
 * The route as the tables should see it: in each overlaid rule the stable
 * backendRef gets weight 100 − w and the canary backendRef w (appended when
 * the rule does not name it). Other refs keep their weights. Returns the same
 * object when nothing applies; never mutates its input.
 */
export function overlayRoute(route: Json, overlays: readonly RouteOverlay[]): Json {
  if (!overlays.length || !isObj(route.spec) || !Array.isArray(route.spec.rules)) return route;
  const meta = isObj(route.metadata) ? route.metadata : {};
  const namespace = str(meta.namespace);
  let rules: unknown[] | undefined;
  for (const o of overlays) {
    const current = rules ?? [...route.spec.rules];
    if (overlayProblem({ metadata: meta, spec: { rules: current } }, o)) continue;
    const i = findRule({ spec: { rules: current } }, o.rule) as number;
    const rule = current[i] as Json;
    const refs = (rule.backendRefs as unknown[]).map((r) => {
      if (refMatches(r, o.stable, namespace)) return { ...(r as Json), weight: 100 - o.weight };
      if (refMatches(r, o.canary, namespace)) return { ...(r as Json), weight: o.weight };
      return r;
    });
    if (!refs.some((r) => refMatches(r, o.canary, namespace)))
      refs.push({ name: o.canary.name, port: o.canary.port, weight: o.weight });
    current[i] = { ...rule, backendRefs: refs };
    rules = current;
  }
  return rules ? { ...route, spec: { ...route.spec, rules } } : route;
}

// ---------------------------------------------------------------------------
// The state machine.

/** What the adapter observed for one Canary at `now`. */
export interface CanaryObservation {
  /** Why the target cannot be overlaid (route or rule or stable ref missing); undefined when it can. */
  readonly targetProblem: string | undefined;
  /**
   * Whether every connected agent has ACKed a table carrying the weights of
   * the status as it is now; with counts for the messages.
   */
  readonly applied: { readonly done: boolean; readonly acked: number; readonly agents: number };
  /** Canary backend traffic since status.stepAppliedAt (undefined when that is unset). */
  readonly stats:
    | { readonly requests: number; readonly failures: number; readonly p99Ms: number | undefined }
    | undefined;
}

export interface CanaryEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

export interface CanaryDecision {
  readonly status: CanaryStatus;
  readonly events: readonly CanaryEvent[];
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const ms = (x: number | undefined) =>
  x === undefined ? "n/a" : Number.isFinite(x) ? `${x} ms` : "> highest bucket";

/** Next status and events for one Canary. Pure: the same inputs give the same decision. */
export function decideCanary(canary: CanaryObject, obs: CanaryObservation, now: number): CanaryDecision {
  const at = new Date(now).toISOString();
  const prev = canary.status;
  const events: CanaryEvent[] = [];
  const gen = canary.generation;
  const finish = (
    next: CanaryStatus,
    condition: { status: "True" | "False" | "Unknown"; reason: string; message: string },
    event?: CanaryEvent,
  ): CanaryDecision => {
    const old = prev.conditions?.find((c) => c.type === "Progressing");
    const changed = !old || old.status !== condition.status || old.reason !== condition.reason;
    const cond: CanaryCondition = {
      type: "Progressing",
      ...condition,
      lastTransitionTime: changed ? at : old.lastTransitionTime,
      observedGeneration: gen,
    };
    if (event) events.push(event);
    else if (changed && condition.reason !== "Analysing")
      events.push({
        type: condition.status === "False" ? "Warning" : "Normal",
        reason: condition.reason,
        message: condition.message,
      });
    return {
      status: { ...next, message: condition.message, conditions: [cond], observedGeneration: gen },
      events,
    };
  };

  if (!canary.spec) {
    return finish(
      { ...prev, phase: prev.phase ?? "Initializing" },
      { status: "False", reason: "InvalidSpec", message: canary.problem ?? "spec cannot be read" },
    );
  }
  const spec = canary.spec;
  const steps = spec.steps;
  const phase = prev.phase ?? "Initializing";

  if (phase === "Succeeded" || phase === "Failed") {
    // Terminal: keep the weights; nothing to decide.
    return { status: prev, events: [] };
  }

  const fail = (reason: string, message: string): CanaryDecision =>
    finish(
      { ...prev, phase: "Failed", canaryWeight: 0, stepAppliedAt: undefined },
      { status: "False", reason, message },
      { type: "Warning", reason, message: `${message}; traffic back to ${spec.stable.name}` },
    );
  const promoting = (message: string): CanaryDecision =>
    finish(
      { ...prev, phase: "Promoting", canaryWeight: 100, stepAppliedAt: undefined },
      { status: "True", reason: "Promoting", message },
      { type: "Normal", reason: "Promoting", message },
    );

  if (phase === "Initializing") {
    if (obs.targetProblem)
      return finish(
        { ...prev, phase: "Initializing" },
        {
          status: "False",
          reason: "TargetNotReady",
          message: `${spec.targetKind} ${spec.targetName}: ${obs.targetProblem}`,
        },
      );
    const w = steps[0]!;
    return finish(
      { phase: "Progressing", canaryWeight: w, step: 0 },
      {
        status: "True",
        reason: "Started",
        message: `step 1/${steps.length}: ${spec.canary.name} ${w} %, ${spec.stable.name} ${100 - w} %`,
      },
      {
        type: "Normal",
        reason: "Started",
        message: `canary of ${spec.targetKind} ${spec.targetName}: step 1/${steps.length} sends ${w} % to ${spec.canary.name}`,
      },
    );
  }

  if (spec.abort) return fail("Aborted", "aborted by spec.abort");
  if (phase === "Promoting") {
    if (obs.applied.done)
      return finish(
        { ...prev, phase: "Succeeded", canaryWeight: 100, stepAppliedAt: at },
        {
          status: "True",
          reason: "Succeeded",
          message: `${spec.canary.name} serves 100 % (applied by ${obs.applied.acked} of ${obs.applied.agents} agents)`,
        },
        {
          type: "Normal",
          reason: "Succeeded",
          message: `promoted: ${spec.canary.name} serves 100 %, applied by ${obs.applied.acked}/${obs.applied.agents} agents; update the route and delete the Canary to finish`,
        },
      );
    return finish(prev, {
      status: "True",
      reason: "Promoting",
      message: `waiting for agents to apply 100 % ${spec.canary.name} (${obs.applied.acked}/${obs.applied.agents} ACKed)`,
    });
  }
  if (spec.promote) return promoting("promoted by spec.promote");

  const step = Math.min(prev.step ?? 0, steps.length - 1);
  const weight = prev.canaryWeight ?? steps[step]!;
  const stepLabel = `step ${step + 1}/${steps.length} (${spec.canary.name} ${weight} %)`;

  if (phase === "Paused" || spec.paused) {
    if (spec.paused)
      return finish(
        { ...prev, phase: "Paused" },
        { status: "Unknown", reason: "Paused", message: `${stepLabel}: paused by spec.paused` },
      );
    // Resumed: the interval starts over so paused time is not analysed.
    return finish(
      { ...prev, phase: "Progressing", stepAppliedAt: prev.stepAppliedAt ? at : undefined },
      { status: "True", reason: "Resumed", message: `${stepLabel}: resumed` },
    );
  }

  // Progressing.
  if (!prev.stepAppliedAt) {
    if (!obs.applied.done)
      return finish(prev, {
        status: "True",
        reason: "WaitingForAgents",
        message: `${stepLabel}: waiting for every agent to apply the weights (${obs.applied.acked}/${obs.applied.agents} ACKed)`,
      });
    return finish(
      { ...prev, stepAppliedAt: at },
      {
        status: "True",
        reason: "StepApplied",
        message: `${stepLabel}: applied by all ${obs.applied.agents} agents; analysing for ${spec.intervalMs / 1000} s`,
      },
      {
        type: "Normal",
        reason: "StepApplied",
        message: `${stepLabel}: every agent (${obs.applied.agents}) ACKed the weights; analysing for ${spec.intervalMs / 1000} s`,
      },
    );
  }

  const appliedAt = Date.parse(prev.stepAppliedAt);
  const elapsed = now - appliedAt;
  const s = obs.stats ?? { requests: 0, failures: 0, p99Ms: undefined };
  const errorRate = s.requests > 0 ? s.failures / s.requests : 0;
  const analysis = (result: CanaryAnalysis["result"]): CanaryAnalysis => ({
    requests: s.requests,
    errors: s.failures,
    errorRate: Math.round(errorRate * 10_000) / 10_000,
    p99Ms: s.p99Ms === undefined ? null : Number.isFinite(s.p99Ms) ? s.p99Ms : -1,
    at,
    result,
  });
  // Failures show early: judge as soon as there are enough requests, even mid-interval.
  const enough = s.requests >= Math.max(1, spec.minRequests);
  const numbers = `${s.requests} requests, ${s.failures} errors (${pct(errorRate)}), p99 ${ms(s.p99Ms)}`;
  if (enough && errorRate > spec.maxErrorRate)
    return withAnalysis(
      fail(
        "AnalysisFailed",
        `${stepLabel}: error rate ${pct(errorRate)} > max ${pct(spec.maxErrorRate)} (${numbers})`,
      ),
      analysis("Failed"),
    );
  if (enough && spec.maxP99Ms !== undefined && s.p99Ms !== undefined && s.p99Ms > spec.maxP99Ms)
    return withAnalysis(
      fail("AnalysisFailed", `${stepLabel}: p99 ${ms(s.p99Ms)} > max ${spec.maxP99Ms} ms (${numbers})`),
      analysis("Failed"),
    );
  if (elapsed < spec.intervalMs) {
    const left = Math.ceil((spec.intervalMs - elapsed) / 1000);
    return finish(
      { ...prev, lastAnalysis: analysis("Waiting") },
      { status: "True", reason: "Analysing", message: `${stepLabel}: analysing, next decision in ${left} s` },
    );
  }
  if (s.requests < spec.minRequests)
    return finish(
      { ...prev, lastAnalysis: analysis("Waiting") },
      {
        status: "True",
        reason: "WaitingForTraffic",
        message: `${stepLabel}: ${s.requests} of ${spec.minRequests} requests needed before judging; waiting`,
      },
    );
  const passed = `${stepLabel} passed: ${numbers}`;
  if (step + 1 >= steps.length) {
    const d = promoting(`${passed}; last step done, promoting to 100 %`);
    return withAnalysis(d, analysis("Passed"));
  }
  const next = steps[step + 1]!;
  return withAnalysis(
    finish(
      { ...prev, step: step + 1, canaryWeight: next, stepAppliedAt: undefined },
      {
        status: "True",
        reason: "StepPassed",
        message: `${passed}; step ${step + 2}/${steps.length}: ${spec.canary.name} ${next} %`,
      },
      {
        type: "Normal",
        reason: "StepPassed",
        message: `${passed}; next: step ${step + 2}/${steps.length} with ${next} % to ${spec.canary.name}`,
      },
    ),
    analysis("Passed"),
  );
}

function withAnalysis(d: CanaryDecision, a: CanaryAnalysis): CanaryDecision {
  return { ...d, status: { ...d.status, lastAnalysis: a } };
}

/** Status without the fields that change on every tick (timestamps of waiting analyses), to decide whether to write. */
export function statusFingerprint(s: CanaryStatus): string {
  const { lastAnalysis, ...rest } = s;
  const a = lastAnalysis
    ? { ...lastAnalysis, at: lastAnalysis.result === "Waiting" ? "" : lastAnalysis.at }
    : undefined;
  return JSON.stringify({ ...rest, lastAnalysis: a });
}
