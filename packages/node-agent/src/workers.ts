// Proxy worker threads (`--workers N`): N − 1 more threads, each with its own
// Agent serving the same table on the same listener ports. Every listener is
// bound with SO_REUSEPORT, so the kernel spreads new connections over the
// threads; a connection then stays on the thread that accepted it.
//
// The main thread stays the only control plane: it reads the table, picks the
// listener ports, programs capture and serves the admin port. After it has
// applied a version it hands the same table and its port map to every worker,
// which binds exactly those ports (Agent.adoptPorts). Each thread keeps its own
// upstream pools, breakers and load estimates, as Envoy's workers do; /metrics
// adds the threads' series up and the per-backend counters for the controller
// are merged into the main thread's.

import { type MessagePort, parentPort, Worker, workerData } from "node:worker_threads";
import { type BackendStats, NodeTable } from "@trellis/api";
import pino, { type Logger } from "pino";
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from "prom-client";
import { Agent, type AgentOptions, type PortMapEntry } from "./agent.ts";
import { AgentMetrics } from "./metrics.ts";

const RESTART_DELAY_MS = 1_000;

/** What a worker is started with (structured-clone safe). */
export interface ProxyWorkerData {
  trellisProxyWorker: true;
  index: number;
  logLevel: string;
  /** How often the worker sends its per-backend counters to the main thread (0 = never). */
  statsEveryMs: number;
  agent: Pick<
    AgentOptions,
    "listenAddress" | "debugHeaders" | "drainTimeoutMs" | "connectTimeoutMs" | "breaker"
  >;
}

type ToWorker =
  | { kind: "apply"; table: Uint8Array; ports: PortMapEntry[] }
  | { kind: "metrics"; id: number }
  | { kind: "shutdown"; drainMs: number };

type FromWorker =
  | { kind: "applied"; version: string; mismatched: string[] }
  | { kind: "rejected"; version: string; error: string }
  | { kind: "metrics"; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] }
  | { kind: "stats"; stats: BackendStats };

export function isProxyWorker(): boolean {
  return parentPort !== null && (workerData as Partial<ProxyWorkerData> | null)?.trellisProxyWorker === true;
}

/** The worker side: an Agent driven by the main thread's messages. */
export function runProxyWorker(): void {
  const data = workerData as ProxyWorkerData;
  const port = parentPort as MessagePort;
  const log = pino({ level: data.logLevel, base: { component: "trellis-agent", worker: data.index } });
  const metrics = new AgentMetrics();
  const agent = new Agent({ ...data.agent, logger: log, metrics, reusePort: true });
  const send = (m: FromWorker): void => port.postMessage(m);
  const stats =
    data.statsEveryMs > 0
      ? setInterval(() => {
          const s = metrics.backendStats.take();
          if (s !== undefined) send({ kind: "stats", stats: s });
        }, data.statsEveryMs)
      : null;
  port.on("message", (m: ToWorker) => {
    if (m.kind === "apply") {
      const table = NodeTable.decode(m.table);
      const label = `${table.version?.epoch ?? 0}/${table.version?.number ?? 0}`;
      agent.adoptPorts(m.ports);
      agent.apply(table).then(
        () => {
          // A port the main thread did not pick gets no captured traffic: say so rather than serve nothing silently.
          const mine = agent.listenerPorts();
          const mismatched = m.ports
            .filter((e) => mine.get(e.service) !== e.listenerPort)
            .map((e) => `${e.service}: ${e.listenerPort} ≠ ${mine.get(e.service) ?? "none"}`);
          send({ kind: "applied", version: label, mismatched });
        },
        (err: Error) => send({ kind: "rejected", version: label, error: err.message }),
      );
    } else if (m.kind === "metrics") {
      void metrics.registry
        .getMetricsAsJSON()
        .then((json) => send({ kind: "metrics", id: m.id, metrics: json }));
    } else {
      if (stats !== null) clearInterval(stats);
      // process.exit in a worker ends only its thread.
      void agent.shutdown(m.drainMs).then(() => process.exit(0));
    }
  });
}

export interface ProxyWorkersOptions {
  /** How many threads besides the main one. */
  count: number;
  /** The module that calls runProxyWorker() when isProxyWorker() (the CLI's own file). */
  entry: URL;
  data: Omit<ProxyWorkerData, "trellisProxyWorker" | "index">;
  log: Logger;
  /** Where workers' per-backend counters go. */
  onStats: (stats: BackendStats) => void;
}

