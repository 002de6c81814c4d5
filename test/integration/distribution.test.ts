// Table distribution on the cluster-in-a-box: trellis-controller in the root
// netns serves the agent channel; one trellis-agent per simulated node runs
// as a hostNetwork DaemonSet pod in the node's netns, authenticated by its
// projected, pod-bound ServiceAccount token (audience trellis).
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, openSync, rmSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl, paths } from "../cluster/box.ts";
import { nodeLayout, UNDERLAY_HOST_IP } from "../cluster/layout.ts";
import { agentStreamStatus } from "../support/agent-stream-status.ts";
import { echoWorkload } from "../support/echo-workload.ts";
import { eventually } from "../support/eventually.ts";
import { freePort } from "../support/free-port.ts";

const ROOT = resolve(import.meta.dirname, "..", "..");
const MAIN = join(ROOT, "packages/controller/src/main.ts");
const CLI = join(ROOT, "packages/controller/src/cli/trellis.ts");
const ns = `it-dist-${randomBytes(3).toString("hex")}`;
const logDir = mkdtempSync(join(os.tmpdir(), `trellis-${ns}-`));
const stateDir = join(logDir, "agent-state");
const SERVER_NAME = `trellis-controller.${ns}.svc`;
const NODES = [nodeLayout(1), nodeLayout(2)];
// The listener port range this test's controller gives its agents: away from
// the default range (an installed Trellis's agents share the node netns), and
// small enough that one Service can need more listeners than it holds.
const LISTENER_PORTS = { min: 16100, max: 16163 };

interface AgentRow {
  node: string;
  desired: string;
  applied: string;
  connected: boolean;
  pod: string;
  lastNack?: { version: string; reason: string };
}

let controller: { proc: ChildProcess; admin: string } | undefined;
let agentPort = 0;
let adminPort = 0;

async function startController(identity: string): Promise<void> {
  const log = openSync(join(logDir, `${identity}.log`), "a");
  const proc = spawn(
    process.execPath,
    [
      MAIN,
      "--kubeconfig",
      paths().adminKubeconfig,
      "--admin-address",
      `127.0.0.1:${adminPort}`,
      "--agent-address",
      `0.0.0.0:${agentPort}`,
      "--server-names",
      SERVER_NAME,
      "--lease-namespace",
      ns,
      "--agent-service-accounts",
      `${ns}/trellis-agent`,
      "--identity",
      identity,
      "--lease-duration",
      "3",
      "--listener-ports",
      `${LISTENER_PORTS.min}-${LISTENER_PORTS.max}`,
    ],
    { stdio: ["ignore", log, log] },
  );
  controller = { proc, admin: `http://127.0.0.1:${adminPort}` };
  await eventually("controller ready", async () => {
    const res = await fetch(`${controller!.admin}/readyz`);
    if (res.status !== 200) throw new Error(`readyz ${res.status}`);
  });
}

async function stopController(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (!controller) return;
  const { proc } = controller;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill(signal);
  await exited;
  controller = undefined;
}

async function agents(): Promise<AgentRow[]> {
  const res = await fetch(`${controller!.admin}/debug/agents`);
  return (await res.json()) as AgentRow[];
}

async function allInSync(): Promise<AgentRow[]> {
  const rows = (await agents()).filter((r) => NODES.some((n) => n.name === r.node));
  if (rows.length !== NODES.length || !rows.every((r) => r.connected && r.applied === r.desired)) {
    throw new Error(JSON.stringify(rows));
  }
  return rows;
}

/** Listener port the node's agent uses for a service cluster IP and port (its /debug/portmap). */
async function listenerPort(node: (typeof NODES)[number], clusterIP: string, port: number): Promise<number> {
  const res = await fetch(`http://${node.underlayIP}:15091/debug/portmap`);
  const { portMap: map } = (await res.json()) as {
    portMap: Array<{ serviceIp: string; port: number; listenerPort: number }>;
  };
  const hit = map.find((e) => e.serviceIp === clusterIP && e.port === port);
  if (!hit) throw new Error(`no listener for ${clusterIP}:${port} on ${node.name}: ${JSON.stringify(map)}`);
  return hit.listenerPort;
}

