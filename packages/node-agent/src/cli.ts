#!/usr/bin/env node
// trellis-agent: the node agent process.

import { rm, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { CAPTURED_NAMESPACES_FILE, CNI_SOCKET_PATH } from "@trellis/api/cni";
import { Command, InvalidArgumentError, Option } from "commander";
import pino from "pino";
import { startAdminServer } from "./admin.ts";
import { Agent } from "./agent.ts";
import { Capture } from "./capture/capture.ts";
import { CaptureMetrics } from "./capture/capture-metrics.ts";
import { type CniServer, startCniServer } from "./capture/cni-server.ts";
import { NftProgram } from "./capture/nft.ts";
import { readProgrammedPorts } from "./capture/programmed-ports.ts";
import { AgentMetrics } from "./metrics.ts";
import { ControllerTableSource } from "./table/controller-source.ts";
import { FileTableSource, type TableSource } from "./table/source.ts";
import { isProxyWorker, ProxyWorkers, runProxyWorker } from "./workers.ts";

const AGENT_VERSION = "0.0.0";

function int(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new InvalidArgumentError(`${name} must be a non-negative integer`);
    return n;
  };
}

export function buildCommand(): Command {
  return new Command("trellis-agent")
    .description("Trellis node agent: routes captured east-west traffic by the node's NodeTable.")
    .option(
      "--table-file <path>",
      "NodeTable to serve (JSON form of NodeTable, or binary protobuf); instead of --controller",
    )
    .addOption(
      new Option("--controller <host:port>", "controller agent channel to stream this node's table from")
        .env("TRELLIS_CONTROLLER_ADDRESS")
        .conflicts("tableFile"),
    )
    .addOption(new Option("--node <name>", "this node's name (with --controller)").env("NODE_NAME"))
    .addOption(
      new Option(
        "--ca-file <path>",
        "CA certificate of the controller channel (the trellis-ca-bundle ConfigMap)",
      )
        .env("TRELLIS_CA_FILE")
        .default("/var/run/trellis/ca/ca.crt"),
    )
    .addOption(
      new Option(
        "--token-file <path>",
        "projected ServiceAccount token with audience trellis, re-read on every connect",
      )
        .env("TRELLIS_TOKEN_FILE")
        .default("/var/run/secrets/trellis/token"),
    )
    .addOption(
      new Option("--server-name <name>", "TLS name to verify on the controller's certificate")
        .env("TRELLIS_SERVER_NAME")
        .default("trellis-controller.trellis-system.svc"),
    )
    .addOption(
      new Option(
        "--state-dir <dir>",
        "where the last good table is kept, so a restarted agent serves at once",
      )
        .env("TRELLIS_STATE_DIR")
        .default("/var/lib/trellis"),
    )
    .option(
      "--capture",
      "program nftables capture in this network namespace and serve the CNI shim's socket (in a cluster: on)",
      false,
    )
    .option("--cni-socket <path>", "unix socket the CNI shim calls (with --capture)", CNI_SOCKET_PATH)
    .option(
      "--captured-namespaces-file <path>",
      "file kept for the CNI shim, so pods of captured namespaces wait while the agent is down",
      CAPTURED_NAMESPACES_FILE,
    )
    .option("--nft <path>", "nft executable", "nft")
    .option("--no-watch", "do not reload when the table file changes (SIGHUP still reloads)")
    .option(
      "--listen-address <ip>",
      "address listeners bind (capture redirects to the node address)",
      "0.0.0.0",
    )
    .option("--admin-address <ip>", "address of the metrics/health server", "0.0.0.0")
    .option("--admin-port <port>", "port of the metrics/health server (0 = any)", int("--admin-port"), 15090)
    .option(
      "--stats-interval-ms <ms>",
      "how often to send per-backend request counters to the controller (0 = never)",
      int("--stats-interval-ms"),
      5_000,
    )
    .option("--debug-headers", "add x-trellis-route and x-trellis-backend to responses", false)
    .option("--log-level <level>", "pino level: trace, debug, info, warn, error, silent", "info")
    .option(
      "--drain-timeout-ms <ms>",
      "grace for requests on a removed listener",
      int("--drain-timeout-ms"),
      10_000,
    )
    .option(
      "--drain-ms <ms>",
      "on SIGTERM: how long requests in flight may take before the agent exits (keep it below the pod's terminationGracePeriodSeconds)",
      int("--drain-ms"),
      10_000,
    )
    .option(
      "--ready-file <path>",
      "file created once the first table is applied and capture programmed, removed on SIGTERM (a pod-private readiness signal: the admin port is shared with the next agent during a rolling update)",
    )
    .option("--connect-timeout-ms <ms>", "upstream connect timeout", int("--connect-timeout-ms"), 3_000)
    .option(
      "--breaker-consecutive-failures <n>",
      "open an endpoint's breaker after n failures in a row (0 = off)",
      int("--breaker-consecutive-failures"),
      5,
    )
    .option(
      "--breaker-error-percentage <pct>",
      "open when the error rate in the window exceeds pct",
      int("--breaker-error-percentage"),
      50,
    )
    .option(
      "--breaker-volume <n>",
      "requests in the window before the error rate counts",
      int("--breaker-volume"),
      20,
    )
    .option(
      "--breaker-reset-ms <ms>",
      "open → half-open (one probe request) after this long",
      int("--breaker-reset-ms"),
      5_000,
    )
    .option(
      "--workers <n>",
      "proxy threads: each binds every listener with SO_REUSEPORT and the kernel spreads connections over them (each extra thread: ≈ 10 MB more RSS idle, ≈ 20 MB under load)",
      (v: string) => {
        const n = int("--workers")(v);
        if (n < 1) throw new InvalidArgumentError("--workers must be at least 1");
        return n;
      },
      1,
    );
}

