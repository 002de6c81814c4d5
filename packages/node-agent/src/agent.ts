// The agent: applies NodeTable versions and owns listeners, endpoint state and
// upstream pools. A version takes effect for new requests in one synchronous
// step (every listener's plan is swapped in the same tick); requests already
// running keep the plan they started with, and their connections outlive the
// swap.

import type { NodeTable } from "@trellis/api";
import pino, { type Logger } from "pino";
import { EndpointRegistry } from "./endpoints/backend.ts";
import { BreakerGroup, type BreakerSettings } from "./endpoints/breaker.ts";
import { Listener, type ListenerOptions } from "./listener.ts";
import type { AgentMetrics } from "./metrics.ts";
import type { ProxyContext } from "./proxy/exchange.ts";
import { H1Pools } from "./proxy/upstream-h1.ts";
import { H2Pools } from "./proxy/upstream-h2.ts";
import {
  type CompiledTable,
  compileTable,
  type ListenerProtocol,
  type PortPlan,
  TableError,
} from "./table/compile.ts";

export interface AgentOptions {
  /** Address listeners bind; capture redirects to the node's address, so 0.0.0.0 in a cluster. */
  listenAddress?: string;
  logger?: Logger;
  metrics?: AgentMetrics | null;
  /** Adds x-trellis-route / x-trellis-backend to responses. */
  debugHeaders?: boolean;
  /** Uniform [0, 1) source for weighted and P2C choices (tests pass a seeded one). */
  random?: () => number;
  breaker?: Partial<BreakerSettings>;
  /** Peak-EWMA time constant. */
  ewmaDecayMs?: number;
  /** How long a removed listener lets requests in flight finish. */
  drainTimeoutMs?: number;
  /** How long connections to endpoints that left the table are kept for requests still using them. */
  endpointGraceMs?: number;
  sniffTimeoutMs?: number;
  connectTimeoutMs?: number;
  upstreamKeepAliveMs?: number;
  clientKeepAliveMs?: number;
  headersTimeoutMs?: number;
  maxHeaderSize?: number;
  /**
   * Bind listeners with SO_REUSEPORT, so the next agent on the node can bind the same ports during
   * a rolling update (the daemon sets it; agents sharing one process must not).
   */
  reusePort?: boolean;
  /** Called after each applied version with the new port map. */
  onPortMap?: (entries: PortMapEntry[]) => void;
}

/** What capture needs: traffic to serviceIp:port goes to listenerPort. */
export interface PortMapEntry {
  serviceIp: string;
  port: number;
  listenerPort: number;
  /** "namespace/name:port". */
  service: string;
  protocol: ListenerProtocol;
}

export interface EndpointInfo {
  backend: string;
  address: string;
  breaker: "closed" | "open" | "half_open";
  latencyEstimateMs: number;
  pending: number;
}

export interface ApplyResult {
  version: { epoch: number; number: number };
  added: string[];
  removed: string[];
}

