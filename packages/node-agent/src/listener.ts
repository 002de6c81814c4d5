// One listener per meshed service port. The listener port tells which
// service port the client meant (capture redirects VIP:port → listener port),
// so the original destination needs no socket option. Each listener has its
// own HTTP/1.1 and HTTP/2 servers (fed with emit('connection')), which keeps
// draining one listener from touching the connections of another.

import http2, {
  type Http2Server,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";
import { H1Connection, type H1Host, type H1Request } from "./proxy/client-h1.ts";
import { H2Client } from "./proxy/client-h2.ts";
import { Exchange, type ProxyContext } from "./proxy/exchange.ts";
import { passthrough } from "./proxy/tcp.ts";
import type { CompiledTable, PortPlan } from "./table/compile.ts";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export interface ListenerOptions {
  sniffTimeoutMs: number;
  keepAliveTimeoutMs: number;
  headersTimeoutMs: number;
  maxHeaderSize: number;
  /** Bind with SO_REUSEPORT (see Listener.open). */
  reusePort: boolean;
}

export type Sniffed = "h1" | "h2" | "tcp" | "more";

/** Classifies the first bytes of a connection: HTTP/2 preface, HTTP/1 request line, else TCP. */
export function classifyFirstBytes(buf: Buffer): Sniffed {
  const n = Math.min(buf.length, PREFACE.length);
  if (buf.subarray(0, n).equals(PREFACE.subarray(0, n))) return buf.length >= PREFACE.length ? "h2" : "more";
  // An HTTP/1 request line starts with a method token (RFC 9110 tchar) and a space.
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i] as number;
    if (c === 0x20) return i > 0 ? "h1" : "tcp";
    const tchar =
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x30 && c <= 0x39) ||
      "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c));
    if (!tchar || i >= 32) return "tcp";
  }
  return "more";
}

