// HTTP/1.1 to endpoints on plain sockets with a keep-alive pool per endpoint
// address, responses parsed by llhttp. One connection carries one request at a
// time (no pipelining). Idle connections are closed before the server's own
// keep-alive timeout (its `Keep-Alive: timeout=` hint when it sends one), which
// keeps the reuse-a-closing-connection race rare; the Exchange retries that
// case once for requests that may be repeated.

import net from "node:net";
import type { Readable } from "node:stream";
import { Writable } from "node:stream";
import type { EndpointState } from "../endpoints/backend.ts";
import type { Attempt, AttemptOwner, FailureKind, UpstreamRequest } from "./attempt.ts";
import { isHopByHopResponseHeader } from "./attempt.ts";
import { RequestBody } from "./body.ts";
import {
  HTTPParser,
  kOnBody,
  kOnHeadersComplete,
  kOnMessageComplete,
  type NativeParser,
  type OnHeadersComplete,
  RESPONSE,
  STRICT,
} from "./llhttp.ts";

export interface H1PoolOptions {
  connectTimeoutMs: number;
  /** Upper bound for keeping an idle connection (the server's hint may lower it). */
  keepAliveTimeoutMs: number;
  maxResponseHeaderSize: number;
}

const CONNECT_CODES = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL", "ETIMEDOUT"]);
const SWEEP_MS = 500;
/** One read buffer for every upstream socket: a read is parsed completely before the next one. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
/** Request targets and authorities must not smuggle whitespace or control characters onto the request line. */
function unsafeForRequestLine(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}

class Origin {
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly idle: UpstreamConnection[] = [];
  open = 0;

  constructor(ep: EndpointState) {
    this.address = ep.address;
    this.host = ep.ip;
    this.port = ep.port;
  }
}

/** One connection to an endpoint and its response parser. */
class UpstreamConnection {
  readonly socket: net.Socket;
  readonly origin: Origin;
  readonly #parser: NativeParser;
  readonly #pools: H1Pools;
  attempt: H1Attempt | null = null;
  connected = false;
  keepAlive = true;
  idleSince = 0;
  /** Idle limit from the server's Keep-Alive hint, in ms (0 = none given). */
  serverIdleMs = 0;
  #interim = false;
  #error: Error | null = null;
  #closed = false;
  #paused = false;

  constructor(pools: H1Pools, origin: Origin, opts: H1PoolOptions) {
    this.#pools = pools;
    this.origin = origin;
    const parser = new HTTPParser();
    // Reads land in one reusable buffer and go straight to the parser, skipping
    // the Readable machinery; llhttp copies body bytes out, so reuse is safe.
    const socket = net.connect({
      host: origin.host,
      port: origin.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number, buf: Uint8Array): boolean => {
          const r = parser.execute(Buffer.from(buf.buffer, buf.byteOffset, n));
          if (typeof r !== "number") this.#fail(r, "reset");
          return !this.#paused;
        },
      },
    });
    this.socket = socket;
    parser.initialize(RESPONSE, {}, opts.maxResponseHeaderSize, STRICT);
    this.#parser = parser;
    parser[kOnHeadersComplete] = this.#onHeadersComplete;
    parser[kOnBody] = (b: Buffer) => this.attempt?.onBody(b);
    parser[kOnMessageComplete] = this.#onMessageComplete;
    origin.open++;
    const connectTimer = setTimeout(() => {
      if (!this.connected) socket.destroy(Object.assign(new Error("connect timeout"), { code: "ETIMEDOUT" }));
    }, opts.connectTimeoutMs);
    socket.once("connect", () => {
      this.connected = true;
      clearTimeout(connectTimer);
    });
    socket.on("end", () => {
      // EOF ends a close-delimited body; anything else still waiting has failed.
      const r = this.#parser.finish();
      if (r !== undefined && typeof r !== "number") this.#fail(r, "reset");
      this.keepAlive = false;
      socket.destroy();
    });
    socket.on("error", (err) => {
      this.#error = err;
    });
    socket.on("close", () => {
      clearTimeout(connectTimer);
      this.#closed = true;
      origin.open--;
      this.#pools.forget(this);
      const a = this.attempt;
      if (a !== null) {
        this.attempt = null;
        const code = (this.#error as NodeJS.ErrnoException | null)?.code ?? "";
        const kind: FailureKind = !this.connected || CONNECT_CODES.has(code) ? "connect" : "reset";
        a.onConnectionError(this.#error ?? new Error(`connection to ${origin.address} closed`), kind);
      }
      parser.close();
    });
  }

  get usable(): boolean {
    return !this.#closed && !this.socket.destroyed && this.keepAlive;
  }

  // With onread, returning false from the callback stops reading; resume() starts it again.
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.socket.resume();
  }

  #onHeadersComplete: OnHeadersComplete = (_maj, _min, headers, _m, _u, status, _msg, upgrade, keepAlive) => {
    const code = status ?? 0;
    if (code >= 100 && code < 200 && code !== 101) {
      // Interim responses (100 Continue, 103 Early Hints) are not relayed; the real one follows.
      this.#interim = true;
      return 0;
    }
    this.keepAlive = keepAlive && !upgrade;
    const a = this.attempt;
    if (a === null) return 0;
    if (code === 101 || upgrade) {
      this.#fail(new Error("upstream switched protocols unasked"), "reset");
      return 0;
    }
    a.onHead(code, headers ?? [], this);
    return a.expectsNoBody ? 1 : 0;
  };

  #onMessageComplete = (): void => {
    if (this.#interim) {
      this.#interim = false;
      return;
    }
    const a = this.attempt;
    if (a === null) return;
    this.attempt = null;
    a.onComplete(this);
  };

  #fail(err: Error, kind: FailureKind): void {
    this.keepAlive = false;
    const a = this.attempt;
    this.attempt = null;
    this.socket.destroy();
    a?.onConnectionError(err, kind);
  }
}

