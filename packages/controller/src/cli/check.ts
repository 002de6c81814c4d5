// `trellis check`: preflight and health of an installation. Gathers facts from
// the Kubernetes API and the controller's admin endpoint (gatherCheckInput),
// then judges them with a pure function (evaluateCheck) that the unit tests
// pin down. Every problem comes with the fix to try.
//
// What each check proves:
// - Gateway API CRDs: the route kinds the controller watches are served, and
//   which bundle version/channel installed them.
// - controller: its Deployment has ready replicas, and its admin endpoint
//   answered (every replica through the API server's pod proxy, or --controller).
// - agents: the controllers' own registries (/debug/agents of every replica: each
//   knows only the agents connected to it) have a connected agent for every Node
//   that has applied the table version its controller wants.
// - CNI shim: the node's current agent pod ran the `install-cni` init container
//   to exit code 0, i.e. the installer chained the shim into that node's
//   conflist when the agent last started. It does not re-read the conflist
//   (a primary CNI that rewrites it later drops the entry until the agent pod
//   restarts; see docs/capture.md, known limits).
// - capture: every running pod of a captured namespace (not opted out, not
//   host-network) carries trellis.dev/capture-status=enabled.
import type { AgentStatusRow } from "../distribute/agent-status.ts";

export const ROUTE_CRDS = [
  "httproutes.gateway.networking.k8s.io",
  "grpcroutes.gateway.networking.k8s.io",
  "referencegrants.gateway.networking.k8s.io",
] as const;

export const CAPTURE_LABEL = "trellis.dev/capture";
export const CAPTURE_STATUS_ANNOTATION = "trellis.dev/capture-status";

export interface CrdFact {
  name: string;
  present: boolean;
  bundleVersion?: string;
  channel?: string;
}

export interface AgentPodFact {
  name: string;
  node: string;
  ready: boolean;
  /** Exit code of the install-cni init container, when it has terminated. */
  installCniExitCode?: number;
}

export interface CapturedPodFact {
  namespace: string;
  name: string;
  node: string;
  /** trellis.dev/capture-status, absent when the pod carries none. */
  captureStatus?: string;
}

export interface CheckInput {
  namespace: string;
  crds: CrdFact[];
  controller: {
    /** Deployment found. */
    deployed: boolean;
    replicas: number;
    readyReplicas: number;
    /** /debug/agents rows, or why they could not be read. */
    agents: AgentStatusRow[] | { error: string };
  };
  nodes: string[];
  agentPods: AgentPodFact[];
  capturedNamespaces: string[];
  capturedPods: CapturedPodFact[];
}

export interface Finding {
  check: "gateway-api" | "controller" | "agent" | "cni" | "capture";
  ok: boolean;
  message: string;
  /** What to do about it (problems only). */
  fix?: string;
}

export interface CheckResult {
  ok: boolean;
  findings: Finding[];
}

