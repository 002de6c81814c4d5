#!/usr/bin/env -S node --max-semi-space-size=8
import os from "node:os";
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { Command, InvalidArgumentError, Option } from "commander";
import pino from "pino";
import { startAdminServer } from "./admin-server.ts";
import { type RunningCanaryLoop, startCanaryLoop } from "./canary/canary-loop.ts";
import { DEFAULT_AGENT_SETTINGS } from "./compile/compile-node-tables.ts";
import { startController } from "./controller.ts";
import { type AgentChannel, startAgentChannel } from "./distribute/agent-channel.ts";
// trellis-controller: watches the cluster, resolves GAMMA routes into per-node
// tables and (as the elected leader) writes route status.
import { sameVersion } from "./distribute/agent-registry.ts";
import { CaptureStatusWriter } from "./kube/capture-status-writer.ts";
import { makeNodeEventRecorder } from "./kube/node-events.ts";
import { makeControllerMetrics } from "./metrics.ts";

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("must be a positive number");
  return n;
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a number ≥ 0");
  return n;
}

/** "min-max": an inclusive port range. */
function portRange(value: string): { min: number; max: number } {
  const m = /^(\d+)-(\d+)$/.exec(value.trim());
  const min = Number(m?.[1]);
  const max = Number(m?.[2]);
  if (!m || min < 1 || max > 65535 || max < min)
    throw new InvalidArgumentError("expected min-max, e.g. 15100-15999");
  return { min, max };
}

/** "host:port", "[v6]:port" or ":port" (all addresses). */
function hostPort(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) throw new InvalidArgumentError("expected host:port");
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

const program = new Command("trellis-controller")
  .description(
    "Trellis control plane: watches Services, EndpointSlices, Pods, Nodes, Namespaces, HTTPRoutes, " +
      "GRPCRoutes, ReferenceGrants and Canaries (when the CRD is installed); compiles one routing table per node; the Lease holder writes " +
      "route status. Logs are JSON lines (pino) on stdout.",
  )
  .addOption(
    new Option(
      "--kubeconfig <path>",
      "kubeconfig file; without it (and without $KUBECONFIG) the in-cluster service account is used",
    ).env("KUBECONFIG"),
  )
  .addOption(
    new Option(
      "--admin-address <host:port>",
      "listen address of /healthz, /readyz, /metrics and /debug/tables",
    )
      .env("TRELLIS_ADMIN_ADDRESS")
      .default(hostPort("0.0.0.0:9090"), "0.0.0.0:9090")
      .argParser(hostPort),
  )
  .addOption(
    new Option("--lease-namespace <ns>", "namespace of the leader-election Lease")
      .env("POD_NAMESPACE")
      .default("trellis-system"),
  )
  .addOption(
    new Option("--lease-name <name>", "name of the leader-election Lease")
      .env("TRELLIS_LEASE_NAME")
      .default("trellis-controller"),
  )
  .addOption(
    new Option("--identity <id>", "this replica's identity in the Lease (unique per replica)")
      .env("POD_NAME")
      .default(`${os.hostname()}-${process.pid}`, "<hostname>-<pid>"),
  )
  .addOption(
    new Option(
      "--lease-duration <seconds>",
      "how long a Lease that is not renewed keeps others from taking over; renewed every third of it",
    )
      .env("TRELLIS_LEASE_DURATION")
      .default(15)
      .argParser(positiveNumber),
  )
  .addOption(
    new Option("--debounce-ms <ms>", "quiet time after a change before recomputing")
      .env("TRELLIS_DEBOUNCE_MS")
      .default(25)
      .argParser(nonNegativeNumber),
  )
  .addOption(
    new Option("--max-delay-ms <ms>", "longest a stream of changes may delay a recompute")
      .env("TRELLIS_MAX_DELAY_MS")
      .default(250)
      .argParser(nonNegativeNumber),
  )
  .addOption(
    new Option(
      "--agent-address <host:port>",
      "where agents connect (gRPC over TLS); 'off' disables the agent channel",
    )
      .env("TRELLIS_AGENT_ADDRESS")
      .default("0.0.0.0:9443"),
  )
  .addOption(
    new Option(
      "--agent-service-accounts <list>",
      "comma-separated namespace/name of the ServiceAccounts agents run as; tokens of any other identity are refused",
    )
      .env("TRELLIS_AGENT_SERVICE_ACCOUNTS")
      .default("trellis-system/trellis-agent"),
  )
  .addOption(
    new Option(
      "--server-names <list>",
      "comma-separated DNS names and IPs agents dial; all go into the channel's server certificate",
    )
      .env("TRELLIS_SERVER_NAMES")
      .default("trellis-controller.trellis-system.svc,trellis-controller.trellis-system.svc.cluster.local"),
  )
  .addOption(
    new Option(
      "--ca-secret <name>",
      "Secret (in the lease namespace) holding the agent-channel CA; created if missing",
    ).default("trellis-ca"),
  )
  .addOption(
    new Option(
      "--ca-bundle-configmap <name>",
      "ConfigMap (in the lease namespace) the CA certificate is published in for agents",
    ).default("trellis-ca-bundle"),
  )
  .addOption(
    new Option(
      "--listener-ports <min-max>",
      "ports agents open their listeners on (one per meshed service port), sent to every agent in its table",
    )
      .env("TRELLIS_LISTENER_PORTS")
      .default(
        { min: DEFAULT_AGENT_SETTINGS.listenerPortMin, max: DEFAULT_AGENT_SETTINGS.listenerPortMax },
        `${DEFAULT_AGENT_SETTINGS.listenerPortMin}-${DEFAULT_AGENT_SETTINGS.listenerPortMax}`,
      )
      .argParser(portRange),
  )
  .addOption(
    new Option("--log-level <level>", "pino log level")
      .env("TRELLIS_LOG_LEVEL")
      .choices(["trace", "debug", "info", "warn", "error", "fatal", "silent"])
      .default("info"),
  )
  .showHelpAfterError();