export class H1Pools {
  readonly #origins = new Map<string, Origin>();
  readonly #opts: H1PoolOptions;
  #tick = 0;
  readonly #sweeper: NodeJS.Timeout;

  constructor(opts: H1PoolOptions) {
    this.#opts = opts;
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS);
    this.#sweeper.unref();
  }

  acquire(ep: EndpointState): UpstreamConnection {
    let origin = this.#origins.get(ep.address);
    if (origin === undefined) {
      origin = new Origin(ep);
      this.#origins.set(ep.address, origin);
    }
    const idle = origin.idle;
    while (idle.length > 0) {
      const c = idle.pop() as UpstreamConnection;
      if (c.usable) return c;
    }
    return new UpstreamConnection(this, origin, this.#opts);
  }

  release(c: UpstreamConnection): void {
    if (!c.usable || this.#origins.get(c.origin.address) !== c.origin) {
      c.socket.destroy();
      return;
    }
    // Paused for backpressure during the last response; the next one needs it flowing.
    c.resume();
    c.idleSince = this.#tick;
    c.origin.idle.push(c);
  }

  forget(c: UpstreamConnection): void {
    const idle = c.origin.idle;
    const i = idle.indexOf(c);
    if (i !== -1) idle.splice(i, 1);
  }

  #sweep(): void {
    this.#tick++;
    const limit = this.#opts.keepAliveTimeoutMs;
    for (const origin of this.#origins.values()) {
      for (let i = origin.idle.length - 1; i >= 0; i--) {
        const c = origin.idle[i] as UpstreamConnection;
        const max = c.serverIdleMs > 0 ? Math.min(limit, c.serverIdleMs) : limit;
        if ((this.#tick - c.idleSince) * SWEEP_MS >= max) {
          origin.idle.splice(i, 1);
          c.socket.destroy();
        }
      }
    }
  }

  /** Closes idle connections to addresses no longer used; busy ones close when their request ends. */
  retain(live: ReadonlySet<string>): void {
    for (const [address, origin] of this.#origins) {
      if (live.has(address)) continue;
      this.#origins.delete(address);
      for (const c of origin.idle) c.socket.destroy();
      origin.idle.length = 0;
    }
  }

  connections(): number {
    let n = 0;
    for (const o of this.#origins.values()) n += o.open;
    return n;
  }

  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    for (const o of this.#origins.values()) for (const c of o.idle) c.socket.destroy();
    this.#origins.clear();
  }
}

export class H1Attempt implements Attempt {
  readonly endpoint: EndpointState;
  settled = false;
  /** HEAD: the response has headers only. */
  expectsNoBody = false;
  readonly #owner: AttemptOwner;
  readonly #pools: H1Pools;
  #conn: UpstreamConnection | null = null;
  #aborted = false;
  #chunked = false;
  #requestDone = false;
  #source: Readable | null = null;
  #body: RequestBody | null = null;

  constructor(owner: AttemptOwner, endpoint: EndpointState, pools: H1Pools) {
    this.#owner = owner;
    this.endpoint = endpoint;
    this.#pools = pools;
  }

  start(req: UpstreamRequest): void {
    if (unsafeForRequestLine(req.path) || unsafeForRequestLine(req.authority) || req.authority === "") {
      queueMicrotask(() =>
        this.#owner.onAttemptError(this, new Error("request target unusable for HTTP/1.1"), "reset"),
      );
      return;
    }
    this.expectsNoBody = req.method === "HEAD";
    const conn = this.#pools.acquire(this.endpoint);
    conn.attempt = this;
    this.#conn = conn;
    let head = `${req.method} ${req.path} HTTP/1.1\r\nhost: ${req.authority}\r\n`;
    const h = req.headers;
    let hasLength = false;
    for (let i = 0; i < h.length; i += 2) {
      const name = h[i] as string;
      if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
      head += `${name}: ${h[i + 1] as string}\r\n`;
    }
    const body = req.body;
    if (body !== null && !hasLength) {
      this.#chunked = true;
      head += "transfer-encoding: chunked\r\n";
    }
    const socket = conn.socket;
    if (body === null) {
      socket.write(`${head}\r\n`, "latin1");
      this.#requestDone = true;
      return;
    }
    socket.write(`${head}\r\n`, "latin1");
    if (body instanceof RequestBody) {
      this.#body = body;
      body.attach(this.#sink());
    } else {
      this.#source = body;
      body.on("data", this.#onSourceData);
      body.once("end", this.#onSourceEnd);
      body.resume();
    }
  }

  #writeBody(chunk: Buffer): boolean {
    const socket = (this.#conn as UpstreamConnection).socket;
    if (socket.destroyed) return true;
    if (!this.#chunked) return socket.write(chunk);
    if (chunk.length === 0) return true;
    socket.cork();
    socket.write(`${chunk.length.toString(16)}\r\n`, "latin1");
    socket.write(chunk);
    const ok = socket.write("\r\n", "latin1");
    socket.uncork();
    return ok;
  }

  #endBody(): void {
    if (this.#requestDone) return;
    this.#requestDone = true;
    const socket = this.#conn?.socket;
    if (this.#chunked && socket !== undefined && !socket.destroyed) socket.write("0\r\n\r\n", "latin1");
  }

  #onSourceData = (chunk: Buffer): void => {
    if (this.#aborted || this.#conn === null) return;
    if (!this.#writeBody(chunk)) {
      const source = this.#source as Readable;
      source.pause();
      this.#conn.socket.once("drain", () => source.resume());
    }
  };

  #onSourceEnd = (): void => {
    if (!this.#aborted) this.#endBody();
  };

  #sink(): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (this.#aborted || this.#conn === null || this.#writeBody(chunk)) cb();
        else this.#conn.socket.once("drain", () => cb());
      },
      final: (cb) => {
        if (!this.#aborted) this.#endBody();
        cb();
      },
    });
  }

  #detachBody(): void {
    if (this.#source !== null) {
      this.#source.off("data", this.#onSourceData);
      this.#source.off("end", this.#onSourceEnd);
      this.#source = null;
    }
    if (this.#body !== null) {
      this.#body.detach();
      this.#body = null;
    }
  }

  // ---- from the connection ----

  onHead(status: number, raw: string[], conn: UpstreamConnection): void {
    if (this.#aborted) return;
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const len = name.length;
      if (len === 7 || len === 10 || len === 16 || len === 17) {
        const lower = name.toLowerCase();
        if (isHopByHopResponseHeader(lower)) {
          if (lower === "keep-alive") {
            const m = /timeout=(\d+)/i.exec(raw[i + 1] as string);
            // Close a second before the server would.
            if (m !== null) conn.serverIdleMs = Math.max(0, Number(m[1]) * 1000 - 1000);
          }
          continue;
        }
      }
      headers.push(name, raw[i + 1] as string);
    }
    this.#owner.onAttemptHead(this, status, headers, false);
  }

  onBody(b: Buffer): void {
    if (this.#aborted) return;
    if (!this.#owner.onAttemptData(this, b)) this.#conn?.pause();
  }

  onComplete(conn: UpstreamConnection): void {
    this.#conn = null;
    this.#detachBody();
    // A response can end before its request did (an early answer): that connection is not reusable.
    if (this.#requestDone && !this.#aborted) this.#pools.release(conn);
    else conn.socket.destroy();
    if (!this.#aborted) this.#owner.onAttemptEnd(this, null);
  }

  onConnectionError(err: Error, kind: FailureKind): void {
    this.#conn = null;
    this.#detachBody();
    if (!this.#aborted) this.#owner.onAttemptError(this, err, kind);
  }

  // ---- from the owner ----

  pause(): void {
    this.#conn?.pause();
  }

  resume(): void {
    this.#conn?.resume();
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#detachBody();
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null) {
      conn.attempt = null;
      conn.socket.destroy();
    }
  }
}
