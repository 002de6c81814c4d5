// One benchmark phase per process (see run.ts); prints its figures as JSON.
import { NodeTable } from "@trellis/api";
import { computeTables } from "../src/compute-tables.ts";
import { encodeNodeTable } from "../src/distribute/table-bytes.ts";
import { VersionedTables } from "../src/distribute/versioned-tables.ts";
import { RoutingState } from "../src/routing-state.ts";
import { changedRoute, changedSlice, random, syntheticCluster } from "./synthetic-cluster.ts";

const WARMUP = 20;
const SAMPLES = 100;

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error("run with --expose-gc (run.ts does)");
  collect();
  collect();
}

function memory() {
  gc();
  const m = process.memoryUsage();
  return { rssMB: m.rss / 2 ** 20, heapUsedMB: m.heapUsed / 2 ** 20, externalMB: m.external / 2 ** 20 };
}

function percentiles(samples: number[]) {
  const xs = [...samples].sort((a, b) => a - b);
  const at = (p: number) => xs[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
  return { samples: xs.length, p50: at(50), p90: at(90), p99: at(99), max: xs[xs.length - 1]! };
}

function controllerPhase() {
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
  t = performance.now();
  let bytes = 0;
  for (const node of versions.nodes()) bytes += encodeNodeTable(versions.get(node)!.table).length;
  const encodeAllMs = performance.now() - t;

  const rand = random(7);
  const routes = cluster.routes;
  const timeChange = (makeChange: (step: number) => Record<string, unknown>, encode: boolean) => {
    const changed = makeChange(0);
    const t0 = performance.now();
    state.apply([{ object: changed }]);
    const { changed: nodes } = versions.update(state.tables());
    if (encode) for (const n of nodes) encodeNodeTable(versions.get(n)!.table);
    return { ms: performance.now() - t0, nodes: nodes.length };
  };

  const routeSamples: number[] = [];
  const routeEncodeSamples: number[] = [];
  let changedNodes = 0;
  for (let i = 0; i < WARMUP + 2 * SAMPLES; i++) {
    const index = Math.floor(rand() * routes.length);
    const next = changedRoute(routes[index]!, i);
    routes[index] = next;
    const encode = i >= WARMUP + SAMPLES;
    const r = timeChange(() => next, encode);
    if (i < WARMUP) continue;
    if (encode) routeEncodeSamples.push(r.ms);
    else {
      routeSamples.push(r.ms);
      changedNodes += r.nodes;
    }
  }

  const sliceSamples: number[] = [];
  const slices = cluster.slices;
  for (let i = 0; i < WARMUP + SAMPLES; i++) {
    const index = Math.floor(rand() * slices.length);
    const next = changedSlice(slices[index]!, i);
    slices[index] = next;
    const r = timeChange(() => next, false);
    if (i >= WARMUP) sliceSamples.push(r.ms);
  }

  const mem = memory();
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
    initial: { applyMs, versionMs, encodeAllMs, allTablesMB: bytes / 2 ** 20 },
    routeChange: { ...percentiles(routeSamples), meanChangedNodes: changedNodes / routeSamples.length },
    routeChangeWithEncode: percentiles(routeEncodeSamples),
    sliceChange: percentiles(sliceSamples),
    memory: mem,
  };
}

function referencePhase() {
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
  const mem = memory();
  if (tables.size === 0) throw new Error("no tables");
  return {
    fullCompute: { ms: fullMs },
    encodeAll: { ms: encodeMs, MB: bytes / 2 ** 20 },
    memory: mem,
  };
}

const phase = process.argv[2];
const result = phase === "controller" ? controllerPhase() : phase === "reference" ? referencePhase() : undefined;
if (!result) throw new Error(`unknown phase ${phase}; use controller or reference`);
process.stdout.write(`${JSON.stringify(result)}\n`);
