// `trellis canary start`, the pure part: a Canary object from command-line
// flags or from a YAML document, checked the way the controller will read it
// (readCanary), with errors that say what to type instead.
import { parseAllDocuments } from "yaml";
import { parseGatewayDuration } from "../resolve/duration.ts";
import { readCanary, WEBHOOK_TYPES } from "./canary.ts";

export interface StartFlags {
  route?: string;
  rule?: string;
  stable?: string;
  canary?: string;
  steps?: string;
  stepWeight?: string;
  maxWeight?: string;
  interval?: string;
  minRequests?: string;
  maxErrorRate?: string;
  maxP99Ms?: string;
  compareErrorRateIncrease?: string;
  compareP99Ratio?: string;
  compareMinStableRequests?: string;
  webhook?: string[];
  paused?: boolean;
}

export type Built =
  | { ok: true; object: Record<string, unknown>; note?: string }
  | { ok: false; error: string };

/** A problem and the flag to type instead. */
class StartError extends Error {}
const bad = (problem: string, fix: string): never => {
  throw new StartError(`${problem}\n  fix: ${fix}`);
};

const DNS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function backend(flag: string, v: string | undefined): { name: string; port: number } {
  if (!v) return bad(`--${flag} is required`, `--${flag} SERVICE:PORT, e.g. --${flag} smiley:80`);
  const m = /^([a-z0-9][-a-z0-9.]*):([0-9]{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65535)
    return bad(
      `--${flag} "${v}" is not SERVICE:PORT`,
      `--${flag} smiley:80 (the Service's port, as the route's backendRef names it)`,
    );
  return { name: m[1]!, port };
}

function integer(flag: string, v: string, min: number, max: number): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    return bad(
      `--${flag} "${v}" is not an integer ${min}-${max}`,
      `--${flag} ${min === 0 ? 20 : Math.max(min, 10)}`,
    );
  return n;
}

/** 0.05, or 5% for the same. */
function fraction(flag: string, v: string): number {
  const m = /^([0-9]*\.?[0-9]+)(%?)$/.exec(v.trim());
  const n = m ? Number(m[1]) / (m[2] ? 100 : 1) : Number.NaN;
  if (!m || !(n >= 0 && n <= 1)) return bad(`--${flag} "${v}" is not a rate 0-1`, `--${flag} 0.05 (or 5%)`);
  return n;
}

function route(v: string | undefined): { kind: "HTTPRoute" | "GRPCRoute"; name: string } {
  if (!v) return bad("--route is required", "--route httproute/NAME or --route grpcroute/NAME");
  const [k = "", name = "", ...rest] = v.split("/");
  const kind = /^httproutes?$/i.test(k) ? "HTTPRoute" : /^grpcroutes?$/i.test(k) ? "GRPCRoute" : undefined;
  if (!kind || !name || rest.length || !DNS_NAME.test(name))
    return bad(
      `--route "${v}" is not KIND/NAME`,
      "--route httproute/smiley (HTTPRoute or GRPCRoute, in the Canary's namespace)",
    );
  return { kind, name };
}

/** "name=load,type=PreStep,url=http://…,timeout=5,failures=3" */
function webhook(v: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const example = '--webhook "name=smoke,type=PreStep,url=http://smoke.tests/hook,timeout=5,failures=3"';
  for (const part of v.split(",")) {
    const i = part.indexOf("=");
    if (i <= 0) return bad(`--webhook "${v}": "${part}" is not key=value`, example);
    const key = part.slice(0, i).trim();
    const val = part.slice(i + 1).trim();
    if (key === "name" || key === "url") out[key] = val;
    else if (key === "type") {
      const t = WEBHOOK_TYPES.find((x) => x.toLowerCase() === val.toLowerCase());
      if (!t)
        return bad(`--webhook "${v}": type "${val}" is not one of ${WEBHOOK_TYPES.join(", ")}`, example);
      out.type = t;
    } else if (key === "timeout")
      out.timeoutSeconds = integer("webhook timeout", val.replace(/s$/, ""), 1, 60);
    else if (key === "failures") out.failureThreshold = integer("webhook failures", val, 1, 20);
    else
      return bad(
        `--webhook "${v}": unknown key "${key}"`,
        `${example} (keys: name, type, url, timeout, failures)`,
      );
  }
  for (const k of ["name", "type", "url"]) if (!(k in out)) bad(`--webhook "${v}" has no ${k}`, example);
  return out;
}

/** Checks an object as the controller will read it; the CRD's CEL rules repeat some of these. */
function checked(object: Record<string, unknown>): Built {
  const meta = (object.metadata ?? {}) as { name?: unknown; namespace?: unknown };
  if (object.apiVersion !== "trellis.dev/v1alpha1" || object.kind !== "Canary")
    return {
      ok: false,
      error: "the document is not a Canary\n  fix: apiVersion: trellis.dev/v1alpha1, kind: Canary",
    };
  if (typeof meta.name !== "string" || !DNS_NAME.test(meta.name))
    return {
      ok: false,
      error: "metadata.name is missing or not a DNS name\n  fix: a lower-case name such as smiley2",
    };
  const c = readCanary({ ...object, metadata: { ...meta, namespace: meta.namespace ?? "default" } });
  if (!c?.spec)
    return { ok: false, error: `${c?.problem ?? "spec cannot be read"}\n  fix: see docs/canaries.md` };
  const spec = object.spec as Record<string, unknown>;
  if ("steps" in spec && "stepWeight" in spec)
    return { ok: false, error: "both steps and stepWeight are set\n  fix: keep one of them" };
  return { ok: true, object };
}

