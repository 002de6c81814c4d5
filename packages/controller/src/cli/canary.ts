// `trellis canary start|status|promote|abort|pause|resume`: creates, reads and
// nudges Canary objects through the Kubernetes API (kubeconfig as kubectl
// finds it). The controller does the rest. The gates set the
// trellis.dev/canary-action annotation, not spec fields: the spec stays what
// the user (or their GitOps tool) declared, and the latest command wins.
import { readFileSync } from "node:fs";
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Command } from "commander";
import { stringify as toYaml } from "yaml";
import {
  CANARY_ACTION_ANNOTATION,
  type CanaryAction,
  type CanaryObject,
  overlayProblem,
  readCanary,
} from "../canary/canary.ts";
import { canaryFromDocument, canaryFromFlags, type StartFlags } from "../canary/canary-start.ts";

const GROUP = { group: "trellis.dev", version: "v1alpha1", plural: "canaries" } as const;

function client(kubeconfig: string | undefined): { api: CustomObjectsApi; namespace: string } {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return { api: kc.makeApiClient(CustomObjectsApi), namespace: ctx?.namespace ?? "default" };
}

interface CommonOptions {
  namespace?: string;
  kubeconfig?: string;
}

/** A 20-character bar: canary share filled. */
export function weightBar(weight: number): string {
  const filled = Math.round((Math.max(0, Math.min(100, weight)) / 100) * 20);
  return `[${"#".repeat(filled)}${".".repeat(20 - filled)}]`;
}

/** The status table, one Canary per block. */
export function renderCanaries(canaries: readonly CanaryObject[], now: number): string {
  if (!canaries.length) return "no canaries\n";
  const lines: string[] = [];
  for (const c of canaries) {
    const s = c.status;
    const spec = c.spec;
    const weight = s.canaryWeight ?? 0;
    const steps = spec?.steps.length ?? 0;
    lines.push(
      `${c.namespace}/${c.name}  ${spec ? `${spec.targetKind} ${spec.targetName}` : "(invalid spec)"}  phase ${s.phase ?? "-"}`,
    );
    if (spec) {
      lines.push(
        `  ${spec.stable.name} ${100 - weight} % ${weightBar(weight)} ${spec.canary.name} ${weight} %   step ${
          s.step === undefined ? "-" : `${s.step + 1}/${steps}`
        }`,
      );
    }
    const a = s.lastAnalysis;
    if (a) {
      const success = a.requests > 0 ? `${((1 - a.errorRate) * 100).toFixed(1)} %` : "n/a";
      const p99 = a.p99Ms === null ? "n/a" : a.p99Ms < 0 ? "> highest bucket" : `${a.p99Ms} ms`;
      lines.push(
        `  last analysis (${a.result}): ${a.requests} requests, success ${success}, ${a.errors} errors, p99 ${p99}`,
      );
    }
    if (a?.stable) {
      const st = a.stable;
      const success = st.requests > 0 ? `${((1 - st.errorRate) * 100).toFixed(1)} %` : "n/a";
      const p99 = st.p99Ms === null ? "n/a" : st.p99Ms < 0 ? "> highest bucket" : `${st.p99Ms} ms`;
      lines.push(`  stable, same window: ${st.requests} requests, success ${success}, p99 ${p99}`);
    }
    if (a?.comparison) lines.push(`  vs stable: ${a.comparison}`);
    for (const h of s.webhooks ?? []) {
      const limit = spec?.webhooks.find((w) => w.name === h.name)?.failureThreshold;
      const count = h.result === "Failed" ? ` ${h.consecutiveFailures}/${limit ?? "?"}` : "";
      lines.push(`  webhook ${h.name} (${h.type}): ${h.result}${count}, ${h.message}`);
    }
    if (spec && s.stepAppliedAt && (s.phase === "Progressing" || s.phase === undefined)) {
      const left = Math.max(0, Math.ceil((Date.parse(s.stepAppliedAt) + spec.intervalMs - now) / 1000));
      const step = s.step ?? 0;
      const then =
        step + 1 < spec.steps.length
          ? `step ${step + 2}/${spec.steps.length} at ${spec.steps[step + 1]} %`
          : "promotion to 100 %";
      lines.push(`  next decision in ${left} s (needs ${spec.minRequests} requests), then ${then}`);
    }
    if (c.action) lines.push(`  ${CANARY_ACTION_ANNOTATION}: ${c.action}`);
    if (s.lastGate)
      lines.push(`  last gate: ${s.lastGate.action} (${s.lastGate.source}) at ${s.lastGate.at}`);
    if (s.message) lines.push(`  ${s.message}`);
    if (c.problem) lines.push(`  spec problem: ${c.problem}`);
  }
  return `${lines.join("\n")}\n`;
}

/**
 * One redraw of `status --watch`. On a terminal the frame replaces the last
 * one in place (home, clear each line's tail, clear below); piped output gets
 * plain blocks, one per refresh, that read well in a log.
 */
export function watchFrame(text: string, at: Date, tty: boolean): string {
  if (!tty) return `--- ${at.toISOString()}\n${text}`;
  const body = `${at.toISOString()}\n${text}`.replace(/\n/g, "\x1b[K\n");
  return `\x1b[H${body}\x1b[J`;
}