export class Agent {
  readonly log: Logger;
  readonly metrics: AgentMetrics | null;
  readonly #opts: Required<Omit<AgentOptions, "logger" | "metrics" | "onPortMap" | "breaker">> &
    Pick<AgentOptions, "onPortMap">;
  readonly #breakers: BreakerGroup;
  readonly #registry: EndpointRegistry;
  readonly #ctx: ProxyContext;
  readonly #listenerOpts: ListenerOptions;
  readonly #listeners = new Map<string, Listener>();
  readonly #draining = new Set<Listener>();
  /** "serviceIp|port" → listener port of the agent this one replaces (see adoptPorts). */
  readonly #adopted = new Map<string, number>();
  /** Every listener port in #adopted: not to be taken for a service port it does not belong to. */
  readonly #adoptedPorts = new Set<number>();
  #table: CompiledTable | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #retireTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: AgentOptions = {}) {
    this.log = opts.logger ?? pino({ level: "info" });
    this.metrics = opts.metrics ?? null;
    this.#opts = {
      listenAddress: opts.listenAddress ?? "0.0.0.0",
      debugHeaders: opts.debugHeaders ?? false,
      random: opts.random ?? Math.random,
      ewmaDecayMs: opts.ewmaDecayMs ?? 5_000,
      drainTimeoutMs: opts.drainTimeoutMs ?? 10_000,
      endpointGraceMs: opts.endpointGraceMs ?? 30_000,
      sniffTimeoutMs: opts.sniffTimeoutMs ?? 300,
      connectTimeoutMs: opts.connectTimeoutMs ?? 3_000,
      upstreamKeepAliveMs: opts.upstreamKeepAliveMs ?? 15_000,
      clientKeepAliveMs: opts.clientKeepAliveMs ?? 60_000,
      headersTimeoutMs: opts.headersTimeoutMs ?? 30_000,
      maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024,
      reusePort: opts.reusePort ?? false,
      onPortMap: opts.onPortMap,
    };
    this.#breakers = new BreakerGroup(opts.breaker);
    this.#registry = new EndpointRegistry({
      breakers: this.#breakers,
      ewmaDecayMs: this.#opts.ewmaDecayMs,
      ewmaInitialMs: 0,
    });
    this.#ctx = {
      log: this.log,
      metrics: this.metrics,
      random: this.#opts.random,
      debugHeaders: this.#opts.debugHeaders,
      h1: new H1Pools({
        connectTimeoutMs: this.#opts.connectTimeoutMs,
        keepAliveTimeoutMs: this.#opts.upstreamKeepAliveMs,
        maxResponseHeaderSize: 64 * 1024,
      }),
      h2: new H2Pools({ connectTimeoutMs: this.#opts.connectTimeoutMs, maxSessionsPerEndpoint: 4 }),
    };
    this.#listenerOpts = {
      sniffTimeoutMs: this.#opts.sniffTimeoutMs,
      keepAliveTimeoutMs: this.#opts.clientKeepAliveMs,
      headersTimeoutMs: this.#opts.headersTimeoutMs,
      maxHeaderSize: this.#opts.maxHeaderSize,
      reusePort: this.#opts.reusePort,
    };
    this.metrics?.setSources({
      upstreamConnections: () => ({ http1: this.#ctx.h1.connections(), http2: this.#ctx.h2.sessions() }),
      breakerStates: () => this.#breakerStates(),
      listeners: () => this.#listeners.size,
    });
  }

  /** The applied version, or null before the first table. */
  get version(): { epoch: number; number: number } | null {
    return this.#table === null ? null : { ...this.#table.version };
  }

  get table(): CompiledTable | null {
    return this.#table;
  }

  /**
   * Applies a table. Versions are applied one at a time in call order. On a
   * TableError (an inconsistent table, or no free listener port) nothing
   * changes and the previous version keeps serving.
   */
  apply(table: NodeTable): Promise<ApplyResult> {
    const run = this.#queue.then(() => this.#apply(table));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #apply(table: NodeTable): Promise<ApplyResult> {
    if (this.#closed) throw new Error("agent is closed");
    let compiled: CompiledTable;
    try {
      compiled = compileTable(table, this.#registry);
    } catch (err) {
      this.metrics?.tableRejected();
      this.log.warn({ err, version: table.version }, "table rejected");
      throw err;
    }
    const opened = new Map<string, Listener>();
    const used = new Set<number>();
    for (const [key, l] of this.#listeners) {
      if (compiled.ports.has(key) && inRange(l.port, compiled)) used.add(l.port);
    }
    // With SO_REUSEPORT a second bind of a port this process still holds would succeed, and the
    // kernel would split that port's connections between two meanings until the swap below.
    for (const l of this.#listeners.values()) if (!compiled.ports.has(l.key)) used.add(l.port);
    for (const l of this.#draining) used.add(l.port);
    try {
      for (const [key, plan] of compiled.ports) {
        const existing = this.#listeners.get(key);
        if (existing !== undefined && inRange(existing.port, compiled)) continue;
        const l = await this.#openListener(plan, compiled, used);
        used.add(l.port);
        opened.set(key, l);
      }
    } catch (err) {
      await Promise.all([...opened.values()].map((l) => l.close()));
      this.#registry.discard(compiled.createdEndpoints);
      this.metrics?.tableRejected();
      this.log.warn({ err, version: table.version }, "table rejected");
      throw err;
    }

    // The swap: synchronous, so no request can see a mix of versions.
    const removed: Listener[] = [];
    for (const [key, l] of this.#listeners) {
      const plan = compiled.ports.get(key);
      if (plan === undefined || opened.has(key)) {
        removed.push(l);
        continue;
      }
      l.plan = plan;
      l.table = compiled;
    }
    for (const l of removed) this.#listeners.delete(l.key);
    for (const [key, l] of opened) this.#listeners.set(key, l);
    this.#table = compiled;
    this.#registry.commit(compiled.backends.values());

    for (const l of removed) {
      this.#draining.add(l);
      void l.drain(this.#opts.drainTimeoutMs).then(() => this.#draining.delete(l));
    }
    this.#scheduleRetire();
    this.metrics?.tableApplied(compiled.version.epoch, compiled.version.number);
    const result: ApplyResult = {
      version: { ...compiled.version },
      added: [...opened.keys()].filter((k) => !removed.some((l) => l.key === k)),
      removed: removed.filter((l) => !compiled.ports.has(l.key)).map((l) => l.key),
    };
    this.log.info(
      {
        version: compiled.versionLabel,
        listeners: this.#listeners.size,
        backends: compiled.backends.size,
        added: result.added,
        removed: result.removed,
      },
      "table applied",
    );
    this.#opts.onPortMap?.(this.portMap());
    return result;
  }

  /**
   * Listener ports of the agent this one replaces (the node's programmed service-port map), so
   * both bind the same port for the same service port while they overlap during a rolling
   * update, and this one never binds a port the other uses for a different service port.
   * Call before the first apply.
   */
  adoptPorts(entries: readonly { serviceIp: string; port: number; listenerPort: number }[]): void {
    for (const e of entries) {
      this.#adopted.set(`${e.serviceIp}|${e.port}`, e.listenerPort);
      this.#adoptedPorts.add(e.listenerPort);
    }
  }

  async #openListener(plan: PortPlan, table: CompiledTable, used: Set<number>): Promise<Listener> {
    const mine = plan.clusterIps
      .map((ip) => this.#adopted.get(`${ip}|${plan.port}`))
      .find((p) => p !== undefined);
    const candidates: number[] = [];
    if (mine !== undefined && mine >= table.listenerPortMin && mine <= table.listenerPortMax)
      candidates.push(mine);
    for (let port = table.listenerPortMin; port <= table.listenerPortMax; port++)
      if (port !== mine && !this.#adoptedPorts.has(port)) candidates.push(port);
    for (const port of candidates) {
      if (used.has(port)) continue;
      try {
        return await Listener.open(
          this.#ctx,
          this.#listenerOpts,
          this.#opts.listenAddress,
          port,
          plan,
          table,
        );
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EADDRINUSE" || code === "EACCES") continue;
        throw new TableError(
          `cannot listen on ${this.#opts.listenAddress}:${port}: ${(err as Error).message}`,
        );
      }
    }
    throw new TableError(
      `no free listener port in ${table.listenerPortMin}..${table.listenerPortMax} for ${plan.key}`,
    );
  }

  /**
   * Connection pools to endpoints that left the table are closed after a
   * grace period, so retries and mirrors of requests that started on the old
   * version still find them.
   */
  #scheduleRetire(): void {
    if (this.#retireTimer !== null) clearTimeout(this.#retireTimer);
    this.#retireTimer = setTimeout(() => {
      this.#retireTimer = null;
      const live = new Set<string>();
      for (const b of this.#table?.backends.values() ?? []) for (const e of b.endpoints) live.add(e.address);
      this.#ctx.h1.retain(live);
      this.#ctx.h2.retain(live);
    }, this.#opts.endpointGraceMs);
    this.#retireTimer.unref();
  }

  /** Service VIP:port → listener port, for capture. */
  portMap(): PortMapEntry[] {
    const out: PortMapEntry[] = [];
    for (const l of this.#listeners.values()) {
      for (const ip of l.plan.clusterIps) {
        out.push({
          serviceIp: ip,
          port: l.plan.port,
          listenerPort: l.port,
          service: l.key,
          protocol: l.plan.protocol,
        });
      }
    }
    out.sort((a, b) => (a.serviceIp < b.serviceIp ? -1 : a.serviceIp > b.serviceIp ? 1 : a.port - b.port));
    return out;
  }

  /** Listener port per service port key ("namespace/name:port"). */
  listenerPorts(): Map<string, number> {
    const m = new Map<string, number>();
    for (const [key, l] of this.#listeners) m.set(key, l.port);
    return m;
  }

  /** Every endpoint's breaker state, load estimate and requests in flight (for debugging). */
  endpointStates(): EndpointInfo[] {
    const now = performance.now();
    const out: EndpointInfo[] = [];
    for (const s of this.#registry.states()) {
      out.push({
        backend: s.backendId,
        address: s.address,
        breaker: s.breaker.state,
        latencyEstimateMs: Math.round(s.ewma.estimate(now) * 1000) / 1000,
        pending: s.ewma.pending,
      });
    }
    return out;
  }

  #breakerStates(): { backend: string; state: string; count: number }[] {
    const counts = new Map<string, number>();
    for (const s of this.#registry.states()) {
      const k = `${s.backendId}\0${s.breaker.state}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return [...counts].map(([k, count]) => {
      const [backend, state] = k.split("\0") as [string, string];
      return { backend, state, count };
    });
  }

  /**
   * Graceful stop (SIGTERM): every listener stops accepting at once (with SO_REUSEPORT another
   * agent on the same ports takes the new connections), requests in flight finish, HTTP/1.1
   * connections close after their current response or once idle, HTTP/2 sessions get GOAWAY;
   * whatever is left after `drainMs` is cut. Resolves when the agent is closed.
   */
  async shutdown(drainMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    const all = [...this.#listeners.values(), ...this.#draining];
    this.#listeners.clear();
    await Promise.all(all.map((l) => l.drain(drainMs)));
    this.#draining.clear();
    await this.#release();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    if (this.#retireTimer !== null) clearTimeout(this.#retireTimer);
    await Promise.all([...this.#listeners.values(), ...this.#draining].map((l) => l.close()));
    this.#listeners.clear();
    this.#draining.clear();
    await this.#release();
  }

  async #release(): Promise<void> {
    if (this.#retireTimer !== null) clearTimeout(this.#retireTimer);
    await Promise.all([this.#ctx.h1.close(), this.#ctx.h2.close()]);
    this.#registry.close();
    this.#breakers.close();
  }
}

function inRange(port: number, t: CompiledTable): boolean {
  return port >= t.listenerPortMin && port <= t.listenerPortMax;
}