export function canaryFromFlags(name: string | undefined, namespace: string, f: StartFlags): Built {
  try {
    const target = route(f.route);
    const stable = backend("stable", f.stable);
    const canary = backend("canary", f.canary);
    const spec: Record<string, unknown> = {
      targetRef: { kind: target.kind, name: target.name },
      stableBackend: stable,
      canaryBackend: canary,
    };
    if (f.rule !== undefined)
      spec.rule = /^[0-9]+$/.test(f.rule) ? { index: integer("rule", f.rule, 0, 63) } : { name: f.rule };
    if (f.steps !== undefined && f.stepWeight !== undefined)
      bad("--steps and --step-weight both given", "use --steps 10,50,80 or --step-weight 10 --max-weight 50");
    if (f.steps !== undefined) spec.steps = f.steps.split(",").map((w) => integer("steps", w.trim(), 1, 99));
    else if (f.stepWeight !== undefined) {
      spec.stepWeight = integer("step-weight", f.stepWeight, 1, 99);
      if (f.maxWeight !== undefined) spec.maxWeight = integer("max-weight", f.maxWeight, 1, 99);
    } else
      bad("no steps", "--steps 10,50,80 (canary percent per step) or --step-weight 10 [--max-weight 50]");
    if (f.maxWeight !== undefined && f.stepWeight === undefined)
      bad("--max-weight needs --step-weight", "--step-weight 10 --max-weight 50");
    if (f.interval !== undefined) {
      const d = parseGatewayDuration(f.interval);
      if (!d.ok || d.ms <= 0)
        bad(`--interval "${f.interval}" is not a positive duration`, "--interval 30s (or 1m, 1m30s)");
      spec.interval = f.interval;
    }
    const analysis: Record<string, unknown> = {};
    if (f.minRequests !== undefined)
      analysis.minRequests = integer("min-requests", f.minRequests, 0, 1_000_000);
    if (f.maxErrorRate !== undefined) analysis.maxErrorRate = fraction("max-error-rate", f.maxErrorRate);
    if (f.maxP99Ms !== undefined) analysis.maxP99Ms = integer("max-p99-ms", f.maxP99Ms, 1, 3_600_000);
    const compare: Record<string, unknown> = {};
    if (f.compareErrorRateIncrease !== undefined)
      compare.maxErrorRateIncrease = fraction("compare-error-rate-increase", f.compareErrorRateIncrease);
    if (f.compareP99Ratio !== undefined) {
      const r = Number(f.compareP99Ratio);
      if (!(r >= 1) || !Number.isFinite(r))
        bad(
          `--compare-p99-ratio "${f.compareP99Ratio}" is not a number >= 1`,
          "--compare-p99-ratio 2 (canary p99 at most twice stable's)",
        );
      compare.maxP99Ratio = r;
    }
    if (f.compareMinStableRequests !== undefined) {
      if (!Object.keys(compare).length)
        bad(
          "--compare-min-stable-requests without a comparison",
          "add --compare-error-rate-increase 0.05 and/or --compare-p99-ratio 2",
        );
      compare.minStableRequests = integer(
        "compare-min-stable-requests",
        f.compareMinStableRequests,
        0,
        1_000_000,
      );
    }
    if (Object.keys(compare).length) analysis.compareToStable = compare;
    spec.analysis = analysis;
    if (f.webhook?.length) spec.webhooks = f.webhook.map(webhook);
    if (f.paused) spec.paused = true;
    const objName = name ?? canary.name;
    if (!DNS_NAME.test(objName)) bad(`"${objName}" is not a valid name`, "a lower-case name such as smiley2");
    return checked({
      apiVersion: "trellis.dev/v1alpha1",
      kind: "Canary",
      metadata: { name: objName, namespace },
      spec,
    });
  } catch (err) {
    if (err instanceof StartError) return { ok: false, error: err.message };
    throw err;
  }
}

/**
 * The Canary of a YAML (or JSON) file; `namespace` fills metadata.namespace
 * when absent. Other documents (the example files carry the route too) are
 * left alone and named in a note, so nothing is created behind the user's back.
 */
export function canaryFromDocument(text: string, namespace: string | undefined, source: string): Built {
  const docs = parseAllDocuments(text);
  const broken = docs.find((d) => d.errors.length);
  if (broken)
    return {
      ok: false,
      error: `${source} is not YAML: ${broken.errors[0]?.message}\n  fix: one Canary document (see examples/faces/routes/12-smiley-canary.yaml)`,
    };
  const values = docs.map((d) => d.toJS() as unknown).filter((v) => v !== null && v !== undefined);
  const objects = values.filter(
    (v): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v),
  );
  const canaries = objects.filter((o) => o.kind === "Canary");
  if (canaries.length !== 1)
    return {
      ok: false,
      error: `${source} holds ${canaries.length} Canary documents\n  fix: exactly one kind: Canary document per file`,
    };
  const others = objects
    .filter((o) => o.kind !== "Canary")
    .map((o) => `${String(o.kind)}/${String((o.metadata as { name?: unknown } | undefined)?.name)}`);
  const obj = canaries[0]!;
  const meta = { ...((obj.metadata ?? {}) as Record<string, unknown>) };
  if (namespace !== undefined && meta.namespace !== undefined && meta.namespace !== namespace)
    return {
      ok: false,
      error: `${source} says namespace ${String(meta.namespace)} but -n says ${namespace}\n  fix: drop one of them`,
    };
  meta.namespace ??= namespace;
  const built = checked({ ...obj, metadata: meta });
  return built.ok && others.length
    ? {
        ...built,
        note: `${source} also holds ${others.join(", ")}: not applied (kubectl apply -f ${source} does that)`,
      }
    : built;
}