export function normaliseIp(address: string | undefined): string {
  if (address === undefined) return "";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/** Bytes read while sniffing, put back in front of the socket for HTTP/2 (whose session reads the socket natively). */
class Rewound extends Duplex {
  readonly #socket: net.Socket;

  constructor(socket: net.Socket, head: Buffer) {
    super();
    this.#socket = socket;
    this.push(head);
    socket.on("data", (d: Buffer) => {
      if (!this.push(d)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (e) => this.destroy(e));
    socket.on("close", () => this.destroy());
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#socket.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.#socket.destroy();
    cb(err);
  }
}

export class Listener implements H1Host {
  readonly key: string;
  readonly port: number;
  plan: PortPlan;
  table: CompiledTable;
  draining = false;
  readonly #ctx: ProxyContext;
  readonly #opts: ListenerOptions;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #sessions = new Set<Http2Session>();
  readonly #sessionSource = new WeakMap<Http2Session, string>();
  #pendingSource = "";
  readonly #h1 = new Set<H1Connection>();
  #h2: Http2Server | null = null;
  /** Sweeper clock for HTTP/1.1 header and keep-alive timeouts (no timer per request). */
  tick = 0;
  readonly #sweepMs: number;
  #sweeper: NodeJS.Timeout | null = null;

  private constructor(
    ctx: ProxyContext,
    opts: ListenerOptions,
    key: string,
    port: number,
    server: net.Server,
    plan: PortPlan,
    table: CompiledTable,
  ) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.key = key;
    this.port = port;
    this.#server = server;
    this.plan = plan;
    this.table = table;
    this.#sweepMs = Math.max(50, Math.min(1_000, Math.floor(opts.headersTimeoutMs / 4)));
    server.on("connection", (s: net.Socket) => this.#onConnection(s));
    server.on("error", (err) => ctx.log.error({ err, listener: key }, "listener error"));
  }

  /**
   * Binds `port` on `address`; rejects with the bind error (EADDRINUSE...) so the caller can try another.
   * SO_REUSEPORT lets the next agent on the node bind the same ports while this one still serves:
   * the kernel spreads new connections over both, and once this one closes its socket, connections
   * still in its accept queue migrate to the other (net.ipv4.tcp_migrate_req, set by the agent).
   * A socket of another user, or one bound without SO_REUSEPORT, still makes this fail. Off
   * (exclusive bind) for agents that share a process, as in tests: they would share ports silently.
   */
  static open(
    ctx: ProxyContext,
    opts: ListenerOptions,
    address: string,
    port: number,
    plan: PortPlan,
    table: CompiledTable,
  ): Promise<Listener> {
    return new Promise((resolve, reject) => {
      const server = net.createServer({ noDelay: true, pauseOnConnect: false });
      const onError = (err: Error): void => reject(err);
      server.once("error", onError);
      server.listen(
        { host: address, port, ...(opts.reusePort ? { reusePort: true } : { exclusive: true }) },
        () => {
          server.off("error", onError);
          resolve(new Listener(ctx, opts, plan.key, port, server, plan, table));
        },
      );
    });
  }

  #onConnection(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once("close", () => this.#sockets.delete(socket));
    socket.on("error", () => {});
    switch (this.plan.protocol) {
      case "h1":
        this.#http1(socket);
        return;
      case "h2":
      case "grpc":
        this.#pendingSource = normaliseIp(socket.remoteAddress);
        this.#http2().emit("connection", socket);
        return;
      case "tcp":
        passthrough(socket, this.plan, this.#ctx.random, this.#ctx.metrics, this.#ctx.log);
        return;
      default:
        this.#sniff(socket);
    }
  }

  #sniff(socket: net.Socket): void {
    let buf: Buffer = Buffer.alloc(0);
    const decide = (kind: "h1" | "h2" | "tcp"): void => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.pause();
      if (kind === "h2") {
        this.#pendingSource = normaliseIp(socket.remoteAddress);
        this.#http2().emit("connection", new Rewound(socket, buf));
        return;
      }
      if (kind === "h1") {
        this.#http1(socket);
        // The connection's parser gets the sniffed bytes first.
        socket.emit("data", buf);
        socket.resume();
      } else {
        if (buf.length > 0) socket.unshift(buf);
        passthrough(socket, this.plan, this.#ctx.random, this.#ctx.metrics, this.#ctx.log);
      }
    };
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      const kind = classifyFirstBytes(buf);
      if (kind !== "more") decide(kind);
    };
    const onEnd = (): void => {
      clearTimeout(timer);
      socket.destroy();
    };
    // Server-speaks-first protocols send nothing: after a short wait they are passed through as TCP.
    const timer = setTimeout(() => decide("tcp"), this.#opts.sniffTimeoutMs);
    socket.on("data", onData);
    socket.on("end", onEnd);
  }

  get ctx(): ProxyContext {
    return this.#ctx;
  }

  get maxHeaderSize(): number {
    return this.#opts.maxHeaderSize;
  }

  #http1(socket: net.Socket): void {
    this.#h1.add(new H1Connection(this, socket, normaliseIp(socket.remoteAddress)));
    if (this.#sweeper === null) {
      this.#sweeper = setInterval(() => this.#sweep(), this.#sweepMs);
      this.#sweeper.unref();
    }
  }

  startExchange(client: H1Request): void {
    new Exchange(this.#ctx, this.table, this.plan, client).start();
  }

  forget(conn: H1Connection): void {
    this.#h1.delete(conn);
  }

  /** Cuts slow request heads (408) and idle keep-alive connections, checking all connections every few hundred ms. */
  #sweep(): void {
    const tick = ++this.tick;
    const headLimit = Math.ceil(this.#opts.headersTimeoutMs / this.#sweepMs);
    const idleLimit = Math.ceil(this.#opts.keepAliveTimeoutMs / this.#sweepMs);
    for (const c of this.#h1) {
      if (c.headStart !== -1 && tick - c.headStart >= headLimit) c.headersTimedOut();
      // Not sooner while draining: see drain.
      else if (c.idleSince !== -1 && tick - c.idleSince >= idleLimit) c.closeIfIdle();
    }
  }

  #http2(): Http2Server {
    if (this.#h2 !== null) return this.#h2;
    const ctx = this.#ctx;
    const server = http2.createServer({
      maxSessionMemory: 64,
      peerMaxConcurrentStreams: 1000,
      settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: 1000 },
    });
    server.on("session", (session: Http2Session) => {
      this.#sessionSource.set(session, this.#pendingSource);
      this.#sessions.add(session);
      session.on("close", () => this.#sessions.delete(session));
      session.on("error", (err) => {
        ctx.metrics?.clientError("http2", "session_error");
        ctx.log.debug({ err, listener: this.key }, "HTTP/2 session error");
      });
      session.on("frameError", () => ctx.metrics?.clientError("http2", "frame_error"));
      session.on("connect", () => {
        if (!session.destroyed) session.setLocalWindowSize(16 << 20);
      });
      if (this.draining) session.close();
    });
    server.on("sessionError", () => {});
    server.on("stream", (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      const source = this.#sessionSource.get(stream.session as Http2Session) ?? "";
      const client = new H2Client(stream, headers, source, this.plan.protocol === "grpc");
      new Exchange(ctx, this.table, this.plan, client).start();
    });
    this.#h2 = server;
    return server;
  }

  /**
   * Stops accepting, lets requests in flight finish (HTTP/1.1 connections
   * close after their current response, HTTP/2 sessions get GOAWAY), and cuts
   * whatever is left after `graceMs`.
   */
  drain(graceMs: number): Promise<void> {
    this.draining = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        // Idle HTTP/1.1 connections get a FIN, the rest is cut; a second later, whatever
        // has not closed yet.
        const idle = new Set<net.Socket>();
        for (const c of this.#h1) if (c.closeIfIdle()) idle.add(c.socket);
        for (const s of this.#sockets) if (!idle.has(s)) s.destroy();
        for (const s of this.#sessions) s.destroy();
        setTimeout(() => {
          for (const s of this.#sockets) s.destroy();
        }, 1_000).unref();
      }, graceMs);
      timer.unref();
      this.#server.close(() => {
        clearTimeout(timer);
        if (this.#sweeper !== null) clearInterval(this.#sweeper);
        resolve();
      });
      // An idle HTTP/1.1 connection is left open until the deadline: closing it races with a
      // request the client may be sending on it, which clients do not retry. A connection the
      // client uses again gets `connection: close` on that response instead, so only those the
      // client has not used for the whole drain are closed at the deadline, and keep-alive pools
      // (most recently used first) are least likely to pick exactly those. Envoy drains the same.
      this.#h2?.close(() => {});
      for (const s of this.#sessions) s.close();
    });
  }

  /** Closes at once, cutting connections. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.draining = true;
      this.#server.close(() => resolve());
      if (this.#sweeper !== null) clearInterval(this.#sweeper);
      this.#h2?.close(() => {});
      for (const s of this.#sockets) s.destroy();
      for (const s of this.#sessions) s.destroy();
    });
  }
}
