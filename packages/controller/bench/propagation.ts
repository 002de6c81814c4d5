// Propagation benchmark: `node packages/controller/bench/propagation.ts [--changes N] [--warmup N]`.
//
// The controller side is what trellis-controller runs: RoutingState and
// VersionedTables over the synthetic cluster (bench/synthetic-cluster.ts:
// 1,000 services, 10,000 endpoints, 2,000 routes, 100 nodes), and the agent
// channel's real gRPC server (serveAgentChannel: TLS, AgentStreamHub,
// AgentRegistry); only TokenReview is replaced (a token is its node's name).
//
// The agents are 100 light clients in a second process (the controller keeps
// its own core, as it would in a cluster): each has its own TLS connection,
// speaks the real protocol (Hello, then an Ack per TableUpdate, encoded with
// the generated codecs), but reads only the version from each update instead
// of decoding and compiling the table; a real agent does that on its own node,
// in parallel with the others (its cost is reported separately below).
//
// For each change (a route change, then an EndpointSlice change) the clock
// runs from RoutingState.apply() of the changed object until the controller
// has received the ACK of the new version from every agent whose table
// changed: recompute, versioning, encoding, TLS, transfer and the ACK's way
// back. The controller's debounce (25 ms by default) comes on top. Bytes are
// the serialized ControllerMessages the agents received for that change.
// Results: bench/results/propagation.{json,md}.
import { execFileSync, fork } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { AgentMessage, AgentStreamService, LocalPod, NodeTable, type TableVersion } from "@trellis/api";
import pino from "pino";
import { serveAgentChannel } from "../src/distribute/agent-channel.ts";
import { createCA } from "../src/distribute/channel-pki.ts";
import { backendBytes, encodeNodeTable, serviceBytes } from "../src/distribute/table-bytes.ts";
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

/** ControllerMessage → table_update → table → version, without decoding the rest. */
function lightDecode(buf: Buffer): Arrival {
  const update = child(buf, 0, buf.length, 1);
  const table = update && child(buf, update[0], update[1], 1);
  const version = table && child(buf, table[0], table[1], 1);
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
  /** From apply() until the last ACK arrived. */
  totalMs: number;
  cpuMs: number;
  nodes: string[];
  versions: Map<string, number>;
  /** What a delta against the agent's previous table would carry (estimate), per node. */
  deltaBytes: number[];
}

/**
 * Bytes of the parts of `next` that `prev` does not hold (by identity: parts
 * are shared, immutable objects), plus a key per removed part: the size a
 * delta message carrying upserts and removals would have.
 */
function deltaEstimate(prev: NodeTable, next: NodeTable): number {
  let bytes = 32; // version, base version, framing
  const diff = <T extends object>(
    a: readonly T[],
    b: readonly T[],
    size: (x: T) => number,
    key: (x: T) => number,
  ) => {
    const before = new Set(a);
    const after = new Set(b);
    for (const x of b) if (!before.has(x)) bytes += size(x) + 4;
    for (const x of a) if (!after.has(x)) bytes += key(x) + 4;
  };
  diff(
    prev.services,
    next.services,
    (s) => serviceBytes(s).length,
    (s) => s.namespace.length + s.name.length + 1,
  );
  diff(
    prev.backends,
    next.backends,
    (b) => backendBytes(b).length,
    (b) => b.id.length,
  );
  diff(
    prev.localPods,
    next.localPods,
    (p) => LocalPod.encode(p).finish().length,
    (p) => p.namespace.length + p.name.length + 1,
  );
  if (prev.settings !== next.settings) bytes += 16;
  if (prev.capturedNamespaces !== next.capturedNamespaces)
    bytes += next.capturedNamespaces.reduce((n, s) => n + s.length + 2, 0);
  return bytes;
}

