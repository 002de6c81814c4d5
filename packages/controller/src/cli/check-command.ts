// `trellis check`: reads the facts evaluateCheck (check.ts) judges from the
// Kubernetes API (kubeconfig as kubectl finds it) and the controller's admin
// endpoint, prints one line per finding with its fix, and exits 1 on any problem.
import type { Command } from "commander";
import { Option } from "commander";
import type { AgentStatusRow } from "../distribute/agent-status.ts";
import { kubeErrorMessage as message, readAgentRows } from "./agent-rows.ts";
import {
  type AgentPodFact,
  CAPTURE_LABEL,
  CAPTURE_STATUS_ANNOTATION,
  type CapturedPodFact,
  type CheckInput,
  type CrdFact,
  evaluateCheck,
  formatCheck,
  ROUTE_CRDS,
} from "./check.ts";

interface CheckOptions {
  namespace: string;
  controller?: string;
  kubeconfig?: string;
  output: string;
}

function isNotFound(err: unknown): boolean {
  return !!err && typeof err === "object" && "code" in err && (err as { code: unknown }).code === 404;
}

export async function gatherCheckInput(o: CheckOptions): Promise<CheckInput> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
  else kc.loadFromDefault();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const ns = o.namespace;

  const crds: CrdFact[] = await Promise.all(
    ROUTE_CRDS.map(async (name): Promise<CrdFact> => {
      try {
        const crd = await ext.readCustomResourceDefinition({ name });
        const a = crd.metadata?.annotations ?? {};
        const bundleVersion = a["gateway.networking.k8s.io/bundle-version"];
        const channel = a["gateway.networking.k8s.io/channel"];
        return {
          name,
          present: true,
          ...(bundleVersion ? { bundleVersion } : {}),
          ...(channel ? { channel } : {}),
        };
      } catch (err) {
        if (isNotFound(err)) return { name, present: false };
        throw err;
      }
    }),
  );

  let deployed = false;
  let replicas = 0;
  let readyReplicas = 0;
  try {
    const d = await apps.readNamespacedDeployment({ name: "trellis-controller", namespace: ns });
    deployed = true;
    replicas = d.spec?.replicas ?? 1;
    readyReplicas = d.status?.readyReplicas ?? 0;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }

  let agents: AgentStatusRow[] | { error: string };
  try {
    agents = await readAgentRows(o, core);
  } catch (err) {
    agents = { error: message(err) };
  }

  const nodes = (await core.listNode()).items.map((n) => n.metadata?.name ?? "").filter(Boolean);

  const agentPods: AgentPodFact[] = (
    await core.listNamespacedPod({ namespace: ns, labelSelector: "app.kubernetes.io/component=agent" })
  ).items
    .filter((p) => !p.metadata?.deletionTimestamp)
    .map((p) => {
      const init = p.status?.initContainerStatuses?.find((s) => s.name === "install-cni");
      const exit = init?.state?.terminated?.exitCode ?? init?.lastState?.terminated?.exitCode;
      return {
        name: p.metadata?.name ?? "",
        node: p.spec?.nodeName ?? "",
        ready: p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
        ...(exit === undefined ? {} : { installCniExitCode: exit }),
      };
    });

  const capturedNamespaces = (await core.listNamespace({ labelSelector: `${CAPTURE_LABEL}=enabled` })).items
    .map((n) => n.metadata?.name ?? "")
    .filter(Boolean);
  const capturedPods: CapturedPodFact[] = [];
  for (const cns of capturedNamespaces) {
    const pods = await core.listNamespacedPod({ namespace: cns });
    for (const p of pods.items) {
      if (p.spec?.hostNetwork) continue;
      if (p.metadata?.labels?.[CAPTURE_LABEL] === "disabled") continue;
      if (p.metadata?.deletionTimestamp || p.status?.phase !== "Running") continue;
      const status = p.metadata?.annotations?.[CAPTURE_STATUS_ANNOTATION];
      capturedPods.push({
        namespace: cns,
        name: p.metadata?.name ?? "",
        node: p.spec?.nodeName ?? "",
        ...(status ? { captureStatus: status } : {}),
      });
    }
  }

  return {
    namespace: ns,
    crds,
    controller: { deployed, replicas, readyReplicas, agents },
    nodes,
    agentPods,
    capturedNamespaces,
    capturedPods,
  };
}

export function registerCheckCommand(program: Command): void {
  program
    .command("check")
    .description(
      "preflight and health: Gateway API CRDs, controller, an agent in sync on every node, CNI shim, capture status; exits 1 with a fix per problem",
    )
    .option("-n, --namespace <ns>", "namespace Trellis is installed in", "trellis-system")
    .addOption(
      new Option(
        "--controller <url>",
        "one controller's admin URL (default: every replica through the API server's pod proxy)",
      ).env("TRELLIS_CONTROLLER"),
    )
    .addOption(new Option("--kubeconfig <path>", "kubeconfig file (default: as kubectl finds it)"))
    .addOption(new Option("-o, --output <format>", "text or json").choices(["text", "json"]).default("text"))
    .action(async (o: CheckOptions) => {
      let input: CheckInput;
      try {
        input = await gatherCheckInput(o);
      } catch (err) {
        process.stderr.write(
          `cannot read the cluster (${message(err)}); check KUBECONFIG / --kubeconfig and your access\n`,
        );
        process.exitCode = 2;
        return;
      }
      const result = evaluateCheck(input);
      process.stdout.write(
        o.output === "json" ? `${JSON.stringify(result, null, 2)}\n` : formatCheck(result),
      );
      if (!result.ok) process.exitCode = 1;
    });
}
