// `trellis canary status|promote|abort|pause|resume`: reads and nudges Canary
// objects through the Kubernetes API (kubeconfig as kubectl finds it). The
// controller does the rest; these commands only set spec fields.
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Command } from "commander";
import { type CanaryObject, readCanary } from "../canary/canary.ts";

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
    if (spec && s.stepAppliedAt && (s.phase === "Progressing" || s.phase === undefined)) {
      const left = Math.max(0, Math.ceil((Date.parse(s.stepAppliedAt) + spec.intervalMs - now) / 1000));
      lines.push(`  next decision in ${left} s (needs ${spec.minRequests} requests)`);
    }
    if (s.message) lines.push(`  ${s.message}`);
    if (c.problem) lines.push(`  spec problem: ${c.problem}`);
  }
  return `${lines.join("\n")}\n`;
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

async function setSpec(
  name: string,
  o: CommonOptions,
  spec: Record<string, unknown>,
  done: string,
): Promise<void> {
  const { api, namespace } = client(o.kubeconfig);
  const ns = o.namespace ?? namespace;
  await api.patchNamespacedCustomObject(
    { ...GROUP, namespace: ns, name, body: { spec } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  process.stdout.write(`canary ${ns}/${name}: ${done}\n`);
}

function fail(err: unknown): void {
  const body = (err as { body?: unknown }).body;
  process.stderr.write(
    `${err instanceof Error ? err.message : String(err)}${body ? `\n${String(body)}` : ""}\n`,
  );
  process.exitCode = 1;
}

const common = (c: Command) =>
  c
    .option("-n, --namespace <ns>", "namespace of the Canary (default: the kubeconfig context's)")
    .option("--kubeconfig <path>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)");

export function registerCanaryCommands(program: Command): void {
  const canary = program
    .command("canary")
    .description(
      "progressive canaries: status, promote, abort, pause, resume (create one with kubectl apply)",
    );

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
        for (;;) {
          const text = renderCanaries(await listCanaries(o, name), Date.now());
          process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}\n${text}`);
          await new Promise((r) => setTimeout(r, 2000));
        }
      } catch (err) {
        fail(err);
      }
    },
  );

  const gate = (verb: string, description: string, spec: Record<string, unknown>, done: string) =>
    common(canary.command(verb).description(description).argument("<name>", "the Canary")).action(
      async (name: string, o: CommonOptions) => {
        try {
          await setSpec(name, o, spec, done);
        } catch (err) {
          fail(err);
        }
      },
    );
  gate(
    "promote",
    "skip the remaining steps: send 100 % to the canary backend",
    { promote: true },
    "promotion requested",
  );
  gate("abort", "roll back to the stable backend now (phase Failed)", { abort: true }, "abort requested");
  gate("pause", "hold the current weights", { paused: true }, "paused");
  gate("resume", "continue after pause (the step's interval starts over)", { paused: false }, "resumed");
}