async function controllerProcess(): Promise<void> {
  const { values } = parseArgs({
    options: {
      changes: { type: "string", default: "100" },
      warmup: { type: "string", default: "5" },
    },
  });
  const changes = Number(values.changes);
  const warmup = Number(values.warmup);

  process.stderr.write("building the cluster and the tables…\n");
  const cluster = syntheticCluster();
  const state = new RoutingState();
  const versions = new VersionedTables(Date.now());
  state.apply(cluster.objects.map((object) => ({ object })));
  versions.update(state.tables());
  const nodes = versions.nodes();

  const ca = await createCA("trellis-bench-ca");
  const channel = await serveAgentChannel({
    log: pino({ level: "silent" }),
    address: "127.0.0.1:0",
    ca,
    serverNames: [SERVER_NAME],
    currentTable: (node) => versions.get(node)?.table,
    authenticate: async (token) => ({ node: token, pod: `bench/agent-${token}` }),
  });
  const { registry, hub } = channel;
  const waitAll = (list: readonly string[]) =>
    Promise.all(list.map((n) => registry.waitForAck(n, versions.get(n)!.table.version!)));

  process.stderr.write(`starting ${nodes.length} light agents…\n`);
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
  const initialMs = performance.now() - t0;

  const rand = random(11);
  const routes = cluster.routes;
  const slices = cluster.slices;
  const change = async (object: Record<string, unknown>): Promise<ChangeSample> => {
    const previous = new Map(nodes.map((n) => [n, versions.get(n)!.table]));
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    state.apply([{ object }]);
    const { changed } = versions.update(state.tables());
    const recomputeMs = performance.now() - start;
    hub.publish(changed);
    await waitAll(changed);
    const totalMs = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    return {
      recomputeMs,
      totalMs,
      cpuMs: (cpu.user + cpu.system) / 1000,
      nodes: changed,
      versions: new Map(changed.map((n) => [n, versions.get(n)!.table.version!.number])),
      deltaBytes: changed.map((n) => deltaEstimate(previous.get(n)!, versions.get(n)!.table)),
    };
  };
  const routeChange = (i: number) => {
    const index = Math.floor(rand() * routes.length);
    routes[index] = changedRoute(routes[index]!, i);
    return change(routes[index]!);
  };
  const sliceChange = (i: number) => {
    const index = Math.floor(rand() * slices.length);
    slices[index] = changedSlice(slices[index]!, i);
    return change(slices[index]!);
  };
  const run = async (kind: string, one: (i: number) => Promise<ChangeSample>) => {
    for (let i = 0; i < warmup; i++) await one(i);
    const samples: ChangeSample[] = [];
    for (let i = 0; i < changes; i++) {
      samples.push(await one(warmup + i));
      if ((i + 1) % 10 === 0) process.stderr.write(`  ${kind}: ${i + 1}/${changes}\n`);
    }
    return samples;
  };
  process.stderr.write(`${changes} route changes…\n`);
  const routeSamples = await run("route changes", routeChange);
  process.stderr.write(`${changes} EndpointSlice changes…\n`);
  const sliceSamples = await run("EndpointSlice changes", sliceChange);

  agents.send({ type: "report" } satisfies ToAgents);
  const report = await new Promise<FromAgents>((resolve) => agents.once("message", resolve));
  agents.send({ type: "stop" } satisfies ToAgents);
  await channel.stop();

  const received = new Map(Object.entries(report.received).map(([n, list]) => [n, new Map(list)]));
  const summarise = (samples: readonly ChangeSample[]) => {
    const bytesPerAgent: number[] = [];
    for (const s of samples) {
      let sum = 0;
      for (const n of s.nodes) sum += received.get(n)?.get(s.versions.get(n)!) ?? 0;
      if (s.nodes.length) bytesPerAgent.push(sum / s.nodes.length);
    }
    const deltas = samples.flatMap((s) => s.deltaBytes);
    return {
      propagationMs: percentiles(samples.map((s) => s.totalMs)),
      recomputeMs: percentiles(samples.map((s) => s.recomputeMs)),
      controllerCpuMsPerChange: mean(samples.map((s) => s.cpuMs)),
      agentsPerChange: mean(samples.map((s) => s.nodes.length)),
      bytesPerAgentPerChange: mean(bytesPerAgent),
      bytesPerChangeAllAgents: mean(samples.map((s, i) => (bytesPerAgent[i] ?? 0) * s.nodes.length)),
      deltaEstimateBytesPerAgent: { mean: mean(deltas), max: Math.max(0, ...deltas) },
    };
  };

  // What one real agent would do with a table on its node (not part of the figures above).
  const sample = versions.get(nodes[0]!)!.table;
  const encoded = encodeNodeTable(sample);
  NodeTable.decode(encoded);
  let t = performance.now();
  for (let i = 0; i < 5; i++) NodeTable.decode(encoded);
  const decodeMs = (performance.now() - t) / 5;
  t = performance.now();
  for (let i = 0; i < 5; i++)
    AgentMessage.encode({ message: { $case: "ack", ack: { version: sample.version } } });
  const tableBytes = nodes.map((n) => encodeNodeTable(versions.get(n)!.table).length);

  const result = {
    measuredAt: new Date().toISOString(),
    command: `node packages/controller/bench/propagation.ts${changes !== 100 ? ` --changes ${changes}` : ""}${warmup !== 5 ? ` --warmup ${warmup}` : ""}`,
    machine: { cpu: os.cpus()[0]?.model ?? "?", cpus: os.cpus().length, node: process.version },
    target: { p99Ms: TARGET_P99_MS },
    cluster: {
      services: cluster.counts.Service,
      endpoints: cluster.counts.Endpoint,
      routes: (cluster.counts.HTTPRoute ?? 0) + (cluster.counts.GRPCRoute ?? 0),
      nodes: nodes.length,
    },
    agents: nodes.length,
    encoding: "full table per version",
    initialSyncMs: initialMs,
    tableBytes: { mean: mean(tableBytes), max: Math.max(...tableBytes) },
    agentDecodeOneTableMs: decodeMs,
    routeChange: summarise(routeSamples),
    endpointChange: summarise(sliceSamples),
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

type Result = {
  measuredAt: string;
  command: string;
  machine: { cpu: string; cpus: number; node: string };
  cluster: Record<string, number | undefined>;
  agents: number;
  encoding: string;
  initialSyncMs: number;
  tableBytes: { mean: number; max: number };
  agentDecodeOneTableMs: number;
  routeChange: Summary;
  endpointChange: Summary;
};
type Summary = {
  propagationMs: ReturnType<typeof percentiles>;
  recomputeMs: ReturnType<typeof percentiles>;
  controllerCpuMsPerChange: number;
  agentsPerChange: number;
  bytesPerAgentPerChange: number;
  bytesPerChangeAllAgents: number;
  deltaEstimateBytesPerAgent: { mean: number; max: number };
};

function markdown(r: Result): string {
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  const kb = (x: number) =>
    x >= 1024 * 1024 ? `${(x / 2 ** 20).toFixed(2)} MB` : `${(x / 1024).toFixed(1)} KB`;
  const verdict = (p99: number) =>
    p99 < TARGET_P99_MS
      ? "met"
      : `missed by ${ms(p99 - TARGET_P99_MS)} (${(p99 / TARGET_P99_MS).toFixed(1)}×)`;
  const row = (name: string, s: Summary) =>
    `| ${name} | ${ms(s.propagationMs.p50)} | **${ms(s.propagationMs.p99)}** | ${verdict(s.propagationMs.p99)} | ${ms(s.recomputeMs.p50)} | ${ms(s.controllerCpuMsPerChange)} | ${s.agentsPerChange.toFixed(1)} | ${kb(s.bytesPerAgentPerChange)} | ${kb(s.bytesPerChangeAllAgents)} | ${kb(s.deltaEstimateBytesPerAgent.mean)} |`;
  return `# Propagation benchmark

Measured ${r.measuredAt} with \`${r.command}\` on ${r.machine.cpu} (${r.machine.cpus} CPUs), Node ${r.machine.node}.

${r.cluster.services} services, ${r.cluster.endpoints} endpoints, ${r.cluster.routes} routes, ${r.cluster.nodes} nodes; ${r.agents} light agents
(one TLS connection each, in a second process) on the controller's real agent channel.
Encoding: ${r.encoding}. Target: p99 < ${TARGET_P99_MS} ms from the change to every affected agent's ACK.

| change | p50 | p99 (${r.routeChange.propagationMs.samples} changes) | target | recompute p50 | controller CPU per change | agents with a new version | bytes per agent per change | bytes per change, all agents | a delta would carry (per agent, estimate) |
|---|---|---|---|---|---|---|---|---|---|
${row("route change", r.routeChange)}
${row("endpoint change (one endpoint flips ready)", r.endpointChange)}

- Time runs from \`RoutingState.apply()\` of the changed object until the controller has the ACK of the new
  version from every agent whose table changed; the controller's debounce (25 ms by default) comes on top.
- Table size: ${kb(r.tableBytes.mean)} per node on average (max ${kb(r.tableBytes.max)}); first sync of all ${r.agents} agents took ${ms(r.initialSyncMs)}.
- The light agents read only the version of each update. A real agent also decodes the table
  (${ms(r.agentDecodeOneTableMs)} for one full table here) and compiles it, on its own node.
- "A delta would carry": the encoded Service, Backend and LocalPod parts of the new table that the agent's
  previous table does not hold (parts are shared immutable objects, so this is an identity diff), plus a key
  per removed part and a version header.
`;
}

if (process.argv.includes("--agents-process")) agentsProcess();
else await controllerProcess();
