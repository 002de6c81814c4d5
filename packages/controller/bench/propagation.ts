// Propagation benchmark:
//   node packages/controller/bench/propagation.ts [--changes 100] [--full-changes 10] [--warmup 5]
//
// The controller side is what trellis-controller runs: RoutingState and
// VersionedTables over the synthetic cluster (bench/synthetic-cluster.ts:
// 1,000 services, 10,000 endpoints, 2,000 routes, 100 nodes), and the agent
// channel's real gRPC server (serveAgentChannel: TLS, AgentStreamHub,
// AgentRegistry); only TokenReview is replaced (a token is its node's name).
//
// The agents are 100 light clients in a second process (the controller keeps
// its own core, as it would in a cluster): each has its own TLS connection,
// speaks the real protocol (Hello, then an Ack per update, encoded with the
// generated codecs), but reads only the version from each update instead of
// rebuilding, decoding and compiling the table; a real agent does that on its
// own node, in parallel with the others (its decode cost is reported below).
//
// Two runs, each with a fresh channel and fresh agents: versions sent as
// deltas (what the controller does), then as full tables (for comparison,
// fewer changes: each costs seconds). For each change (route changes, then
// EndpointSlice changes) the clock runs from RoutingState.apply() of the
// changed object until the controller has received the ACK of the new version
// from every agent whose table changed: recompute, versioning, delta,
// encoding, TLS, transfer and the ACK's way back. The controller's debounce
// (25 ms by default) comes on top. Bytes are the serialized ControllerMessages
// the agents received for that change.
// Results: bench/results/propagation.{json,md}.
import { execFileSync, fork } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { type AgentMessage, AgentStreamService, NodeTable, type TableVersion } from "@trellis/api";
import pino from "pino";
import { serveAgentChannel } from "../src/distribute/agent-channel.ts";
import { createCA, type PemPair } from "../src/distribute/channel-pki.ts";
import { encodeNodeTable } from "../src/distribute/table-bytes.ts";
import { VersionedTables } from "../src/distribute/versioned-tables.ts";
import { RoutingState } from "../src/routing-state.ts";
import { changedRoute, changedSlice, random, syntheticCluster } from "./synthetic-cluster.ts";

const here = dirname(fileURLToPath(import.meta.url));
const SERVER_NAME = "trellis-controller";
const TARGET_P99_MS = 100;

// ---- the agents' process ----

interface Arrival {
  version: TableVersion | undefined;
  bytes: number;
}

type ToAgents =
  | { type: "start"; address: string; caPem: string; nodes: string[] }
  | { type: "report" }
  | { type: "stop" };
type FromAgents = { type: "report"; received: Record<string, Array<[number, number]>> };

/** Reads a varint at `at`; numbers beyond 2^32 (epochs are milliseconds) stay exact up to 2^53. */
function varint(buf: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const b = buf[at++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, at];
    scale *= 128;
  }
}

/** Skips the field whose tag was just read; returns the position after it. */
function skip(buf: Buffer, at: number, wire: number): number {
  if (wire === 0) return varint(buf, at)[1];
  if (wire === 1) return at + 8;
  if (wire === 5) return at + 4;
  if (wire === 2) {
    const [len, start] = varint(buf, at);
    return start + len;
  }
  throw new Error(`unexpected wire type ${wire}`);
}

/** The first length-delimited field `field` within [at, end): its [start, end). */
function child(buf: Buffer, at: number, end: number, field: number): [number, number] | undefined {
  while (at < end) {
    const [tag, next] = varint(buf, at);
    if (tag === ((field << 3) | 2)) {
      const [len, start] = varint(buf, next);
      return [start, start + len];
    }
    at = skip(buf, next, tag & 7);
  }
  return undefined;
}