program.parse();
const opts = program.opts<{
  kubeconfig?: string;
  adminAddress: { host: string; port: number };
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  leaseDuration: number;
  debounceMs: number;
  maxDelayMs: number;
  agentAddress: string;
  agentServiceAccounts: string;
  serverNames: string;
  caSecret: string;
  caBundleConfigmap: string;
  listenerPorts: { min: number; max: number };
  logLevel: string;
}>();

const log = pino({
  level: opts.logLevel,
  base: { component: "trellis-controller", identity: opts.identity },
});
const kc = new KubeConfig();
if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
else kc.loadFromCluster();

/** Canaries are watched only when their CRD is served; without it the mesh still works. */
async function canaryCrdServed(): Promise<boolean> {
  const api = kc.makeApiClient(CustomObjectsApi);
  try {
    await api.listClusterCustomObject({
      group: "trellis.dev",
      version: "v1alpha1",
      plural: "canaries",
      limit: 1,
    });
    return true;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    // 404: not installed. Anything else (API not reachable yet): assume installed; the informer retries.
    return code !== 404;
  }
}
const canaries = await canaryCrdServed();
if (!canaries) log.warn("the Canary CRD (canaries.trellis.dev) is not installed: canaries are off");

const metrics = makeControllerMetrics();
let channel: AgentChannel | undefined;
const controller = startController({
  kc,
  log,
  metrics,
  debounceMs: opts.debounceMs,
  maxDelayMs: opts.maxDelayMs,
  canaries,
  agentSettings: {
    ...DEFAULT_AGENT_SETTINGS,
    listenerPortMin: opts.listenerPorts.min,
    listenerPortMax: opts.listenerPorts.max,
  },
  lease: {
    namespace: opts.leaseNamespace,
    name: opts.leaseName,
    identity: opts.identity,
    durationSeconds: opts.leaseDuration,
    renewSeconds: opts.leaseDuration / 3,
  },
  onTables: (changed) => channel?.hub.publish(changed),
});
const recordNodeEvent = makeNodeEventRecorder(kc, "trellis-controller", log);
const list = (v: string) =>
  v
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);
if (opts.agentAddress !== "off") {
  const captureStatus = new CaptureStatusWriter(kc, log);
  channel = await startAgentChannel({
    kc,
    log,
    address: opts.agentAddress,
    namespace: opts.leaseNamespace,
    caSecret: opts.caSecret,
    caBundleConfigMap: opts.caBundleConfigmap,
    serverNames: list(opts.serverNames),
    agentServiceAccounts: list(opts.agentServiceAccounts),
    currentTable: (node) => controller.table(node)?.table,
    onAck: (node, version) => {
      const current = controller.table(node)?.table;
      if (current && sameVersion(current.version, version)) captureStatus.answered(current, "ack");
    },
    onNack: (node, version, reason) => {
      const current = controller.table(node)?.table;
      if (current && sameVersion(current.version, version)) captureStatus.answered(current, "nack");
      metrics.agentNacks.inc({ node });
      void recordNodeEvent(
        node,
        "Warning",
        "TableRejected",
        `agent rejected table ${version.epoch}.${version.number}: ${reason}`,
      );
    },
  });
  // Tables computed before the channel was up reach agents when they connect.
}
let canaryLoop: RunningCanaryLoop | undefined;
if (canaries) {
  canaryLoop = startCanaryLoop({
    kc,
    log,
    isLeader: () => controller.isLeader(),
    canaries: () => controller.canaries(),
    route: (kind, namespace, name) => controller.route(kind, namespace, name),
    canaryApplied: (key) => controller.canaryApplied(key),
    agents: () => channel?.registry.all() ?? [],
    stats: () => channel?.stats,
  });
}
const admin = await startAdminServer(
  controller,
  metrics,
  opts.adminAddress.host,
  opts.adminAddress.port,
  log,
  () => channel?.registry.all() ?? [],
  () => channel?.stats,
);
const address = `${opts.adminAddress.host}:${opts.adminAddress.port}`;
log.info({ admin: address, lease: `${opts.leaseNamespace}/${opts.leaseName}` }, "controller started");

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "stopping");
  // Releasing the Lease needs the API; do not hang on it forever.
  setTimeout(() => process.exit(1), 10_000).unref();
  admin.close();
  await canaryLoop?.stop();
  await channel?.stop();
  await controller.stop();
  process.exit(0);
};
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