interface CliOptions {
  capture: boolean;
  cniSocket: string;
  capturedNamespacesFile: string;
  nft: string;
  tableFile?: string;
  controller?: string;
  node?: string;
  caFile: string;
  tokenFile: string;
  serverName: string;
  stateDir: string;
  watch: boolean;
  listenAddress: string;
  adminAddress: string;
  adminPort: number;
  statsIntervalMs: number;
  debugHeaders: boolean;
  logLevel: string;
  drainTimeoutMs: number;
  drainMs: number;
  readyFile?: string;
  connectTimeoutMs: number;
  breakerConsecutiveFailures: number;
  breakerErrorPercentage: number;
  breakerVolume: number;
  breakerResetMs: number;
  workers: number;
}

const MIGRATE_REQ = "/proc/sys/net/ipv4/tcp_migrate_req";

/**
 * net.ipv4.tcp_migrate_req=1 in the node's network namespace: when a stopping agent closes a
 * listener that shares its port with the next agent (SO_REUSEPORT), the connections in its accept
 * queue move to the next agent's socket instead of being reset. Without it (kernel < 5.14, or no
 * CAP_NET_ADMIN) the roll still works, with those few connections refused.
 */
async function enableRequestMigration(log: pino.Logger): Promise<void> {
  try {
    await writeFile(MIGRATE_REQ, "1\n");
    log.info({ sysctl: "net.ipv4.tcp_migrate_req", value: 1 }, "sysctl set");
  } catch (err) {
    log.warn(
      { sysctl: "net.ipv4.tcp_migrate_req", err: (err as Error).message },
      "cannot set sysctl: connections queued on a stopping agent's listeners will be reset",
    );
  }
}

/** `trellis-agent cleanup`: what an uninstall runs on each node after the agent is gone. */
async function cleanup(argv: string[]): Promise<void> {
  const o = new Command("trellis-agent cleanup")
    .description(
      "Remove the agent's nftables tables and the CNI shim's captured-namespaces file from this node.",
    )
    .option("--captured-namespaces-file <path>", "file to remove", CAPTURED_NAMESPACES_FILE)
    .option("--nft <path>", "nft executable", "nft")
    .parse(argv)
    .opts<{ capturedNamespacesFile: string; nft: string }>();
  await new NftProgram(o.nft).remove();
  await rm(o.capturedNamespacesFile, { force: true });
  console.log(JSON.stringify({ msg: "capture removed", file: o.capturedNamespacesFile }));
}