/** The version of a ControllerMessage (table_update → table → version, or table_delta → version), without decoding the rest. */
function lightDecode(buf: Buffer): Arrival {
  const update = child(buf, 0, buf.length, 1);
  const table = update && child(buf, update[0], update[1], 1);
  const delta = update ? undefined : child(buf, 0, buf.length, 2);
  const version = table ? child(buf, table[0], table[1], 1) : delta && child(buf, delta[0], delta[1], 2);
  if (!version) return { version: undefined, bytes: buf.length };
  let epoch = 0;
  let number = 0;
  let at = version[0];
  while (at < version[1]) {
    const [tag, next] = varint(buf, at);
    if (tag === 0x08) [epoch, at] = varint(buf, next);
    else if (tag === 0x10) [number, at] = varint(buf, next);
    else at = skip(buf, next, tag & 7);
  }
  return { version: { epoch, number }, bytes: buf.length };
}

function agentsProcess(): void {
  const clients: grpc.Client[] = [];
  const received: Record<string, Array<[number, number]>> = {};
  process.on("message", (msg: ToAgents) => {
    if (msg.type === "start") {
      for (const node of msg.nodes) {
        received[node] = [];
        const client = new grpc.Client(msg.address, grpc.credentials.createSsl(Buffer.from(msg.caPem)), {
          "grpc.ssl_target_name_override": SERVER_NAME,
          // One connection per agent, as on separate nodes (grpc-js would share one otherwise).
          "grpc.use_local_subchannel_pool": 1,
          "grpc.max_receive_message_length": 64 * 1024 * 1024,
          "grpc.keepalive_time_ms": 10_000,
          "grpc.keepalive_timeout_ms": 5_000,
        });
        clients.push(client);
        const md = new grpc.Metadata();
        md.set("authorization", `Bearer ${node}`);
        const call = client.makeBidiStreamRequest<AgentMessage, Arrival>(
          AgentStreamService.connect.path,
          AgentStreamService.connect.requestSerialize,
          lightDecode,
          md,
        );
        call.on("error", () => {});
        call.write({ message: { $case: "hello", hello: { node, agentVersion: "bench" } } });
        call.on("data", (a: Arrival) => {
          if (!a.version) return;
          received[node]!.push([a.version.number, a.bytes]);
          call.write({ message: { $case: "ack", ack: { version: a.version } } });
        });
      }
    } else if (msg.type === "report") {
      process.send?.({ type: "report", received } satisfies FromAgents);
    } else {
      for (const c of clients) c.close();
      process.exit(0);
    }
  });
}

// ---- the controller's process ----

function percentiles(samples: readonly number[]) {
  const xs = [...samples].sort((a, b) => a - b);
  const at = (p: number) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)] ?? 0;
  return { samples: xs.length, p50: at(50), p90: at(90), p99: at(99), max: xs.at(-1) ?? 0 };
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

interface ChangeSample {
  /** RoutingState.apply + VersionedTables.update. */
  recomputeMs: number;
  /** AgentStreamHub.publish: deltas (or tables) made, encoded and written to every stream. */
  publishMs: number;
  /** From apply() until the last ACK arrived. */
  totalMs: number;
  cpuMs: number;
  nodes: string[];
  versions: Map<string, number>;
}

interface Summary {
  propagationMs: ReturnType<typeof percentiles>;
  recomputeMs: ReturnType<typeof percentiles>;
  publishMs: ReturnType<typeof percentiles>;
  controllerCpuMsPerChange: number;
  agentsPerChange: number;
  bytesPerAgentPerChange: number;
  bytesPerChangeAllAgents: number;
}

interface ModeResult {
  encoding: string;
  initialSyncMs: number;
  routeChange: Summary;
  endpointChange: Summary;
}

