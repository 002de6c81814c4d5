// HTTP/1.1 to endpoints: one undici Pool (keep-alive) per endpoint address,
// driven through the low-level dispatch() handler API. That avoids the
// per-request streams and promises of request()/stream(), which measured as a
// large share of the forwarding cost (see docs/agent.md).

import { IncomingMessage } from "node:http";
import type { Readable } from "node:stream";
import { PassThrough } from "node:stream";
import { type Dispatcher, Pool } from "undici";
import type { EndpointState } from "../endpoints/backend.ts";
import type { Attempt, AttemptOwner, UpstreamRequest } from "./attempt.ts";
import { isHopByHopResponseHeader } from "./attempt.ts";
import { RequestBody } from "./body.ts";

export interface H1PoolOptions {
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

export class H1Pools {
  readonly #pools = new Map<string, Pool>();
  readonly #opts: H1PoolOptions;

  constructor(opts: H1PoolOptions) {
    this.#opts = opts;
  }

  get(address: string): Pool {
    let pool = this.#pools.get(address);
    if (pool === undefined || pool.closed || pool.destroyed) {
      pool = new Pool(`http://${address}`, {
        // The proxy's own clients bound concurrency; queueing here would only add latency.
        connections: null,
        pipelining: 1,
        keepAliveTimeout: this.#opts.keepAliveTimeoutMs,
        connect: { timeout: this.#opts.connectTimeoutMs },
        // Deadlines belong to the route (timeouts), not to the connection.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      pool.on("connectionError", () => {});
      this.#pools.set(address, pool);
    }
    return pool;
  }

  /** Closes pools of addresses no longer used; running requests finish first. */
  retain(live: ReadonlySet<string>): void {
    for (const [address, pool] of this.#pools) {
      if (!live.has(address)) {
        this.#pools.delete(address);
        pool.close().catch(() => {});
      }
    }
  }

  connections(): number {
    let n = 0;
    for (const pool of this.#pools.values()) n += pool.stats.connected;
    return n;
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}

function latin1(v: Buffer | string): string {
  return typeof v === "string" ? v : v.toString("latin1");
}

const CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "UND_ERR_CONNECT_TIMEOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
]);

export class H1Attempt implements Attempt, Dispatcher.DispatchHandler {
  readonly endpoint: EndpointState;
  settled = false;
  readonly #owner: AttemptOwner;
  readonly #pools: H1Pools;
  #controller: Dispatcher.DispatchController | null = null;
  #aborted = false;
  #body: RequestBody | null = null;
  #sink: PassThrough | null = null;
  #source: Readable | null = null;

  constructor(owner: AttemptOwner, endpoint: EndpointState, pools: H1Pools) {
    this.#owner = owner;
    this.endpoint = endpoint;
    this.#pools = pools;
  }

  start(req: UpstreamRequest): void {
    const headers = req.headers.slice();
    headers.push("host", req.authority);
    let body: Readable | null = null;
    if (req.body instanceof RequestBody) {
      const sink = new PassThrough();
      this.#sink = sink;
      this.#body = req.body;
      req.body.attach(sink);
      body = sink;
    } else if (req.body !== null && !(req.body instanceof IncomingMessage)) {
      // undici destroys a stream body when it is done with it; for an HTTP/2
      // client stream that would reset the stream we still have to answer on.
      const sink = new PassThrough();
      req.body.pipe(sink);
      this.#source = req.body;
      this.#sink = sink;
      body = sink;
    } else {
      body = req.body;
    }
    try {
      this.#pools
        .get(this.endpoint.address)
        .dispatch({ path: req.path, method: req.method, headers, body }, this);
    } catch (err) {
      // Owner callbacks must not run inside start(): the owner is still setting up.
      queueMicrotask(() => this.onResponseError(null, err as Error));
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#aborted) controller.abort(new Error("aborted"));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    if (this.#aborted) return;
    const raw = (controller as unknown as { rawHeaders: (Buffer | string)[] | null }).rawHeaders ?? [];
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = latin1(raw[i] as Buffer | string);
      const lower = name.length >= 7 && name.length <= 17 ? name.toLowerCase() : "";
      if (lower !== "" && isHopByHopResponseHeader(lower)) continue;
      headers.push(name, latin1(raw[i + 1] as Buffer | string));
    }
    this.#owner.onAttemptHead(this, statusCode, headers, false);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#aborted) return;
    if (!this.#owner.onAttemptData(this, chunk)) controller.pause();
  }

  onResponseEnd(): void {
    if (this.#aborted) return;
    this.#detachBody();
    this.#owner.onAttemptEnd(this, null);
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error): void {
    if (this.#aborted) return;
    this.#detachBody();
    const code = (err as NodeJS.ErrnoException).code ?? "";
    this.#owner.onAttemptError(this, err, CONNECT_CODES.has(code) ? "connect" : "reset");
  }

  pause(): void {
    this.#controller?.pause();
  }

  resume(): void {
    this.#controller?.resume();
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#detachBody();
    this.#controller?.abort(new Error("aborted"));
  }

  #detachBody(): void {
    if (this.#body !== null) {
      this.#body.detach();
      this.#body = null;
    }
    if (this.#source !== null && this.#sink !== null) this.#source.unpipe(this.#sink);
    this.#source = null;
    this.#sink?.destroy();
    this.#sink = null;
  }
}
