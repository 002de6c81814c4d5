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

/** The annotation a person (or `trellis canary promote|abort|pause|resume`) sets to steer a run. */
export const CANARY_ACTION_ANNOTATION = "trellis.dev/canary-action";
export const CANARY_ACTIONS = ["promote", "abort", "pause", "resume"] as const;
export type CanaryAction = (typeof CANARY_ACTIONS)[number];

export const WEBHOOK_TYPES = ["PreStep", "Analysis", "Rollback"] as const;
export type WebhookType = (typeof WEBHOOK_TYPES)[number];

export interface CanaryWebhook {
  readonly name: string;
  readonly type: WebhookType;
  readonly url: string;
  readonly timeoutMs: number;
  /** Consecutive failures of this webhook that fail the Canary (PreStep, Analysis). */
  readonly failureThreshold: number;
  /** Passed through in the request body, for the receiver. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Canary judged against the stable backend over the same window. */
export interface StableComparison {
  /** Highest tolerated canary error rate minus stable error rate (0-1); undefined = not checked. */
  readonly maxErrorRateIncrease: number | undefined;
  /** Highest tolerated canary p99 / stable p99; undefined = not checked. */
  readonly maxP99Ratio: number | undefined;
  /** Requests the stable backend must have served in the window before comparing. */
  readonly minStableRequests: number;
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
  readonly compare: StableComparison | undefined;
  readonly webhooks: readonly CanaryWebhook[];
  readonly paused: boolean;
  readonly promote: boolean;
  readonly abort: boolean;
}

/** Traffic numbers of one backend over an analysis window. */
export interface WindowStats {
  readonly requests: number;
  readonly errors: number;
  readonly errorRate: number;
  /** Bucket upper bound; -1 for the overflow bucket; null without data. */
  readonly p99Ms: number | null;
}

export interface CanaryAnalysis {
  readonly requests: number;
  readonly errors: number;
  readonly errorRate: number;
  /** Bucket upper bound; -1 for the overflow bucket; null without data. */
  readonly p99Ms: number | null;
  readonly at: string;
  readonly result: "Passed" | "Failed" | "Waiting";
  /** The stable backend over the same window; only with analysis.compareToStable. */
  readonly stable?: WindowStats;
  /** Outcome of the comparison with the stable backend, in words. */
  readonly comparison?: string;
}

/** What a webhook answered last, kept in status so failures count across ticks and restarts. */
export interface WebhookStatus {
  readonly name: string;
  readonly type: WebhookType;
  readonly result: "Passed" | "Failed";
  readonly consecutiveFailures: number;
  readonly message: string;
  readonly at: string;
}

/** The manual gate that last changed the phase, and where it came from. */
export interface GateRecord {
  readonly action: CanaryAction;
  readonly source: "spec" | "annotation";
  readonly at: string;
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
  readonly webhooks?: readonly WebhookStatus[];
  readonly lastGate?: GateRecord;
  /** A value of the canary-action annotation that is not an action (reported once, then ignored). */
  readonly invalidAction?: string;
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
  /** The trellis.dev/canary-action annotation, as written (undefined when absent). */
  readonly action: string | undefined;
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
    action: isObj(meta?.annotations) ? str(meta.annotations[CANARY_ACTION_ANNOTATION])?.trim() : undefined,
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
  const minRequests = Math.max(0, int(analysis.minRequests) ?? 20);
  const compare = readComparison(analysis.compareToStable, minRequests);
  if (typeof compare === "string") return compare;
  const webhooks = readWebhooks(spec.webhooks);
  if (typeof webhooks === "string") return webhooks;
  return {
    targetKind,
    targetName,
    rule,
    stable,
    canary,
    steps,
    intervalMs: interval.ms,
    minRequests,
    maxErrorRate,
    maxP99Ms: typeof maxP99 === "number" && maxP99 > 0 ? maxP99 : undefined,
    compare,
    webhooks,
    paused: spec.paused === true,
    promote: spec.promote === true,
    abort: spec.abort === true,
  };
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

function readComparison(v: unknown, minRequests: number): StableComparison | undefined | string {
  if (v === undefined) return undefined;
  if (!isObj(v)) return "spec.analysis.compareToStable must be an object";
  const maxErrorRateIncrease = num(v.maxErrorRateIncrease);
  const maxP99Ratio = num(v.maxP99Ratio);
  if (maxErrorRateIncrease === undefined && maxP99Ratio === undefined)
    return "spec.analysis.compareToStable needs maxErrorRateIncrease and/or maxP99Ratio";
  if (maxErrorRateIncrease !== undefined && (maxErrorRateIncrease < 0 || maxErrorRateIncrease > 1))
    return "spec.analysis.compareToStable.maxErrorRateIncrease must be 0-1 (a difference of error rates)";
  if (maxP99Ratio !== undefined && maxP99Ratio < 1)
    return "spec.analysis.compareToStable.maxP99Ratio must be at least 1 (canary p99 / stable p99)";
  const minStable = int(v.minStableRequests);
  return {
    maxErrorRateIncrease,
    maxP99Ratio,
    minStableRequests: minStable !== undefined && minStable >= 0 ? minStable : minRequests,
  };
}

const WEBHOOK_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function readWebhooks(v: unknown): CanaryWebhook[] | string {
  if (v === undefined) return [];
  if (!Array.isArray(v)) return "spec.webhooks must be a list";
  const out: CanaryWebhook[] = [];
  for (const [i, w] of v.entries()) {
    const at = `spec.webhooks[${i}]`;
    if (!isObj(w)) return `${at} must be an object`;
    const name = str(w.name);
    if (!name || !WEBHOOK_NAME.test(name)) return `${at}.name must be a DNS label (a-z, 0-9, -)`;
    if (out.some((o) => o.name === name)) return `${at}.name "${name}" is used twice`;
    const type = WEBHOOK_TYPES.find((t) => t === w.type);
    if (!type) return `${at}.type must be one of ${WEBHOOK_TYPES.join(", ")}`;
    const url = str(w.url);
    if (!url || !/^https?:\/\/[^\s/]+/.test(url)) return `${at}.url must be an http:// or https:// URL`;
    const timeout = int(w.timeoutSeconds) ?? 5;
    if (timeout < 1 || timeout > 60) return `${at}.timeoutSeconds must be 1-60`;
    const threshold = int(w.failureThreshold) ?? 3;
    if (threshold < 1 || threshold > 20) return `${at}.failureThreshold must be 1-20`;
    const metadata: Record<string, string> = {};
    if (isObj(w.metadata)) for (const [k, val] of Object.entries(w.metadata)) metadata[k] = String(val);
    out.push({ name, type, url, timeoutMs: timeout * 1000, failureThreshold: threshold, metadata });
  }
  return out;
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
  if (Array.isArray(v.webhooks)) out.webhooks = v.webhooks.filter(isObj) as unknown as WebhookStatus[];
  if (isObj(v.lastGate)) out.lastGate = v.lastGate as unknown as GateRecord;
  const invalid = str(v.invalidAction);
  if (invalid) out.invalidAction = invalid;
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
// Manual gates: spec fields and the canary-action annotation.

type GateSource = GateRecord["source"];

export interface EffectiveGates {
  readonly abort: GateSource | undefined;
  readonly promote: GateSource | undefined;
  readonly paused: boolean;
  readonly pauseSource: GateSource;
  /** The annotation's value when it is not an action. */
  readonly invalid: string | undefined;
}

/**
 * Abort wins over promote, promote over pause, whichever field or annotation
 * asks. For pause, the annotation (pause or resume) overrides spec.paused, so
 * a person can resume a run whose manifest says paused without editing it.
 */
export function effectiveGates(
  spec: Pick<CanarySpec, "abort" | "promote" | "paused">,
  annotation: string | undefined,
): EffectiveGates {
  const action = CANARY_ACTIONS.find((a) => a === annotation);
  const invalid = annotation && !action ? annotation : undefined;
  const from = (field: boolean, act: CanaryAction): GateSource | undefined =>
    field ? "spec" : action === act ? "annotation" : undefined;
  const byAnnotation = action === "pause" || action === "resume";
  return {
    abort: from(spec.abort, "abort"),
    promote: from(spec.promote, "promote"),
    paused: byAnnotation ? action === "pause" : spec.paused,
    pauseSource: byAnnotation ? "annotation" : "spec",
    invalid,
  };
}

const gateText = (action: CanaryAction, source: GateSource): string =>
  source === "spec"
    ? `spec.${action === "pause" ? "paused" : action === "resume" ? "paused: false" : action}`
    : `annotation ${CANARY_ACTION_ANNOTATION}=${action}`;

// ---------------------------------------------------------------------------
// Canary against stable.

/** One backend's traffic over the analysis window, as the adapter measured it. */
export interface BackendWindow {
  readonly requests: number;
  readonly failures: number;
  /** Bucket upper bound in ms; Infinity for the overflow bucket; undefined without data. */
  readonly p99Ms: number | undefined;
}

export interface ComparisonVerdict {
  readonly result: "Passed" | "Failed" | "Waiting";
  readonly message: string;
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
const ms = (x: number | undefined) =>
  x === undefined ? "n/a" : Number.isFinite(x) ? `${x} ms` : "> highest bucket";

/** canary p99 / stable p99 with the overflow bucket as +Infinity (both overflowing count as equal). */
export function p99Ratio(canary: number, stable: number): number {
  if (!Number.isFinite(canary)) return Number.isFinite(stable) ? Number.POSITIVE_INFINITY : 1;
  if (!Number.isFinite(stable)) return 0;
  return canary / Math.max(stable, Number.MIN_VALUE);
}

/**
 * Judges the canary against the stable backend over the same window. Waiting
 * until both sides have their minimum of requests: a comparison with a
 * handful of stable samples would pass or fail on noise.
 */
export function compareWithStable(
  canary: BackendWindow,
  stable: BackendWindow,
  cmp: StableComparison,
  minCanaryRequests: number,
): ComparisonVerdict {
  const needCanary = Math.max(1, minCanaryRequests);
  const needStable = Math.max(1, cmp.minStableRequests);
  if (canary.requests < needCanary)
    return {
      result: "Waiting",
      message: `comparison waits: canary has ${canary.requests} of ${needCanary} requests`,
    };
  if (stable.requests < needStable)
    return {
      result: "Waiting",
      message: `comparison waits: stable has ${stable.requests} of ${needStable} requests needed to compare`,
    };
  const cr = canary.failures / canary.requests;
  const sr = stable.failures / stable.requests;
  const increase = cr - sr;
  const rates = `error rate ${pct(cr)} vs stable ${pct(sr)}`;
  // Rounded to the precision status shows, so a decision never hinges on float noise.
  if (cmp.maxErrorRateIncrease !== undefined && Math.round((increase - cmp.maxErrorRateIncrease) * 1e9) > 0)
    return {
      result: "Failed",
      message: `${rates}: ${(increase * 100).toFixed(1)} points above stable > max ${(cmp.maxErrorRateIncrease * 100).toFixed(1)}`,
    };
  let latency = "p99 not compared (no latency data)";
  if (cmp.maxP99Ratio !== undefined && canary.p99Ms !== undefined && stable.p99Ms !== undefined) {
    const ratio = p99Ratio(canary.p99Ms, stable.p99Ms);
    const shown = Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : "unbounded";
    latency = `p99 ${ms(canary.p99Ms)} vs stable ${ms(stable.p99Ms)} (${shown})`;
    if (ratio > cmp.maxP99Ratio) return { result: "Failed", message: `${latency} > max ${cmp.maxP99Ratio}x` };
  } else if (cmp.maxP99Ratio === undefined) latency = "p99 not compared";
  return { result: "Passed", message: `${rates}, ${latency}` };
}

// ---------------------------------------------------------------------------
// Webhooks: the body the controller POSTs, and what came back.

export interface WebhookBody {
  readonly apiVersion: "trellis.dev/v1alpha1";
  readonly kind: "CanaryWebhook";
  readonly type: WebhookType;
  readonly canary: { readonly namespace: string; readonly name: string; readonly uid: string };
  readonly target: { readonly kind: string; readonly name: string; readonly rule: CanarySpec["rule"] };
  readonly stableBackend: BackendName;
  readonly canaryBackend: BackendName;
  readonly phase: CanaryPhase;
  /** PreStep: the step about to be applied (steps = promotion to 100 %); else the current step. 0-based. */
  readonly step: number;
  readonly steps: number;
  /** Canary weight in percent: about to be applied (PreStep), applied (Analysis), 0 (Rollback). */
  readonly weight: number;
  readonly lastAnalysis: CanaryAnalysis | null;
  readonly message: string;
  /** The webhook's own spec.webhooks[].metadata; the adapter fills it per webhook. */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface WebhookResult {
  readonly name: string;
  /** 2xx within the timeout. */
  readonly ok: boolean;
  /** e.g. "HTTP 200 in 12 ms", "HTTP 503: not ready", "timed out after 5 s". */
  readonly message: string;
}

/** Webhooks to call: the same body for each, plus each webhook's metadata. */
export interface WebhookCall {
  readonly type: WebhookType;
  readonly hooks: readonly CanaryWebhook[];
  readonly body: WebhookBody;
}

/** A failed webhook is called again at most this often (or every interval, if shorter). */
export const WEBHOOK_RETRY_MAX_MS = 30_000;

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
  readonly stats: BackendWindow | undefined;
  /** Stable backend traffic over the same window (read only with analysis.compareToStable). */
  readonly stableStats?: BackendWindow | undefined;
  /**
   * Webhook answers gathered in this tick, by type. A decision that needs a
   * type not listed here returns `call` instead; the adapter calls and decides again.
   */
  readonly webhooks?: readonly { readonly type: WebhookType; readonly results: readonly WebhookResult[] }[];
}

export interface CanaryEvent {
  readonly type: "Normal" | "Warning";
  readonly reason: string;
  readonly message: string;
}

export interface CanaryDecision {
  readonly status: CanaryStatus;
  readonly events: readonly CanaryEvent[];
  /** Not a decision yet: call these webhooks, then decide again with their results; write nothing. */
  readonly call?: WebhookCall;
  /** Call after writing the status; the answers only inform (Rollback). */
  readonly notify?: WebhookCall;
}

/** Next status and events for one Canary. Pure: the same inputs give the same decision. */
export function decideCanary(canary: CanaryObject, obs: CanaryObservation, now: number): CanaryDecision {
  const at = new Date(now).toISOString();
  const prev = canary.status;
  const events: CanaryEvent[] = [];
  const gen = canary.generation;
  const gates = canary.spec
    ? effectiveGates(canary.spec, canary.action)
    : effectiveGates({ abort: false, promote: false, paused: false }, canary.action);
  /** Webhook answers as they will be written: updated by `gate` below. */
  let hookState: readonly WebhookStatus[] | undefined = prev.webhooks;
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
    if (gates.invalid && gates.invalid !== prev.invalidAction)
      events.push({
        type: "Warning",
        reason: "InvalidAction",
        message: `annotation ${CANARY_ACTION_ANNOTATION}="${gates.invalid}" is not one of ${CANARY_ACTIONS.join(", ")}: ignored; fix with kubectl annotate --overwrite canary ${canary.name} ${CANARY_ACTION_ANNOTATION}=<action>`,
      });
    const { invalidAction: _, webhooks: __, ...rest } = next;
    return {
      status: {
        ...rest,
        ...(hookState?.length ? { webhooks: hookState } : {}),
        ...(gates.invalid ? { invalidAction: gates.invalid } : {}),
        message: condition.message,
        conditions: [cond],
        observedGeneration: gen,
      },
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

  const body = (
    type: WebhookType,
    step: number,
    weight: number,
    lastAnalysis: CanaryAnalysis | null,
    message: string,
  ): WebhookBody => ({
    apiVersion: "trellis.dev/v1alpha1",
    kind: "CanaryWebhook",
    type,
    canary: { namespace: canary.namespace, name: canary.name, uid: canary.uid },
    target: { kind: spec.targetKind, name: spec.targetName, rule: spec.rule },
    stableBackend: spec.stable,
    canaryBackend: spec.canary,
    phase,
    step,
    steps: steps.length,
    weight,
    lastAnalysis,
    message,
    metadata: {},
  });

  const fail = (reason: string, message: string): CanaryDecision => {
    const rollback = spec.webhooks.filter((w) => w.type === "Rollback");
    const d = finish(
      { ...prev, phase: "Failed", canaryWeight: 0, stepAppliedAt: undefined },
      { status: "False", reason, message },
      { type: "Warning", reason, message: `${message}; traffic back to ${spec.stable.name}` },
    );
    if (!rollback.length) return d;
    const b = body(
      "Rollback",
      prev.step ?? 0,
      0,
      d.status.lastAnalysis ?? prev.lastAnalysis ?? null,
      message,
    );
    return { ...d, notify: { type: "Rollback", hooks: rollback, body: { ...b, phase: "Failed" } } };
  };
  const promoting = (message: string, gate?: GateRecord): CanaryDecision =>
    finish(
      {
        ...prev,
        phase: "Promoting",
        canaryWeight: 100,
        stepAppliedAt: undefined,
        ...(gate ? { lastGate: gate } : {}),
      },
      { status: "True", reason: "Promoting", message },
      { type: "Normal", reason: "Promoting", message },
    );

  const promoteGate = (source: GateSource): CanaryDecision =>
    promoting(`promoted by ${gateText("promote", source)}`, { action: "promote", source, at });

  /**
   * Runs the webhooks of `type` for the transition at hand. undefined: all
   * passed (or none configured), go on. Otherwise the decision to return:
   * a call to make, a wait, or a failure once a webhook failed too often.
   */
  const gate = (
    type: "PreStep" | "Analysis",
    step: number,
    weight: number,
    label: string,
    lastAnalysis: CanaryAnalysis | null,
    waiting: CanaryStatus,
  ): CanaryDecision | undefined => {
    const hooks = spec.webhooks.filter((w) => w.type === type);
    if (!hooks.length) return undefined;
    const got = obs.webhooks?.find((r) => r.type === type);
    if (!got) {
      const lastFailure = Math.max(
        ...(hookState ?? []).filter((h) => h.result === "Failed").map((h) => Date.parse(h.at)),
      );
      const retryMs = Math.min(spec.intervalMs, WEBHOOK_RETRY_MAX_MS);
      if (now - lastFailure < retryMs) {
        const failed = (hookState ?? []).filter((h) => h.result === "Failed");
        return finish(waiting, {
          status: "True",
          reason: "WaitingForWebhook",
          message: `${label}: waiting for webhook ${failed.map((h) => `${h.name} (${h.consecutiveFailures} failure(s): ${h.message})`).join(", ")}; next call in ${Math.ceil((lastFailure + retryMs - now) / 1000)} s`,
        });
      }
      const message = type === "PreStep" ? `about to apply ${weight} % to ${spec.canary.name}` : label;
      return {
        status: prev,
        events: [],
        call: { type, hooks, body: body(type, step, weight, lastAnalysis, message) },
      };
    }
    const failed: { hook: CanaryWebhook; failures: number; message: string }[] = [];
    const next = new Map((hookState ?? []).map((h) => [h.name, h]));
    for (const hook of hooks) {
      const r = got.results.find((x) => x.name === hook.name) ?? {
        name: hook.name,
        ok: false,
        message: "not called",
      };
      const failures = r.ok ? 0 : (next.get(hook.name)?.consecutiveFailures ?? 0) + 1;
      next.set(hook.name, {
        name: hook.name,
        type,
        result: r.ok ? "Passed" : "Failed",
        consecutiveFailures: failures,
        message: r.message,
        at,
      });
      if (!r.ok) failed.push({ hook, failures, message: r.message });
    }
    // Entries of webhooks no longer in the spec go; the rest keep the spec's order.
    hookState = spec.webhooks.flatMap((w) => {
      const h = next.get(w.name);
      return h ? [h] : [];
    });
    if (!failed.length) return undefined;
    const over = failed.find((f) => f.failures >= f.hook.failureThreshold);
    if (over)
      return fail(
        "WebhookFailed",
        `${label}: ${type} webhook ${over.hook.name} failed ${over.failures} time(s) in a row (${over.message})`,
      );
    const retryS = Math.ceil(Math.min(spec.intervalMs, WEBHOOK_RETRY_MAX_MS) / 1000);
    const message = `${label}: ${type} webhook ${failed
      .map((f) => `${f.hook.name} failed (${f.message}), ${f.failures}/${f.hook.failureThreshold}`)
      .join("; ")}; retrying in ${retryS} s`;
    return finish(
      waiting,
      { status: "True", reason: "WaitingForWebhook", message },
      { type: "Warning", reason: "WebhookFailed", message },
    );
  };

  if (gates.abort) {
    const d = fail("Aborted", `aborted by ${gateText("abort", gates.abort)}`);
    return { ...d, status: { ...d.status, lastGate: { action: "abort", source: gates.abort, at } } };
  }
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
    if (gates.promote) return promoteGate(gates.promote);
    const w = steps[0]!;
    const label = `step 1/${steps.length}`;
    const pre = gate("PreStep", 0, w, label, null, { ...prev, phase: "Initializing" });
    if (pre) return pre;
    return finish(
      { ...prev, phase: "Progressing", canaryWeight: w, step: 0, stepAppliedAt: undefined },
      {
        status: "True",
        reason: "Started",
        message: `${label}: ${spec.canary.name} ${w} %, ${spec.stable.name} ${100 - w} %`,
      },
      {
        type: "Normal",
        reason: "Started",
        message: `canary of ${spec.targetKind} ${spec.targetName}: step 1/${steps.length} sends ${w} % to ${spec.canary.name}`,
      },
    );
  }

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
  if (gates.promote) return promoteGate(gates.promote);

  const step = Math.min(prev.step ?? 0, steps.length - 1);
  const weight = prev.canaryWeight ?? steps[step]!;
  const stepLabel = `step ${step + 1}/${steps.length} (${spec.canary.name} ${weight} %)`;

  if (phase === "Paused" || gates.paused) {
    if (gates.paused) {
      const by = gateText("pause", gates.pauseSource);
      return finish(
        {
          ...prev,
          phase: "Paused",
          ...(phase !== "Paused" ? { lastGate: { action: "pause", source: gates.pauseSource, at } } : {}),
        },
        { status: "Unknown", reason: "Paused", message: `${stepLabel}: paused by ${by}` },
      );
    }
    // Resumed: the interval starts over so paused time is not analysed.
    const by = gates.pauseSource === "annotation" ? gateText("resume", "annotation") : "spec.paused: false";
    return finish(
      {
        ...prev,
        phase: "Progressing",
        stepAppliedAt: prev.stepAppliedAt ? at : undefined,
        lastGate: { action: "resume", source: gates.pauseSource, at },
      },
      { status: "True", reason: "Resumed", message: `${stepLabel}: resumed by ${by}` },
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
  const st = obs.stableStats ?? { requests: 0, failures: 0, p99Ms: undefined };
  const errorRate = s.requests > 0 ? s.failures / s.requests : 0;
  const cmp = spec.compare ? compareWithStable(s, st, spec.compare, spec.minRequests) : undefined;
  const analysis = (result: CanaryAnalysis["result"]): CanaryAnalysis => ({
    requests: s.requests,
    errors: s.failures,
    errorRate: round4(errorRate),
    p99Ms: jsonP99(s.p99Ms),
    at,
    result,
    ...(cmp
      ? {
          stable: {
            requests: st.requests,
            errors: st.failures,
            errorRate: round4(st.requests > 0 ? st.failures / st.requests : 0),
            p99Ms: jsonP99(st.p99Ms),
          },
          comparison: `${cmp.result}: ${cmp.message}`,
        }
      : {}),
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
  if (cmp?.result === "Failed")
    return withAnalysis(
      fail("AnalysisFailed", `${stepLabel}: against stable, ${cmp.message} (${numbers})`),
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
  if (cmp?.result === "Waiting")
    return finish(
      { ...prev, lastAnalysis: analysis("Waiting") },
      { status: "True", reason: "WaitingForTraffic", message: `${stepLabel}: ${cmp.message}; waiting` },
    );
  const passedAnalysis = analysis("Passed");
  const waiting = { ...prev, lastAnalysis: analysis("Waiting") };
  const hooked = gate("Analysis", step, weight, stepLabel, passedAnalysis, waiting);
  if (hooked)
    return hooked.call
      ? hooked
      : withAnalysis(hooked, hooked.status.phase === "Failed" ? analysis("Failed") : analysis("Waiting"));
  const last = step + 1 >= steps.length;
  const next = last ? 100 : steps[step + 1]!;
  const pre = gate(
    "PreStep",
    last ? steps.length : step + 1,
    next,
    last
      ? `promotion of ${spec.canary.name}`
      : `step ${step + 2}/${steps.length} (${spec.canary.name} ${next} %)`,
    passedAnalysis,
    waiting,
  );
  if (pre)
    return pre.call
      ? pre
      : withAnalysis(pre, pre.status.phase === "Failed" ? analysis("Failed") : analysis("Waiting"));
  const comparison = cmp ? `; against stable: ${cmp.message}` : "";
  const passed = `${stepLabel} passed: ${numbers}${comparison}`;
  if (last) {
    const d = promoting(`${passed}; last step done, promoting to 100 %`);
    return withAnalysis(d, passedAnalysis);
  }
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
    passedAnalysis,
  );
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const jsonP99 = (x: number | undefined): number | null =>
  x === undefined ? null : Number.isFinite(x) ? x : -1;

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
