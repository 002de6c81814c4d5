// The agents' status as the controllers know it, for `trellis check` and
// `trellis status`: /debug/agents of one replica (--controller), or of every
// replica through the API server's pod proxy (no port-forward), merged. Each
// replica knows only the agents connected to it, so one replica alone may miss
// half of the nodes.
import type { CoreV1Api } from "@kubernetes/client-node";
import type { AgentStatusRow } from "../distribute/agent-status.ts";

export interface AgentRowsSource {
  /** Namespace Trellis is installed in. */
  namespace: string;
  /** One controller's admin URL; omitted: every ready replica through the pod proxy. */
  controller?: string;
  kubeconfig?: string;
}

/** A Kubernetes client error as "HTTP <code>: <body>", anything else by its message. */
export function kubeErrorMessage(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && "body" in err) {
    const body = String((err as { body: unknown }).body).slice(0, 200);
    return `HTTP ${String((err as { code: unknown }).code)}: ${body}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** CoreV1 client from --kubeconfig, else as kubectl finds it (KUBECONFIG, ~/.kube/config, in-cluster). */
export async function coreClient(kubeconfig?: string): Promise<CoreV1Api> {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  return kc.makeApiClient(k8s.CoreV1Api);
}

/**
 * One row per node from the /debug/agents of every controller replica. Each replica knows only
 * the agents connected to it (and versions with its own epoch), so a node's row comes from the
 * replica its agent is connected to, else from any replica (disconnected).
 */
export function mergeAgentRows(perReplica: readonly (readonly AgentStatusRow[])[]): AgentStatusRow[] {
  const byNode = new Map<string, AgentStatusRow>();
  for (const rows of perReplica)
    for (const r of rows) {
      const seen = byNode.get(r.node);
      if (!seen || (!seen.connected && r.connected)) byNode.set(r.node, r);
    }
  return [...byNode.values()].sort((a, b) => a.node.localeCompare(b.node));
}

/** Rejects with what went wrong (unreachable controller, no ready replica, API error). */
export async function readAgentRows(o: AgentRowsSource, core?: CoreV1Api): Promise<AgentStatusRow[]> {
  if (o.controller) {
    const res = await fetch(new URL("/debug/agents", o.controller), { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${o.controller}`);
    return (await res.json()) as AgentStatusRow[];
  }
  const api = core ?? (await coreClient(o.kubeconfig));
  const pods = (
    await api.listNamespacedPod({
      namespace: o.namespace,
      labelSelector: "app.kubernetes.io/component=controller",
    })
  ).items.filter(
    (p) =>
      p.status?.phase === "Running" &&
      p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
  );
  if (pods.length === 0) throw new Error(`no ready controller pod in namespace ${o.namespace}`);
  const perReplica = await Promise.all(
    pods.map(async (p) => {
      const port =
        p.spec?.containers.flatMap((c) => c.ports ?? []).find((x) => x.name === "http-admin")
          ?.containerPort ?? 9090;
      const body: unknown = await api.connectGetNamespacedPodProxyWithPath({
        name: `${p.metadata?.name ?? ""}:${port}`,
        namespace: o.namespace,
        path: "debug/agents",
      });
      return (typeof body === "string" ? JSON.parse(body) : body) as AgentStatusRow[];
    }),
  );
  return mergeAgentRows(perReplica);
}
