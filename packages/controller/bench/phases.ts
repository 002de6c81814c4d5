// One benchmark phase per process (see run.ts); prints its figures as JSON.
import { NodeTable } from "@trellis/api";
import { computeTables } from "../src/compute-tables.ts";
import { encodeNodeTable } from "../src/distribute/table-bytes.ts";
import { VersionedTables } from "../src/distribute/versioned-tables.ts";
import { RoutingState } from "../src/routing-state.ts";
import { changedRoute, changedSlice, random, syntheticCluster } from "./synthetic-cluster.ts";

const WARMUP = 20;
const SAMPLES = 100;
const CHURN = 2000;

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error("run with --expose-gc (run.ts does)");
  collect();
  collect();
}

/**
 * Memory after a full GC and a moment of idleness, as a controller sits
 * between events: V8 hands freed pages back to the OS on a background thread
 * shortly after a GC, and reading RSS at once would count them.
 */
async function memory() {
  gc();
  await new Promise((r) => setTimeout(r, 500));
  const m = process.memoryUsage();
  return {
    rssMB: m.rss / 2 ** 20,
    heapUsedMB: m.heapUsed / 2 ** 20,
    heapTotalMB: m.heapTotal / 2 ** 20,
    externalMB: m.external / 2 ** 20,
  };
}

function percentiles(samples: number[]) {
  const xs = [...samples].sort((a, b) => a - b);
  const at = (p: number) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
  return { samples: xs.length, p50: at(50), p90: at(90), p99: at(99), max: xs[xs.length - 1]! };
}

async function controllerPhase() {
  const cluster = syntheticCluster();
  // `objects` stays alive for the whole phase: it stands for the informers'
  // caches, which hold every object the controller watches.
  const objects = cluster.objects;
  const state = new RoutingState();
  const versions = new VersionedTables(1);

  let t = performance.now();
  state.apply(objects.map((object) => ({ object })));
  const applyMs = performance.now() - t;
  t = performance.now();
  versions.update(state.tables());
  const versionMs = performance.now() - t;

  const rand = random(7);
  const routes = cluster.routes;
  const slices = cluster.slices;
  const change = (object: Record<string, unknown>, encode: boolean) => {
    const t0 = performance.now();
    state.apply([{ object }]);
    const { changed: nodes } = versions.update(state.tables());
    if (encode) for (const n of nodes) encodeNodeTable(versions.get(n)!.table);
    return { ms: performance.now() - t0, nodes: nodes.length };
  };
  const routeChanges = (count: number, encode: boolean) => {
    const samples: number[] = [];
    let nodes = 0;
    for (let i = 0; i < count; i++) {
      const index = Math.floor(rand() * routes.length);
      const next = changedRoute(routes[index]!, i);
      routes[index] = next;
      const r = change(next, encode);
      samples.push(r.ms);
      nodes += r.nodes;
    }
    return { samples, meanChangedNodes: nodes / count };
  };
  const sliceChanges = (count: number) => {
    const samples: number[] = [];
    for (let i = 0; i < count; i++) {
      const index = Math.floor(rand() * slices.length);
      const next = changedSlice(slices[index]!, i);
      slices[index] = next;
      samples.push(change(next, false).ms);
    }
    return samples;
  };

  routeChanges(WARMUP, false);
  const profiler = process.env.TRELLIS_BENCH_PROFILE ? await startProfiler() : undefined;
  const routeRun = routeChanges(SAMPLES, false);
  await profiler?.stop(process.env.TRELLIS_BENCH_PROFILE!);
  sliceChanges(WARMUP);
  const sliceSamples = sliceChanges(SAMPLES);
  // Memory before any full-table encoding below: encoding every table is
  // distribution work (next stage) and leaves hundreds of MB of garbage.
  const mem = await memory();
  // Sustained churn: back-to-back changes with no pause for the GC to catch
  // up (far more than a debounced controller sees), sampling RSS as it goes.
  let churnMaxRss = 0;
  const churnStart = performance.now();
  for (let i = 0; i < CHURN; i++) {
    if (i % 2 === 0) routeChanges(1, false);
    else sliceChanges(1);
    if (i % 25 === 0) churnMaxRss = Math.max(churnMaxRss, process.memoryUsage().rss);
  }
  const churn = {
    changes: CHURN,
    ms: performance.now() - churnStart,
    maxRssMB: churnMaxRss / 2 ** 20,
  };
  t = performance.now();
  for (const node of versions.nodes()) versions.get(node)!.digest;
  const digestAllMs = performance.now() - t;
  t = performance.now();
  let bytes = 0;
  for (const node of versions.nodes()) bytes += encodeNodeTable(versions.get(node)!.table).length;
  const encodeAllMs = performance.now() - t;
  const encodeRun = routeChanges(SAMPLES, true);
  const peakRssMB = process.resourceUsage().maxRSS / 1024;
  // Keep the inputs reachable until after the measurement.
  if (objects.length === 0 || routes.length === 0) throw new Error("empty cluster");
  return {
    cluster: {
      Service: cluster.counts.Service,
      Endpoint: cluster.counts.Endpoint,
      Route: (cluster.counts.HTTPRoute ?? 0) + (cluster.counts.GRPCRoute ?? 0),
      Node: cluster.counts.Node,
      Pod: cluster.counts.Pod,
      Namespace: cluster.counts.Namespace,
    },
    initial: { applyMs, versionMs, digestAllMs, encodeAllMs, allTablesMB: bytes / 2 ** 20 },
    routeChange: { ...percentiles(routeRun.samples), meanChangedNodes: routeRun.meanChangedNodes },
    routeChangeWithEncode: percentiles(encodeRun.samples),
    sliceChange: percentiles(sliceSamples),
    memory: { ...mem, peakRssMB },
    churn,
  };
}

async function startProfiler(): Promise<{ stop(path: string): Promise<void> }> {
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 100 });
  await session.post("Profiler.start");
  return {
    async stop(path) {
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(path, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

async function referencePhase() {
  const cluster = syntheticCluster();
  const objects = cluster.objects;
  // Warm up once (JIT), then measure.
  computeTables(objects);
  let t = performance.now();
  const { tables } = computeTables(objects);
  const fullMs = performance.now() - t;
  t = performance.now();
  let bytes = 0;
  for (const table of tables.values()) bytes += NodeTable.encode(table).finish().length;
  const encodeMs = performance.now() - t;
  const mem = await memory();
  if (tables.size === 0) throw new Error("no tables");
  return {
    fullCompute: { ms: fullMs },
    encodeAll: { ms: encodeMs, MB: bytes / 2 ** 20 },
    memory: mem,
  };
}

const phase = process.argv[2];
const result =
  phase === "controller"
    ? await controllerPhase()
    : phase === "reference"
      ? await referencePhase()
      : undefined;
if (!result) throw new Error(`unknown phase ${phase}; use controller or reference`);
process.stdout.write(`${JSON.stringify(result)}\n`);