interface Slot {
  worker: Worker;
  index: number;
}

/** The main thread's side: starts the workers, hands them tables, collects their metrics. */
export class ProxyWorkers {
  readonly #o: ProxyWorkersOptions;
  readonly #slots: Slot[] = [];
  readonly #pendingMetrics = new Map<number, (m: MetricObjectWithValues<MetricValue<string>>[]) => void>();
  #nextId = 0;
  /** The last table applied by the main thread, for a worker that is (re)started later. */
  #last: { table: Uint8Array; ports: PortMapEntry[] } | null = null;
  #stopping = false;

  constructor(o: ProxyWorkersOptions) {
    this.#o = o;
    for (let i = 1; i <= o.count; i++) this.#slots.push(this.#start(i));
  }

  #start(index: number): Slot {
    const data: ProxyWorkerData = { ...this.#o.data, trellisProxyWorker: true, index };
    const worker = new Worker(this.#o.entry, { workerData: data });
    const slot: Slot = { worker, index };
    worker.on("message", (m: FromWorker) => this.#onMessage(slot, m));
    worker.on("error", (err) => this.#o.log.error({ worker: index, err }, "proxy worker failed"));
    worker.on("exit", (code) => {
      if (this.#stopping) return;
      // Its listeners left the SO_REUSEPORT groups with it; the others keep serving meanwhile.
      // The pause keeps a worker that dies on every table from spinning.
      this.#o.log.error({ worker: index, code, restartInMs: RESTART_DELAY_MS }, "proxy worker exited");
      setTimeout(() => {
        const at = this.#slots.indexOf(slot);
        if (!this.#stopping && at !== -1) this.#slots[at] = this.#start(index);
      }, RESTART_DELAY_MS).unref();
    });
    if (this.#last !== null) worker.postMessage({ kind: "apply", ...this.#last } satisfies ToWorker);
    return slot;
  }

  #onMessage(slot: Slot, m: FromWorker): void {
    const log = this.#o.log;
    switch (m.kind) {
      case "applied":
        if (m.mismatched.length > 0)
          log.warn(
            { worker: slot.index, version: m.version, ports: m.mismatched },
            "proxy worker bound other ports",
          );
        else log.debug({ worker: slot.index, version: m.version }, "proxy worker applied table");
        break;
      case "rejected":
        log.warn(
          { worker: slot.index, version: m.version, err: m.error },
          "proxy worker rejected a table the main thread applied",
        );
        break;
      case "metrics":
        this.#pendingMetrics.get(m.id)?.(m.metrics);
        this.#pendingMetrics.delete(m.id);
        break;
      case "stats":
        this.#o.onStats(m.stats);
        break;
    }
  }

  /** Hands a table the main thread has applied, with its port map, to every worker. */
  apply(table: NodeTable, ports: PortMapEntry[]): void {
    this.#last = { table: NodeTable.encode(table).finish(), ports };
    for (const s of this.#slots) s.worker.postMessage({ kind: "apply", ...this.#last } satisfies ToWorker);
  }

  /**
   * The Prometheus text of `own` plus every worker's registry, series added up (gauges that
   * describe the table, not the traffic, are taken from `own`: their aggregator is "first").
   */
  async metrics(own: AgentMetrics): Promise<string> {
    const parts = await Promise.all([
      own.registry.getMetricsAsJSON(),
      ...this.#slots.map(
        (s) =>
          new Promise<MetricObjectWithValues<MetricValue<string>>[]>((resolve) => {
            const id = this.#nextId++;
            // A worker that does not answer (busy, restarting) must not hold the scrape.
            const timer = setTimeout(() => {
              this.#pendingMetrics.delete(id);
              resolve([]);
            }, 2_000);
            this.#pendingMetrics.set(id, (m) => {
              clearTimeout(timer);
              resolve(m);
            });
            s.worker.postMessage({ kind: "metrics", id } satisfies ToWorker);
          }),
      ),
    ]);
    return AggregatorRegistry.aggregate(parts).metrics();
  }

  /** Graceful stop of every worker (see Agent.shutdown). */
  async shutdown(drainMs: number): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#slots.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.worker.threadId === -1) return resolve();
            s.worker.once("exit", () => resolve());
            s.worker.postMessage({ kind: "shutdown", drainMs } satisfies ToWorker);
          }),
      ),
    );
  }
}
