#!/usr/bin/env node
// trellis-controller: watches the cluster, resolves GAMMA routes into per-node
// tables and (as the elected leader) writes route status.
import os from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import { Command, Option } from "commander";
import pino from "pino";
import { startAdminServer } from "./admin-server.ts";
import { startController } from "./controller.ts";
import { makeControllerMetrics } from "./metrics.ts";

const program = new Command("trellis-controller")
  .description("Trellis control plane: GAMMA routes → per-node routing tables, route status")
  .addOption(
    new Option("--kubeconfig <path>", "kubeconfig file; without it, in-cluster config is used").env(
      "KUBECONFIG",
    ),
  )
  .addOption(
    new Option("--admin-address <host:port>", "healthz, readyz, metrics and /debug/tables")
      .env("TRELLIS_ADMIN_ADDRESS")
      .default("0.0.0.0:9090"),
  )
  .addOption(
    new Option("--lease-namespace <ns>", "namespace of the leader-election Lease")
      .env("POD_NAMESPACE")
      .default("trellis-system"),
  )
  .addOption(
    new Option("--lease-name <name>", "name of the leader-election Lease").default("trellis-controller"),
  )
  .addOption(
    new Option("--identity <id>", "this replica's identity in the Lease")
      .env("POD_NAME")
      .default(`${os.hostname()}-${process.pid}`),
  )
  .addOption(new Option("--lease-duration <seconds>", "Lease duration").default(15).argParser(Number))
  .addOption(
    new Option("--debounce-ms <ms>", "quiet time after a change before recomputing")
      .default("50")
      .argParser(Number),
  )
  .addOption(
    new Option("--max-delay-ms <ms>", "longest a stream of changes may delay a recompute")
      .default("250")
      .argParser(Number),
  )
  .addOption(new Option("--log-level <level>", "pino log level").env("TRELLIS_LOG_LEVEL").default("info"))
  .showHelpAfterError();

program.parse();
const opts = program.opts<{
  kubeconfig?: string;
  adminAddress: string;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  leaseDuration: number;
  debounceMs: number;
  maxDelayMs: number;
  logLevel: string;
}>();

const log = pino({ level: opts.logLevel, base: { component: "controller", identity: opts.identity } });
const kc = new KubeConfig();
if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
else kc.loadFromCluster();

const metrics = makeControllerMetrics();
const controller = startController({
  kc,
  log,
  metrics,
  debounceMs: opts.debounceMs,
  maxDelayMs: opts.maxDelayMs,
  lease: {
    namespace: opts.leaseNamespace,
    name: opts.leaseName,
    identity: opts.identity,
    durationSeconds: opts.leaseDuration,
    renewSeconds: Math.max(1, Math.floor(opts.leaseDuration / 3)),
  },
});
const sep = opts.adminAddress.lastIndexOf(":");
const admin = await startAdminServer(
  controller,
  metrics,
  opts.adminAddress.slice(0, sep),
  Number(opts.adminAddress.slice(sep + 1)),
);
log.info(
  { admin: opts.adminAddress, lease: `${opts.leaseNamespace}/${opts.leaseName}` },
  "controller started",
);

let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "stopping");
  admin.close();
  await controller.stop();
  process.exit(0);
};
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