async function servedBy(node: (typeof NODES)[number], lport: number, n: number): Promise<string[]> {
  const pods: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`http://${node.underlayIP}:${lport}/`, { signal: AbortSignal.timeout(3000) });
    await res.text();
    pods.push(res.status === 200 ? (res.headers.get("x-echo-pod") ?? "?") : `status ${res.status}`);
  }
  return pods;
}

const echo = (name: string) => echoWorkload(ns, name);

/** trellis_controller_agent_nacks_total per node, from the controller's /metrics. */
async function nackCounts(): Promise<Map<string, number>> {
  const text = await (await fetch(`${controller!.admin}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^trellis_controller_agent_nacks_total\{node="([^"]+)"\} (\d+)$/gm))
    counts.set(m[1]!, Number(m[2]));
  return counts;
}

/** `trellis status` against this test's controller. */
function trellisStatus(): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, "status", "--controller", controller!.admin], {
    encoding: "utf8",
    timeout: 20_000,
  });
  return { code: r.status, out: r.stdout + r.stderr };
}

/** What the agents say when the wide Service needs more listeners than their range holds. */
const nackReason = () =>
  new RegExp(`no free listener port in ${LISTENER_PORTS.min}\\.\\.${LISTENER_PORTS.max} for ${ns}/wide:`);

interface NodeEvent {
  metadata: { name: string };
  type: string;
  involvedObject: { kind: string; name: string };
  message: string;
}

/** This run's TableRejected Events (Node events live in the default namespace). */
function tableRejectedEvents(): NodeEvent[] {
  const list = JSON.parse(
    kubectl(["get", "events", "-n", "default", "--field-selector", "reason=TableRejected", "-o", "json"]),
  ) as { items: NodeEvent[] };
  return list.items.filter((e) => nackReason().test(e.message));
}

/** A Service with more ports than the agents' listener range: every meshed service port needs a listener of its own. */
const wideService = () => `
apiVersion: v1
kind: Service
metadata: { name: wide, namespace: ${ns} }
spec:
  ports:
${Array.from({ length: LISTENER_PORTS.max - LISTENER_PORTS.min + 1 }, (_, i) => `  - { name: p${i + 1}, port: ${10001 + i}, targetPort: 8080 }`).join("\n")}
`;

const agentDaemonSet = () => `
apiVersion: v1
kind: ServiceAccount
metadata: { name: trellis-agent, namespace: ${ns} }
---
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: trellis-agent, namespace: ${ns} }
spec:
  selector: { matchLabels: { app: trellis-agent } }
  template:
    metadata: { labels: { app: trellis-agent } }
    spec:
      hostNetwork: true
      serviceAccountName: trellis-agent
      terminationGracePeriodSeconds: 2
      containers:
      - name: agent
        image: trellis.local/agent
        args: ["--controller", "${UNDERLAY_HOST_IP}:${agentPort}", "--server-name", "${SERVER_NAME}",
               "--state-dir", "${stateDir}", "--admin-port", "15091", "--log-level", "info",
               "--stats-interval-ms", "1000"]
        env:
        - { name: NODE_NAME, valueFrom: { fieldRef: { fieldPath: spec.nodeName } } }
        readinessProbe: { httpGet: { path: /healthz, port: 15091 }, periodSeconds: 1 }
        volumeMounts:
        - { name: token, mountPath: /var/run/secrets/trellis, readOnly: true }
        - { name: ca, mountPath: /var/run/trellis/ca, readOnly: true }
      volumes:
      - name: token
        projected:
          sources:
          - serviceAccountToken: { audience: trellis, expirationSeconds: 3600, path: token }
      - name: ca
        configMap: { name: trellis-ca-bundle }
`;

const rawStatus = (token: string | undefined, node: string, caPem: string) =>
  agentStreamStatus({ address: `127.0.0.1:${agentPort}`, caPem, serverName: SERVER_NAME, token, node });

/** Name of the agent pod on a node (the DaemonSet's pod there). */
const agentPodOn = (node: string) =>
  kubectl([
    "get",
    "pods",
    "-n",
    ns,
    "-l",
    "app=trellis-agent",
    "--field-selector",
    `spec.nodeName=${node}`,
    "-o",
    "jsonpath={.items[0].metadata.name}",
  ]);

describe("table distribution to node agents", () => {
  beforeAll(async () => {
    agentPort = await freePort();
    adminPort = await freePort();
    kubectl(["create", "namespace", ns]);
    kubectl(["label", "namespace", ns, "trellis.dev/capture=enabled"]);
    kubectl(["apply", "-f", "-"], { input: `${echo("smiley")}---${echo("smiley2")}` });
    await startController("dist-1");
    await eventually("CA bundle published", () =>
      kubectl(["get", "configmap", "-n", ns, "trellis-ca-bundle", "-o", "name"]),
    );
    kubectl(["apply", "-f", "-"], { input: agentDaemonSet() });
    kubectl(["rollout", "status", "-n", ns, "deployment/smiley", "deployment/smiley2", "--timeout=60s"]);
  }, 180_000);

  afterAll(async () => {
    await stopController("SIGKILL");
    try {
      const events = tableRejectedEvents().map((e) => e.metadata.name);
      if (events.length) kubectl(["delete", "events", "-n", "default", ...events, "--ignore-not-found"]);
    } catch {
      // events expire on their own (one hour)
    }
    try {
      kubectl(["delete", "namespace", ns, "--wait=true", "--timeout=60s"]);
    } catch {
      // reported by the box's own teardown if anything is left
    }
    rmSync(logDir, { recursive: true, force: true });
  });

  it("each agent connects with its pod-bound token and ACKs its node's table", async () => {
    const rows = await eventually("both agents in sync", allInSync, { timeoutMs: 60_000 });
    for (const r of rows) expect(r.pod).toMatch(new RegExp(`^${ns}/trellis-agent-`));
  });

  it("a route change reaches both agents, both ACK it, traffic through the agents follows it, and their per-backend counts reach the controller", async () => {
    const clusterIP = kubectl(["get", "service", "-n", ns, "smiley", "-o", "jsonpath={.spec.clusterIP}"]);
    // Before the route, the agent serves the Service's own endpoints (once the
    // table carrying the now-ready endpoints has reached it).
    for (const n of NODES) {
      await eventually(`${n.name} agent serves smiley's own endpoints`, async () => {
        const others = (await servedBy(n, await listenerPort(n, clusterIP, 80), 10)).filter(
          (p) => !p.startsWith("smiley-"),
        );
        if (others.length) throw new Error(`also served by: ${others.join(", ")}`);
      });
    }
    // Earlier changes may still be settling: start from a moment both agents are in sync.
    const before = await eventually("both agents in sync", allInSync, { timeoutMs: 10_000 });
    kubectl(["apply", "-f", "-"], {
      input: `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: smiley-to-2, namespace: ${ns} }
spec:
  parentRefs: [{ group: "", kind: Service, name: smiley, port: 80 }]
  rules: [{ backendRefs: [{ name: smiley2, port: 80 }] }]
`,
    });
    // Other changes (endpoints, pods) also make versions: wait for the version
    // that carries the route, then for both agents to ACK exactly it.
    await eventually("the route is in every node's table", async () => {
      for (const n of NODES) {
        const table = await (await fetch(`${controller!.admin}/debug/tables/${n.name}`)).text();
        if (!table.includes("smiley-to-2")) throw new Error(`${n.name}: route not compiled yet`);
      }
    });
    const after = await eventually("both agents ACK the version with the route", allInSync, {
      timeoutMs: 10_000,
    });
    for (const [i, r] of after.entries()) expect(r.desired).not.toBe(before[i]?.desired);
    expect(after.map((r) => r.applied)).toEqual(after.map((r) => r.desired));
    for (const n of NODES) {
      const lport = await listenerPort(n, clusterIP, 80);
      expect((await servedBy(n, lport, 10)).filter((p) => !p.startsWith("smiley2-"))).toEqual([]);
    }
    // The agents report what they sent to each backend; the controller sums it
    // (the 20 requests above, and any earlier ones within its one-minute window).
    const smiley2 = `${ns}/smiley2:80`;
    await eventually("the agents' counts for smiley2 reach the controller", async () => {
      const report = (await (await fetch(`${controller!.admin}/debug/backends`)).json()) as {
        backends: Array<{ backendId: string; requests: number; failures: number }>;
      };
      const row = report.backends.find((b) => b.backendId === smiley2);
      if (!row || row.requests < NODES.length * 10) throw new Error(JSON.stringify(report.backends));
      expect(row.failures).toBe(0);
    });
    const cli = spawnSync(process.execPath, [CLI, "backends", "--controller", controller!.admin], {
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(cli.status).toBe(0);
    expect(cli.stdout).toMatch(new RegExp(`^${smiley2}\\s+\\d+\\s+0\\s+0\\.0%`, "m"));
  });

  it("refuses another node's token, a token of the wrong audience, and no token", async () => {
    const caPem = kubectl([
      "get",
      "configmap",
      "-n",
      ns,
      "trellis-ca-bundle",
      "-o",
      "jsonpath={.data.ca\\.crt}",
    ]);
    const agentPod = agentPodOn("n1");
    const token = (audience: string) =>
      kubectl([
        "create",
        "token",
        "-n",
        ns,
        "trellis-agent",
        "--audience",
        audience,
        "--bound-object-kind",
        "Pod",
        "--bound-object-name",
        agentPod,
      ]).trim();
    const caseOtherNode = await rawStatus(token("trellis"), "n2", caPem);
    expect(caseOtherNode.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(caseOtherNode.details).toMatch(/node n1, not n2/);
    expect((await rawStatus(token("other"), "n1", caPem)).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await rawStatus(undefined, "n1", caPem)).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("agents keep routing while the controller is down, a restarted agent serves its persisted table, and both resync", async () => {
    // Earlier changes may still be settling: start from a moment both agents are in sync.
    const before = await eventually("both agents in sync", allInSync, { timeoutMs: 10_000 });
    const clusterIP = kubectl(["get", "service", "-n", ns, "smiley", "-o", "jsonpath={.spec.clusterIP}"]);
    await stopController("SIGKILL");
    for (const n of NODES) {
      const lport = await listenerPort(n, clusterIP, 80);
      const pods = await servedBy(n, lport, 25);
      expect(pods.filter((p) => !p.startsWith("smiley2-"))).toEqual([]);
    }
    // Restart n1's agent while the controller is still down: it must come back
    // serving the last table it applied (persisted in its state dir).
    const old = agentPodOn("n1");
    kubectl(["delete", "pod", "-n", ns, old, "--wait=true"]);
    await eventually(
      "a new n1 agent pod is ready",
      () => {
        const ready = kubectl([
          "get",
          "pods",
          "-n",
          ns,
          "-l",
          "app=trellis-agent",
          "--field-selector",
          "spec.nodeName=n1",
          "-o",
          'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
        ]);
        if (!ready.split("\n").some((l) => !l.startsWith(old) && l.endsWith(" True"))) throw new Error(ready);
      },
      { timeoutMs: 60_000 },
    );
    const n1 = NODES[0]!;
    const restarted = await eventually("listener of the restarted agent", () =>
      listenerPort(n1, clusterIP, 80),
    );
    expect((await servedBy(n1, restarted, 10)).filter((p) => !p.startsWith("smiley2-"))).toEqual([]);
    await startController("dist-2");
    const after = await eventually("agents resync with the restarted controller", allInSync, {
      timeoutMs: 60_000,
    });
    // A restarted controller has a new epoch: its versions can never be mistaken for the old ones.
    for (const [i, r] of after.entries())
      expect(r.applied.split(".")[0]).not.toBe(before[i]!.applied.split(".")[0]);
  });

  it("a table an agent cannot apply is NACKed: the last good table keeps serving; trellis status, an Event and a metric show it; without the cause the next version is ACKed", async () => {
    await eventually("both agents in sync", allInSync, { timeoutMs: 10_000 });
    const clusterIP = kubectl(["get", "service", "-n", ns, "smiley", "-o", "jsonpath={.spec.clusterIP}"]);
    const lports = new Map<string, number>();
    for (const n of NODES) lports.set(n.name, await listenerPort(n, clusterIP, 80));
    const nacksBefore = await nackCounts();

    kubectl(["apply", "-f", "-"], { input: wideService() });
    const reason = nackReason();
    const nacked = await eventually(
      "both agents NACK the table with the wide Service",
      async () => {
        const rows = (await agents()).filter((r) => NODES.some((n) => n.name === r.node));
        if (
          rows.length !== NODES.length ||
          !rows.every((r) => r.desired !== r.applied && reason.test(r.lastNack?.reason ?? ""))
        )
          throw new Error(JSON.stringify(rows));
        return rows;
      },
      { timeoutMs: 30_000 },
    );
    for (const r of nacked) expect(r.applied).not.toBe(r.lastNack!.version);

    // The agents keep serving their last good table: same listeners, the route still in force, no wide listener.
    for (const n of NODES) {
      expect(await listenerPort(n, clusterIP, 80)).toBe(lports.get(n.name));
      expect((await servedBy(n, lports.get(n.name)!, 10)).filter((p) => !p.startsWith("smiley2-"))).toEqual(
        [],
      );
      const { portMap } = (await (await fetch(`http://${n.underlayIP}:15091/debug/portmap`)).json()) as {
        portMap: Array<{ service: string }>;
      };
      expect(portMap.filter((e) => e.service.startsWith(`${ns}/wide:`))).toEqual([]);
    }

    // trellis status shows the NACK and exits non-zero (a node is behind).
    const status = trellisStatus();
    expect(status.code).toBe(3);
    for (const n of NODES) {
      const line = status.out.split("\n").find((l) => l.startsWith(`${n.name} `));
      expect(line).toMatch(reason);
    }

    // A Warning Event on each Node, and the NACK counter per node.
    await eventually("TableRejected events on both nodes", () => {
      const events = tableRejectedEvents();
      for (const n of NODES) {
        const hit = events.find(
          (e) => e.type === "Warning" && e.involvedObject.kind === "Node" && e.involvedObject.name === n.name,
        );
        if (!hit) throw new Error(`no TableRejected event for ${n.name}: ${JSON.stringify(events)}`);
      }
    });
    const nacksAfter = await nackCounts();
    for (const n of NODES) expect(nacksAfter.get(n.name) ?? 0).toBeGreaterThan(nacksBefore.get(n.name) ?? 0);

    // The cause removed: the next version is ACKed by both agents.
    kubectl(["delete", "service", "-n", ns, "wide", "--wait=true"]);
    const recovered = await eventually("both agents ACK the version without the wide Service", allInSync, {
      timeoutMs: 30_000,
    });
    for (const [i, r] of recovered.entries()) expect(r.applied).not.toBe(nacked[i]!.desired);
    const after = trellisStatus();
    expect(after.code).toBe(0);
    // The last NACK stays on record.
    expect(after.out).toMatch(reason);
    for (const n of NODES) {
      const lport = await listenerPort(n, clusterIP, 80);
      expect((await servedBy(n, lport, 10)).filter((p) => !p.startsWith("smiley2-"))).toEqual([]);
    }
  });
});