/** The controller's state over the synthetic cluster, and the changes the runs feed into it. */
function controllerState() {
  const cluster = syntheticCluster();
  const state = new RoutingState();
  const versions = new VersionedTables(Date.now());
  state.apply(cluster.objects.map((object) => ({ object })));
  versions.update(state.tables());
  const rand = random(11);
  let step = 0;
  return {
    cluster,
    state,
    versions,
    nextRoute: () => {
      const index = Math.floor(rand() * cluster.routes.length);
      cluster.routes[index] = changedRoute(cluster.routes[index]!, step++);
      return cluster.routes[index]!;
    },
    nextSlice: () => {
      const index = Math.floor(rand() * cluster.slices.length);
      cluster.slices[index] = changedSlice(cluster.slices[index]!, step++);
      return cluster.slices[index]!;
    },
  };
}

/** One encoding mode: a fresh agent channel and 100 fresh agents, then route and EndpointSlice changes. */
async function runMode(
  s: ReturnType<typeof controllerState>,
  ca: PemPair,
  o: { fullTables: boolean; changes: number; warmup: number },
): Promise<ModeResult> {
  const { state, versions } = s;
  const nodes = versions.nodes();
  const channel = await serveAgentChannel({
    log: pino({ level: "silent" }),
    address: "127.0.0.1:0",
    ca,
    serverNames: [SERVER_NAME],
    currentTable: (node) => versions.get(node)?.table,
    authenticate: async (token) => ({ node: token, pod: `bench/agent-${token}` }),
    fullTables: o.fullTables,
  });
  const { registry, hub } = channel;
  const waitAll = (list: readonly string[]) =>
    Promise.all(list.map((n) => registry.waitForAck(n, versions.get(n)!.table.version!)));

  const agents = fork(fileURLToPath(import.meta.url), ["--agents-process"], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const t0 = performance.now();
  agents.send({
    type: "start",
    address: `127.0.0.1:${channel.port}`,
    caPem: ca.certPem,
    nodes,
  } satisfies ToAgents);
  await waitAll(nodes);
  const initialSyncMs = performance.now() - t0;

  const change = async (object: Record<string, unknown>): Promise<ChangeSample> => {
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    state.apply([{ object }]);
    const { changed } = versions.update(state.tables());
    const recomputeMs = performance.now() - start;
    hub.publish(changed);
    const publishMs = performance.now() - start - recomputeMs;
    await waitAll(changed);
    const totalMs = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    return {
      recomputeMs,
      publishMs,
      totalMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      nodes: changed,
      versions: new Map(changed.map((n) => [n, versions.get(n)!.table.version!.number])),
    };
  };
  const label = o.fullTables ? "full tables" : "deltas";
  const run = async (kind: string, next: () => Record<string, unknown>) => {
    for (let i = 0; i < o.warmup; i++) await change(next());
    const samples: ChangeSample[] = [];
    for (let i = 0; i < o.changes; i++) {
      samples.push(await change(next()));
      if ((i + 1) % 10 === 0 || i + 1 === o.changes)
        process.stderr.write(`  ${label}, ${kind}: ${i + 1}/${o.changes}\n`);
    }
    return samples;
  };
  const routeSamples = await run("route changes", s.nextRoute);
  const sliceSamples = await run("EndpointSlice changes", s.nextSlice);

  agents.send({ type: "report" } satisfies ToAgents);
  const report = await new Promise<FromAgents>((resolve) => agents.once("message", resolve));
  agents.send({ type: "stop" } satisfies ToAgents);
  await new Promise((resolve) => agents.once("exit", resolve));
  await channel.stop();

  const received = new Map(Object.entries(report.received).map(([n, list]) => [n, new Map(list)]));
  const summarise = (samples: readonly ChangeSample[]): Summary => {
    const bytesPerAgent = samples.map((c) => {
      let sum = 0;
      for (const n of c.nodes) sum += received.get(n)?.get(c.versions.get(n)!) ?? 0;
      return c.nodes.length ? sum / c.nodes.length : 0;
    });
    return {
      propagationMs: percentiles(samples.map((c) => c.totalMs)),
      recomputeMs: percentiles(samples.map((c) => c.recomputeMs)),
      publishMs: percentiles(samples.map((c) => c.publishMs)),
      controllerCpuMsPerChange: mean(samples.map((c) => c.cpuMs)),
      agentsPerChange: mean(samples.map((c) => c.nodes.length)),
      bytesPerAgentPerChange: mean(bytesPerAgent),
      bytesPerChangeAllAgents: mean(samples.map((c, i) => bytesPerAgent[i]! * c.nodes.length)),
    };
  };
  return {
    encoding: o.fullTables ? "full table per version" : "delta per version (full table first)",
    initialSyncMs,
    routeChange: summarise(routeSamples),
    endpointChange: summarise(sliceSamples),
  };
}

async function controllerProcess(): Promise<void> {
  const { values } = parseArgs({
    options: {
      changes: { type: "string", default: "100" },
      "full-changes": { type: "string", default: "10" },
      warmup: { type: "string", default: "5" },
    },
  });
  const changes = Number(values.changes);
  const fullChanges = Number(values["full-changes"]);
  const warmup = Number(values.warmup);

  const loadBefore = os.loadavg()[0] ?? 0;
  process.stderr.write("building the cluster and the tables…\n");
  const s = controllerState();
  const nodes = s.versions.nodes();
  const ca = await createCA("trellis-bench-ca");
  process.stderr.write(`${nodes.length} light agents, deltas: ${changes} changes of each kind…\n`);
  const deltas = await runMode(s, ca, { fullTables: false, changes, warmup });
  process.stderr.write(`${nodes.length} light agents, full tables: ${fullChanges} changes of each kind…\n`);
  const full = await runMode(s, ca, { fullTables: true, changes: fullChanges, warmup: 1 });

  // What one real agent does with a full table on its node (not part of the figures above).
  const sample = s.versions.get(nodes[0]!)!.table;
  const encoded = encodeNodeTable(sample);
  NodeTable.decode(encoded);
  const t = performance.now();
  for (let i = 0; i < 5; i++) NodeTable.decode(encoded);
  const decodeMs = (performance.now() - t) / 5;
  const tableBytes = nodes.map((n) => encodeNodeTable(s.versions.get(n)!.table).length);

  const args = [
    changes !== 100 ? `--changes ${changes}` : "",
    fullChanges !== 10 ? `--full-changes ${fullChanges}` : "",
    warmup !== 5 ? `--warmup ${warmup}` : "",
  ].filter(Boolean);
  const result: Result = {
    measuredAt: new Date().toISOString(),
    command: ["node packages/controller/bench/propagation.ts", ...args].join(" "),
    machine: { cpu: os.cpus()[0]?.model ?? "?", cpus: os.cpus().length, node: process.version },
    target: { p99Ms: TARGET_P99_MS },
    cluster: {
      services: s.cluster.counts.Service ?? 0,
      endpoints: s.cluster.counts.Endpoint ?? 0,
      routes: (s.cluster.counts.HTTPRoute ?? 0) + (s.cluster.counts.GRPCRoute ?? 0),
      nodes: nodes.length,
    },
    agents: nodes.length,
    tableBytes: { mean: mean(tableBytes), max: Math.max(...tableBytes) },
    agentDecodeOneTableMs: decodeMs,
    loadAverage: { before: loadBefore, after: os.loadavg()[0] ?? 0 },
    deltas,
    fullTables: full,
  };
  const results = join(here, "results");
  mkdirSync(results, { recursive: true });
  writeFileSync(join(results, "propagation.json"), `${JSON.stringify(result, null, 2)}\n`);
  const md = markdown(result);
  writeFileSync(join(results, "propagation.md"), md);
  const biome = join(here, "..", "..", "..", "node_modules", ".bin", "biome");
  if (existsSync(biome)) {
    execFileSync(
      biome,
      ["format", "--write", join(results, "propagation.md"), join(results, "propagation.json")],
      {
        stdio: "ignore",
      },
    );
  }
  process.stdout.write(md);
  process.exit(0);
}

interface Result {
  measuredAt: string;
  command: string;
  machine: { cpu: string; cpus: number; node: string };
  target: { p99Ms: number };
  cluster: { services: number; endpoints: number; routes: number; nodes: number };
  agents: number;
  tableBytes: { mean: number; max: number };
  agentDecodeOneTableMs: number;
  /** 1-minute load average before and after: the machine may be shared. */
  loadAverage: { before: number; after: number };
  deltas: ModeResult;
  fullTables: ModeResult;
}

function markdown(r: Result): string {
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const size = (x: number) =>
    x >= 1024 * 1024
      ? `${(x / 2 ** 20).toFixed(2)} MB`
      : x >= 1024
        ? `${(x / 1024).toFixed(1)} KB`
        : `${Math.round(x)} B`;
  const verdict = (p99: number) =>
    p99 < TARGET_P99_MS
      ? "met"
      : `missed by ${ms(p99 - TARGET_P99_MS)} (${(p99 / TARGET_P99_MS).toFixed(1)}×)`;
  const row = (name: string, m: ModeResult, c: Summary) =>
    `| ${name} | ${m === r.deltas ? "deltas" : "full tables"} | ${c.propagationMs.samples} | ${ms(c.propagationMs.p50)} | **${ms(c.propagationMs.p99)}** | ${verdict(c.propagationMs.p99)} | ${ms(c.recomputeMs.p50)} | ${ms(c.publishMs.p50)} | ${ms(c.controllerCpuMsPerChange)} | ${c.agentsPerChange.toFixed(1)} | **${size(c.bytesPerAgentPerChange)}** | ${size(c.bytesPerChangeAllAgents)} |`;
  return `# Propagation benchmark

Measured ${r.measuredAt} with \`${r.command}\` on ${r.machine.cpu} (${r.machine.cpus} CPUs), Node ${r.machine.node};
1-minute load average ${r.loadAverage.before.toFixed(1)} before, ${r.loadAverage.after.toFixed(1)} after (the machine is shared).

${r.cluster.services} services, ${r.cluster.endpoints} endpoints, ${r.cluster.routes} routes, ${r.cluster.nodes} nodes; ${r.agents} light agents
(one TLS connection each, in a second process) on the controller's real agent channel.
Target: p99 < ${TARGET_P99_MS} ms from the change to the ACK of every agent whose table changed.

| change | encoding | changes | p50 | p99 | target | recompute p50 | publish p50 | controller CPU per change | agents with a new version | bytes per agent per change | bytes per change, all agents |
|---|---|---|---|---|---|---|---|---|---|---|---|
${row("route change", r.deltas, r.deltas.routeChange)}
${row("endpoint change", r.deltas, r.deltas.endpointChange)}
${row("route change", r.fullTables, r.fullTables.routeChange)}
${row("endpoint change", r.fullTables, r.fullTables.endpointChange)}

- Time runs from \`RoutingState.apply()\` of the changed object until the controller holds the ACK of the
  new version from every agent whose table changed; the controller's debounce (25 ms by default) comes on top.
- Recompute: \`RoutingState.apply()\` and versioning; publish: \`AgentStreamHub.publish()\` making, encoding
  and writing every changed agent's update (synchronous part; TLS and the sockets work after it).
- Route changes are canary weight steps and header-modifier edits on random routes; an endpoint change flips
  one endpoint of a random EndpointSlice between ready and terminating.
- Bytes are the serialized ControllerMessages the agents received (TLS and HTTP/2 framing not counted).
- A full table is ${size(r.tableBytes.mean)} per node (max ${size(r.tableBytes.max)}); the first sync of all
  ${r.agents} agents (full tables) took ${ms(r.deltas.initialSyncMs)}.
- The light agents read only the version of each update. A real agent also decodes the table
  (${ms(r.agentDecodeOneTableMs)} for one full table here) and compiles it, on its own node.
`;
}

if (process.argv.includes("--agents-process")) agentsProcess();
else await controllerProcess();