async function listCanaries(
  o: CommonOptions & { allNamespaces?: boolean },
  name?: string,
): Promise<CanaryObject[]> {
  const { api, namespace } = client(o.kubeconfig);
  const ns = o.namespace ?? namespace;
  const raw = name
    ? [await api.getNamespacedCustomObject({ ...GROUP, namespace: ns, name })]
    : (
        (o.allNamespaces
          ? await api.listClusterCustomObject(GROUP)
          : await api.listNamespacedCustomObject({ ...GROUP, namespace: ns })) as { items?: unknown[] }
      ).items;
  return (raw ?? [])
    .map((x) => readCanary(x as Record<string, unknown>))
    .filter((c): c is CanaryObject => c !== undefined);
}

async function setAction(name: string, o: CommonOptions, action: CanaryAction, done: string): Promise<void> {
  const { api, namespace } = client(o.kubeconfig);
  const ns = o.namespace ?? namespace;
  await api.patchNamespacedCustomObject(
    {
      ...GROUP,
      namespace: ns,
      name,
      body: { metadata: { annotations: { [CANARY_ACTION_ANNOTATION]: action } } },
    },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  process.stdout.write(`canary ${ns}/${name}: ${done} (${CANARY_ACTION_ANNOTATION}=${action})\n`);
}

/** The API server's own message, when its answer carries one (CEL rule failures do). */
function apiMessage(err: unknown): string | undefined {
  const body = (err as { body?: unknown }).body;
  if (typeof body !== "string") return undefined;
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    return typeof m === "string" ? m : body;
  } catch {
    return body;
  }
}

function fail(err: unknown): void {
  const body = (err as { body?: unknown }).body;
  process.stderr.write(
    `${err instanceof Error ? err.message : String(err)}${body ? `\n${String(body)}` : ""}\n`,
  );
  process.exitCode = 1;
}

interface StartOptions extends CommonOptions, StartFlags {
  file?: string;
  dryRun?: boolean;
}

const START_FLAG_KEYS: readonly (keyof StartFlags)[] = [
  "route",
  "rule",
  "stable",
  "canary",
  "steps",
  "stepWeight",
  "maxWeight",
  "interval",
  "minRequests",
  "maxErrorRate",
  "maxP99Ms",
  "compareErrorRateIncrease",
  "compareP99Ratio",
  "compareMinStableRequests",
  "paused",
];

async function start(name: string | undefined, o: StartOptions): Promise<void> {
  const say = (error: string) => {
    process.stderr.write(`trellis canary start: ${error}\n`);
    process.exitCode = 1;
  };
  const { api, namespace: contextNamespace } = client(o.kubeconfig);
  let built: ReturnType<typeof canaryFromFlags>;
  if (o.file !== undefined) {
    const given = START_FLAG_KEYS.filter((k) => o[k] !== undefined).concat(
      o.webhook?.length ? ["webhook"] : [],
    );
    if (given.length || name)
      return say(
        `-f and ${name ? "a NAME" : `--${given[0]?.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`)}`} given together\n  fix: put everything in the file, or drop -f and use flags`,
      );
    let text: string;
    try {
      text = readFileSync(o.file === "-" ? 0 : o.file, "utf8");
    } catch (err) {
      return say(`cannot read ${o.file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    built = canaryFromDocument(text, o.namespace, o.file);
    // Like kubectl: a document without a namespace goes to the context's.
    if (built.ok && !(built.object.metadata as { namespace?: unknown }).namespace)
      built.object.metadata = { ...(built.object.metadata as object), namespace: contextNamespace };
  } else built = canaryFromFlags(name, o.namespace ?? contextNamespace, o);
  if (!built.ok) return say(built.error);
  if (built.note) process.stderr.write(`note: ${built.note}\n`);
  const obj = built.object;
  if (o.dryRun) {
    process.stdout.write(toYaml(obj));
    return;
  }
  const canary = readCanary(obj)!;
  const spec = canary.spec!;
  const ns = canary.namespace;
  const target = `${spec.targetKind} ${ns}/${spec.targetName}`;
  try {
    const route = (await api.getNamespacedCustomObject({
      group: "gateway.networking.k8s.io",
      version: "v1",
      plural: spec.targetKind === "HTTPRoute" ? "httproutes" : "grpcroutes",
      namespace: ns,
      name: spec.targetName,
    })) as Record<string, unknown>;
    const problem = overlayProblem(route, spec);
    if (problem)
      return say(
        `${target}: ${problem}\n  fix: pick the rule with --rule (index or name) and the backend it sends to today with --stable`,
      );
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 404)
      return say(
        `${target} not found\n  fix: apply the route first (kubectl get ${spec.targetKind.toLowerCase()}s -n ${ns}), or correct --route`,
      );
    // Without read access to routes the controller still reports a bad target in status.
    process.stderr.write(
      `note: cannot read ${target} to check it (${apiMessage(err) ?? String(err)}); creating anyway\n`,
    );
  }
  try {
    await api.createNamespacedCustomObject({ ...GROUP, namespace: ns, body: obj });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 409)
      return say(
        `canary ${ns}/${canary.name} already exists\n  fix: trellis canary status ${canary.name} -n ${ns}; a finished Canary is not restarted: kubectl delete canary ${canary.name} -n ${ns}, then start again`,
      );
    if (code === 404)
      return say(
        "the Canary CRD is not installed\n  fix: kubectl apply -f charts/trellis/crds/trellis.dev_canaries.yaml",
      );
    return say(
      `the API server refused the Canary: ${apiMessage(err) ?? String(err)}\n  fix: see docs/canaries.md`,
    );
  }
  const rule = "name" in spec.rule ? `rule "${spec.rule.name}"` : `rule ${spec.rule.index}`;
  process.stdout.write(
    `canary ${ns}/${canary.name} created: ${target} ${rule}, ${spec.stable.name} → ${spec.canary.name} in steps ${spec.steps.join(", ")} % every ${spec.intervalMs / 1000} s\n` +
      `watch it: trellis canary status --watch ${canary.name} -n ${ns}\n`,
  );
}

