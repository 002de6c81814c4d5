// Backends and their endpoints at run time. Endpoint state (latency estimate,
// breaker) is keyed by backend id and address and outlives table versions, so
// a new table with the same endpoints does not forget what was learnt about them.

import type { Backend, Endpoint } from "@trellis/api";
import { Protocol } from "@trellis/api";
import type { BreakerGroup, EndpointBreaker } from "./breaker.ts";
import { PeakEwma, pickP2C } from "./ewma.ts";

export class EndpointState {
  readonly backendId: string;
  readonly ip: string;
  readonly port: number;
  /** "ip:port", or "[ip]:port" for IPv6; also the connection-pool key. */
  readonly address: string;
  readonly ewma: PeakEwma;
  readonly breaker: EndpointBreaker;

  constructor(backendId: string, ip: string, port: number, ewma: PeakEwma, breaker: EndpointBreaker) {
    this.backendId = backendId;
    this.ip = ip;
    this.port = port;
    this.address = ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
    this.ewma = ewma;
    this.breaker = breaker;
  }
}

export type UpstreamProtocol = "h1" | "h2" | "client";

export function upstreamProtocolOf(p: Protocol): UpstreamProtocol {
  if (p === Protocol.PROTOCOL_HTTP1) return "h1";
  if (p === Protocol.PROTOCOL_HTTP2 || p === Protocol.PROTOCOL_GRPC) return "h2";
  return "client";
}

const endpointCost = (e: EndpointState): number => e.ewma.cost(performance.now());

export class BackendRuntime {
  readonly id: string;
  readonly protocol: UpstreamProtocol;
  /** Ready endpoints, or the serving-while-terminating ones when none is ready. */
  readonly endpoints: readonly EndpointState[];

  constructor(id: string, protocol: UpstreamProtocol, endpoints: EndpointState[]) {
    this.id = id;
    this.protocol = protocol;
    this.endpoints = endpoints;
  }

  /**
   * P2C over the endpoints whose breaker admits traffic, avoiding `avoid` (the
   * endpoint that just failed) when there is another choice. When every
   * breaker is open, all endpoints are candidates again: a backend is never
   * ejected as a whole.
   */
  pick(random: () => number, avoid: EndpointState | null): EndpointState | null {
    const all = this.endpoints;
    if (all.length === 0) return null;
    if (all.length === 1) return all[0] as EndpointState;
    let candidates: EndpointState[] | readonly EndpointState[] = all;
    let admitted = 0;
    for (const e of all) if (e !== avoid && e.breaker.allows()) admitted++;
    if (admitted !== all.length) {
      if (admitted > 0) {
        const list: EndpointState[] = [];
        for (const e of all) if (e !== avoid && e.breaker.allows()) list.push(e);
        candidates = list;
      } else {
        const list: EndpointState[] = [];
        for (const e of all) if (e !== avoid) list.push(e);
        candidates = list.length > 0 ? list : all;
      }
    }
    return pickP2C(candidates, endpointCost, random(), random());
  }
}

export function usableEndpoints(endpoints: readonly Endpoint[]): Endpoint[] {
  const ready = endpoints.filter((e) => e.ready);
  return ready.length > 0 ? ready : endpoints.filter((e) => e.serving);
}

export interface EndpointRegistryOptions {
  breakers: BreakerGroup;
  ewmaDecayMs: number;
  ewmaInitialMs: number;
}

/** Long-lived endpoint states; a table compile builds backends from it, then commits or discards. */
export class EndpointRegistry {
  readonly #opts: EndpointRegistryOptions;
  readonly #states = new Map<string, EndpointState>();

  constructor(opts: EndpointRegistryOptions) {
    this.#opts = opts;
  }

  /** Builds a backend, reusing existing states; new states are only remembered by commit(). */
  build(b: Backend, created: Map<string, EndpointState>): BackendRuntime {
    const states: EndpointState[] = [];
    for (const e of usableEndpoints(b.endpoints)) {
      const key = `${b.id}|${e.ip}|${e.port}`;
      let s = this.#states.get(key) ?? created.get(key);
      if (s === undefined) {
        const now = performance.now();
        s = new EndpointState(
          b.id,
          e.ip,
          e.port,
          new PeakEwma(this.#opts.ewmaDecayMs, this.#opts.ewmaInitialMs, now),
          this.#opts.breakers.create(`${b.id}@${e.ip}:${e.port}`),
        );
        created.set(key, s);
      }
      states.push(s);
    }
    return new BackendRuntime(b.id, upstreamProtocolOf(b.protocol), states);
  }

  /** Adopts the states of the applied table and shuts down the breakers of endpoints that went away. */
  commit(backends: Iterable<BackendRuntime>): EndpointState[] {
    const live = new Map<string, EndpointState>();
    for (const b of backends) for (const s of b.endpoints) live.set(`${s.backendId}|${s.ip}|${s.port}`, s);
    const gone: EndpointState[] = [];
    for (const [key, s] of this.#states) if (!live.has(key)) gone.push(s);
    for (const s of gone) s.breaker.shutdown();
    this.#states.clear();
    for (const [k, v] of live) this.#states.set(k, v);
    return gone;
  }

  /** Shuts down breakers created for a table that was then rejected. */
  discard(created: Map<string, EndpointState>): void {
    for (const s of created.values()) s.breaker.shutdown();
  }

  states(): IterableIterator<EndpointState> {
    return this.#states.values();
  }

  close(): void {
    for (const s of this.#states.values()) s.breaker.shutdown();
    this.#states.clear();
  }
}
