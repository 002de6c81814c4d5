#!/usr/bin/env node
// trellis-agent: the node agent process.

import { rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { CAPTURED_NAMESPACES_FILE, CNI_SOCKET_PATH } from "@trellis/api/cni";
import { Command, InvalidArgumentError, Option } from "commander";
import pino from "pino";
import { startAdminServer } from "./admin.ts";
import { Agent } from "./agent.ts";
import { Capture } from "./capture/capture.ts";
import { CaptureMetrics } from "./capture/capture-metrics.ts";
import { startCniServer } from "./capture/cni-server.ts";
import { NftProgram } from "./capture/nft.ts";
import { AgentMetrics } from "./metrics.ts";
import { ControllerTableSource } from "./table/controller-source.ts";
import { FileTableSource, type TableSource } from "./table/source.ts";

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
  connectTimeoutMs: number;
  breakerConsecutiveFailures: number;
  breakerErrorPercentage: number;
  breakerVolume: number;
  breakerResetMs: number;
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
  const agent = new Agent({
    logger: log,
    metrics,
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
    onPortMap: (entries) => log.info({ portMap: entries }, "port map"),
  });
  const captureMetrics = new CaptureMetrics(metrics.registry);
  const capture = o.capture
    ? new Capture({
        log: log.child({ component: "capture" }),
        nft: new NftProgram(o.nft),
        metrics: captureMetrics,
        capturedNamespacesFile: o.capturedNamespacesFile,
      })
    : null;
  // Before the first table: a shim's ADD then waits here for it instead of failing.
  const cniServer = capture ? await startCniServer(capture, o.cniSocket, log, captureMetrics) : null;
  const admin = await startAdminServer(agent, metrics, o.adminAddress, o.adminPort, {
    ...(capture ? { "/debug/capture": () => capture.debugState() } : {}),
  });
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
  await source.start(async (t) => {
    const applied = await agent.apply(t);
    await capture?.update(t, agent.portMap());
    return applied;
  });

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    await source.stop();
    // Capture stays programmed: a restarting agent must not let its pods'
    // traffic bypass the mesh. `trellis-agent cleanup` removes it on uninstall.
    capture?.close();
    cniServer?.close();
    await agent.close();
    admin.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

if (import.meta.main) {
  main(process.argv).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