const common = (c: Command) =>
  c
    .option("-n, --namespace <ns>", "namespace of the Canary (default: the kubeconfig context's)")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)");

export function registerCanaryCommands(program: Command): void {
  const canary = program
    .command("canary")
    .description("progressive canaries: start, status, promote, abort, pause, resume");

  common(
    canary
      .command("start")
      .description("create a Canary from flags or from a file (-f), checked before it is sent")
      .argument("[name]", "name of the Canary (default: the canary Service's name)")
      .option("-f, --file <path>", "a YAML file with one Canary document (- for stdin); instead of the flags")
      .option("--route <kind/name>", "the route: httproute/NAME or grpcroute/NAME")
      .option("--rule <index|name>", "the route's rule, by 0-based index or by name (default 0)")
      .option("--stable <svc:port>", "the backendRef serving today, e.g. smiley:80")
      .option("--canary <svc:port>", "the new backend, e.g. smiley2:80")
      .option("--steps <list>", "canary percent per step, increasing, e.g. 10,50,80")
      .option("--step-weight <n>", "instead of --steps: n, 2n, … up to --max-weight")
      .option("--max-weight <n>", "highest step with --step-weight (default 50)")
      .option("--interval <duration>", "analysis time per step once every agent applied it (default 1m)")
      .option("--min-requests <n>", "canary requests a step needs before it is judged (default 20)")
      .option("--max-error-rate <rate>", "highest canary error rate, 0.05 or 5% (default 1%)")
      .option("--max-p99-ms <ms>", "highest canary p99 latency in ms")
      .option(
        "--compare-error-rate-increase <rate>",
        "fail when the canary's error rate exceeds stable's by more",
      )
      .option("--compare-p99-ratio <ratio>", "fail when canary p99 / stable p99 exceeds this")
      .option(
        "--compare-min-stable-requests <n>",
        "stable requests needed to compare (default: --min-requests)",
      )
      .option(
        "--webhook <spec>",
        'repeatable: "name=N,type=PreStep|Analysis|Rollback,url=http://…[,timeout=5][,failures=3]"',
        (v: string, acc: string[] = []) => [...acc, v],
      )
      .option("--paused", "create it paused (resume with trellis canary resume)")
      .option("--dry-run", "print the Canary as YAML instead of creating it"),
  ).action(async (name: string | undefined, o: StartOptions) => {
    try {
      await start(name, o);
    } catch (err) {
      fail(err);
    }
  });

  common(
    canary
      .command("status")
      .description("phase, weights, last analysis and next step of Canaries")
      .argument("[name]", "one Canary; omit for every Canary in the namespace")
      .option("-A, --all-namespaces", "every namespace")
      .option("-w, --watch", "redraw every 2 s until interrupted"),
  ).action(
    async (name: string | undefined, o: CommonOptions & { allNamespaces?: boolean; watch?: boolean }) => {
      try {
        if (!o.watch) {
          process.stdout.write(renderCanaries(await listCanaries(o, name), Date.now()));
          return;
        }
        const tty = process.stdout.isTTY === true;
        for (;;) {
          const text = renderCanaries(await listCanaries(o, name), Date.now());
          process.stdout.write(watchFrame(text, new Date(), tty));
          await new Promise((r) => setTimeout(r, 2000));
        }
      } catch (err) {
        fail(err);
      }
    },
  );

  const gate = (verb: CanaryAction, description: string, done: string) =>
    common(canary.command(verb).description(description).argument("<name>", "the Canary")).action(
      async (name: string, o: CommonOptions) => {
        try {
          await setAction(name, o, verb, done);
        } catch (err) {
          fail(err);
        }
      },
    );
  gate("promote", "skip the remaining steps: send 100 % to the canary backend", "promotion requested");
  gate("abort", "roll back to the stable backend now (phase Failed)", "abort requested");
  gate("pause", "hold the current weights", "pause requested");
  gate("resume", "continue after pause (the step's interval starts over)", "resume requested");
}