export async function main(argv: string[]): Promise<void> {
  if (argv[2] === "cleanup") return cleanup([argv[0] ?? "", argv[1] ?? "", ...argv.slice(3)]);
  const command = buildCommand();
  const o = command.parse(argv).opts<CliOptions>();
  if (!o.tableFile && !o.controller) command.error("one of --table-file or --controller is required");
  if (o.controller && !o.node) command.error("--controller needs --node (or NODE_NAME)");
  const log = pino({ level: o.logLevel, base: { component: "trellis-agent" } });
  const metrics = new AgentMetrics();
  const agentOptions = {
    listenAddress: o.listenAddress,
    debugHeaders: o.debugHeaders,
    drainTimeoutMs: o.drainTimeoutMs,
    connectTimeoutMs: o.connectTimeoutMs,
    breaker: {
      consecutiveFailures: o.breakerConsecutiveFailures,
      errorThresholdPercentage: o.breakerErrorPercentage,
      volumeThreshold: o.breakerVolume,
      resetTimeoutMs: o.breakerResetMs,
    },
  };
  const agent = new Agent({
    ...agentOptions,
    logger: log,
    metrics,
    // Shared with the next agent on the node during a rolling update (docs/agent.md, Upgrades),
    // and with this agent's own proxy workers.
    reusePort: true,
    onPortMap: (entries) => log.info({ portMap: entries }, "port map"),
  });
  const workers =
    o.workers > 1
      ? new ProxyWorkers({
          count: o.workers - 1,
          entry: new URL(import.meta.url),
          data: { logLevel: o.logLevel, statsEveryMs: 1_000, agent: agentOptions },
          log,
          onStats: (s) => metrics.backendStats.add(s),
        })
      : null;
  const captureMetrics = new CaptureMetrics(metrics.registry);
  const nft = new NftProgram(o.nft);
  let cniServer: CniServer | null = null;
  const capture = o.capture
    ? new Capture({
        log: log.child({ component: "capture" }),
        nft,
        metrics: captureMetrics,
        capturedNamespacesFile: o.capturedNamespacesFile,
        // The CNI socket tells: the newest agent on the node has renamed its own over the path.
        owner: () => cniServer?.owned() ?? Promise.resolve(true),
      })
    : null;
  if (capture) await enableRequestMigration(log);
  // Before the first table: a shim's ADD then waits here for it instead of failing.
  cniServer = capture ? await startCniServer(capture, o.cniSocket, log, captureMetrics) : null;
  // Ready once the first table is applied and, with capture, programmed: during a rolling update
  // the agent this one replaces is stopped only then.
  let ready = false;
  const admin = await startAdminServer(
    agent,
    metrics,
    o.adminAddress,
    o.adminPort,
    { ...(capture ? { "/debug/capture": () => capture.debugState() } : {}) },
    () => ready,
    workers === null ? undefined : () => workers.metrics(metrics),
  );
  log.info({ admin: (admin.address() as AddressInfo).port }, "admin server listening");
  const source: TableSource = o.controller
    ? new ControllerTableSource({
        address: o.controller,
        caFile: o.caFile,
        tokenFile: o.tokenFile,
        serverName: o.serverName,
        node: o.node ?? "",
        stateFile: join(o.stateDir, `table-${o.node}.bin`),
        agentVersion: AGENT_VERSION,
        log,
        statsIntervalMs: o.statsIntervalMs,
        takeStats: () => metrics.backendStats.take(),
      })
    : new FileTableSource({ path: o.tableFile ?? "", log, watch: o.watch });
  let stopping = false;
  let adopted = capture === null;
  await source.start(async (t) => {
    if (!adopted) {
      adopted = true;
      // Read right before the first apply, so it includes what the running agent did last.
      const programmed = await readProgrammedPorts(nft).catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, "cannot read the programmed service ports");
        return [];
      });
      agent.adoptPorts(programmed);
      if (programmed.length > 0) log.info({ servicePorts: programmed.length }, "adopted listener ports");
    }
    const applied = await agent.apply(t);
    const portMap = agent.portMap();
    workers?.apply(t, portMap);
    await capture?.update(t, portMap);
    if (!ready && !stopping) {
      ready = true;
      // A readiness problem is not the table's: never NACK for it.
      if (o.readyFile)
        await writeFile(o.readyFile, `${new Date().toISOString()}\n`).catch((err: unknown) =>
          log.error({ err: (err as Error).message, file: o.readyFile }, "cannot write the ready file"),
        );
      log.info({ version: agent.version }, "ready");
    }
    return applied;
  });

  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    ready = false;
    const started = performance.now();
    log.info({ signal, drainMs: o.drainMs }, "stopping");
    // Whatever hangs, the process is gone before the kubelet's SIGKILL.
    setTimeout(() => process.exit(0), o.drainMs + 2_000).unref();
    if (o.readyFile) await rm(o.readyFile, { force: true });
    admin.close();
    await source.stop();
    // Capture stays programmed (nft table, captured-namespaces file): a restarting or replaced
    // agent must not let its pods' traffic bypass the mesh. `trellis-agent cleanup` removes it on
    // uninstall.
    capture?.close();
    await cniServer?.close();
    await Promise.all([agent.shutdown(o.drainMs), workers?.shutdown(o.drainMs)]);
    log.info({ signal, drainedMs: Math.round(performance.now() - started) }, "stopped");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

if (isProxyWorker()) runProxyWorker();
else if (import.meta.main) {
  main(process.argv).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