export function evaluateCheck(input: CheckInput): CheckResult {
  const findings: Finding[] = [];
  const ns = input.namespace;

  // Gateway API
  const missing = input.crds.filter((c) => !c.present).map((c) => c.name);
  if (missing.length > 0) {
    findings.push({
      check: "gateway-api",
      ok: false,
      message: `Gateway API CRDs missing: ${missing.join(", ")}`,
      fix: "install the Gateway API CRDs (experimental channel, v1.1 or later), e.g. `kubectl apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/<version>/experimental-install.yaml`, or install the chart with --set gatewayAPI.installCRDs=true",
    });
  } else {
    const versions = [...new Set(input.crds.map((c) => c.bundleVersion ?? "unknown"))];
    const channels = [...new Set(input.crds.map((c) => c.channel ?? "unknown"))];
    findings.push({
      check: "gateway-api",
      ok: versions.length === 1,
      message: `Gateway API CRDs present, bundle version ${versions.join(" / ")}, channel ${channels.join(" / ")}`,
      ...(versions.length === 1
        ? {}
        : { fix: "the route CRDs come from different Gateway API bundles: re-apply one bundle's CRDs" }),
    });
  }

  // Controller
  const c = input.controller;
  if (!c.deployed) {
    findings.push({
      check: "controller",
      ok: false,
      message: `no trellis-controller Deployment in namespace ${ns}`,
      fix: `install Trellis (helm install trellis charts/trellis -n ${ns} --create-namespace) or pass --namespace`,
    });
  } else if (c.readyReplicas < 1) {
    findings.push({
      check: "controller",
      ok: false,
      message: `controller not ready (0/${c.replicas} replicas ready)`,
      fix: `kubectl -n ${ns} describe deployment trellis-controller; a controller stays unready while a watched CRD is missing (see above) or it cannot list a kind (RBAC)`,
    });
  } else {
    findings.push({
      check: "controller",
      ok: c.readyReplicas === c.replicas,
      message: `controller ready (${c.readyReplicas}/${c.replicas} replicas)`,
      ...(c.readyReplicas === c.replicas
        ? {}
        : { fix: `kubectl -n ${ns} get pods -l app.kubernetes.io/component=controller -o wide` }),
    });
  }
  const rows = "error" in c.agents ? undefined : c.agents;
  if ("error" in c.agents) {
    findings.push({
      check: "controller",
      ok: false,
      message: `cannot read the controller's agent registry: ${c.agents.error}`,
      fix: "check that the controller is ready and its admin port is reachable (--controller, or the API server's pod proxy: RBAC get pods/proxy in the Trellis namespace)",
    });
  }

  // Agents, shim, per node
  const podsByNode = new Map<string, AgentPodFact[]>();
  for (const p of input.agentPods) podsByNode.set(p.node, [...(podsByNode.get(p.node) ?? []), p]);
  const rowsByNode = new Map((rows ?? []).map((r) => [r.node, r]));
  for (const node of [...input.nodes].sort()) {
    const pods = podsByNode.get(node) ?? [];
    const pod = pods.find((p) => p.ready) ?? pods[0];
    const row = rowsByNode.get(node);
    if (!pod) {
      findings.push({
        check: "agent",
        ok: false,
        message: `node ${node}: no agent pod`,
        fix: `kubectl -n ${ns} describe daemonset trellis-agent (node selector, affinity or taints keep it off ${node}); pods of captured namespaces on ${node} cannot start without it`,
      });
    } else if (!pod.ready) {
      findings.push({
        check: "agent",
        ok: false,
        message: `node ${node}: agent pod ${pod.name} is not ready`,
        fix: `kubectl -n ${ns} describe pod ${pod.name}, and its log on the node`,
      });
    }
    if (rows) {
      if (!row?.connected) {
        findings.push({
          check: "agent",
          ok: false,
          message: `node ${node}: no agent connected to the controller`,
          fix: pod
            ? `the agent ${pod.name} does not reach the controller: check its log (TLS name, token audience "trellis", ServiceAccount ${ns}/trellis-agent)`
            : `start an agent on ${node} (see above)`,
        });
      } else if (row.desired !== row.applied) {
        findings.push({
          check: "agent",
          ok: false,
          message: `node ${node}: agent ${row.pod} applied ${row.applied}, controller wants ${row.desired}${row.lastNack ? ` (last NACK: ${row.lastNack.reason})` : ""}`,
          fix: row.lastNack
            ? "the agent refused the table: see `trellis status` and the TableRejected Event on the Node (e.g. widen the listener port range)"
            : "wait a few seconds and check again; if it stays behind, restart the agent pod",
        });
      } else if (pod?.ready !== false) {
        findings.push({
          check: "agent",
          ok: true,
          message: `node ${node}: agent ${row.pod} connected, table ${row.applied} applied`,
        });
      }
    }
    if (pod) {
      const exit = pod.installCniExitCode;
      findings.push(
        exit === 0
          ? {
              check: "cni",
              ok: true,
              message: `node ${node}: CNI shim installed by ${pod.name} (install-cni exited 0)`,
            }
          : {
              check: "cni",
              ok: false,
              message: `node ${node}: CNI shim not installed (install-cni in ${pod.name} ${exit === undefined ? "has not finished" : `exited ${exit}`})`,
              fix: `kubectl -n ${ns} describe pod ${pod.name}: the init container needs the host's CNI dirs (values cni.binDir, cni.netDir) and a conflist from the primary CNI`,
            },
      );
    }
  }

  // Capture
  if (input.capturedNamespaces.length === 0) {
    findings.push({
      check: "capture",
      ok: true,
      message: `no captured namespaces (label one: kubectl label namespace <ns> ${CAPTURE_LABEL}=enabled)`,
    });
  }
  for (const cns of [...input.capturedNamespaces].sort()) {
    const pods = input.capturedPods.filter((p) => p.namespace === cns);
    const bad = pods.filter((p) => p.captureStatus !== "enabled");
    if (bad.length === 0) {
      findings.push({
        check: "capture",
        ok: true,
        message: `namespace ${cns}: ${pods.length} pods captured`,
      });
      continue;
    }
    for (const p of bad) {
      const status = p.captureStatus ?? "no status";
      findings.push({
        check: "capture",
        ok: false,
        message: `pod ${cns}/${p.name} on ${p.node || "?"}: capture ${status}`,
        fix:
          p.captureStatus === "failed"
            ? `the agent on ${p.node} rejected its table: trellis status, kubectl get events -n default --field-selector reason=TableRejected`
            : `the agent on ${p.node || "its node"} has not programmed the pod yet: check that it is connected (above); the pod is not captured until then`,
      });
    }
  }

  return { ok: findings.every((f) => f.ok), findings };
}

export function formatCheck(result: CheckResult): string {
  const lines: string[] = [];
  for (const f of result.findings) {
    lines.push(`${f.ok ? "✔" : "✘"} [${f.check}] ${f.message}`);
    if (!f.ok && f.fix) lines.push(`    fix: ${f.fix}`);
  }
  const problems = result.findings.filter((f) => !f.ok).length;
  lines.push(problems === 0 ? "all checks passed" : `${problems} problem${problems === 1 ? "" : "s"} found`);
  return `${lines.join("\n")}\n`;
}
