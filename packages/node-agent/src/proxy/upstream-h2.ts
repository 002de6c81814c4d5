// HTTP/2 (h2c prior knowledge) and gRPC to endpoints with node:http2. Each
// endpoint address has a small pool of sessions; a session takes streams up
// to the peer's SETTINGS_MAX_CONCURRENT_STREAMS, then another one is opened.
// Sessions are replaced when they close, error or receive GOAWAY.

import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from "node:http2";
import net from "node:net";
import type { Readable } from "node:stream";
import type { EndpointState } from "../endpoints/backend.ts";
import type { Attempt, AttemptOwner, UpstreamRequest } from "./attempt.ts";
import { RequestBody } from "./body.ts";

const { NGHTTP2_CANCEL } = http2.constants;
const END_STREAM = http2.constants.NGHTTP2_FLAG_END_STREAM;
const STREAMS_BEFORE_NEW_SESSION = 64;

export interface H2PoolOptions {
  connectTimeoutMs: number;
  maxSessionsPerEndpoint: number;
}

interface SessionEntry {
  readonly session: ClientHttp2Session;
  active: number;
  connected: boolean;
  dead: boolean;
}

/** Request header names that must not appear in HTTP/2 (RFC 9113 §8.2.2), besides Host. */
function isConnectionSpecific(lower: string): boolean {
  return (
    lower === "connection" ||
    lower === "keep-alive" ||
    lower === "proxy-connection" ||
    lower === "transfer-encoding" ||
    lower === "upgrade" ||
    lower === "host" ||
    lower === "http2-settings"
  );
}

/** Flat list → HTTP/2 header object (lower-case names, repeated names as arrays). */
export function listToH2Headers(
  list: readonly string[],
  into: Record<string, string | string[] | number>,
): void {
  for (let i = 0; i < list.length; i += 2) {
    const name = (list[i] as string).toLowerCase();
    if (isConnectionSpecific(name)) continue;
    const value = list[i + 1] as string;
    if (name === "te" && value !== "trailers") continue;
    const old = into[name];
    if (old === undefined) into[name] = value;
    else if (Array.isArray(old)) old.push(value);
    else into[name] = [String(old), value];
  }
}

/** HTTP/2 header object → flat list without pseudo-headers. */
export function h2HeadersToList(h: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in h) {
    if (name.charCodeAt(0) === 0x3a) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, v);
  }
  return out;
}

export class H2Pools {
  readonly #origins = new Map<string, SessionEntry[]>();
  readonly #opts: H2PoolOptions;

  constructor(opts: H2PoolOptions) {
    this.#opts = opts;
  }

  get(ep: EndpointState): SessionEntry {
    const address = ep.address;
    let entries = this.#origins.get(address);
    if (entries === undefined) {
      entries = [];
      this.#origins.set(address, entries);
    }
    let best: SessionEntry | null = null;
    for (const e of entries) {
      if (e.dead || e.session.destroyed || e.session.closed) continue;
      const max = e.session.remoteSettings?.maxConcurrentStreams ?? 100;
      if (e.active < max && (best === null || e.active < best.active)) best = e;
    }
    // Spread busy endpoints over a few connections: one TCP connection and one
    // nghttp2 session serialise all their streams' frames.
    if (
      best !== null &&
      (best.active < STREAMS_BEFORE_NEW_SESSION || entries.length >= this.#opts.maxSessionsPerEndpoint)
    ) {
      return best;
    }
    return this.#open(address, entries, ep.ip, ep.port);
  }

  #open(address: string, entries: SessionEntry[], host: string, port: number): SessionEntry {
    const session = http2.connect(`http://${address}`, {
      // node:http2 leaves Nagle on for the sockets it opens itself: a unary call's HEADERS and
      // DATA frames, written separately, then wait for the peer's delayed ACK (tens of ms).
      createConnection: () => net.connect({ host, port, noDelay: true }),
      maxSessionMemory: 64,
      settings: { initialWindowSize: 1 << 20, enablePush: false },
      peerMaxConcurrentStreams: 1000,
    });
    const entry: SessionEntry = { session, active: 0, connected: false, dead: false };
    const remove = (): void => {
      entry.dead = true;
      const i = entries.indexOf(entry);
      if (i !== -1) entries.splice(i, 1);
    };
    const timer = setTimeout(() => {
      if (!entry.connected) session.destroy(new Error(`connect timeout to ${address}`));
    }, this.#opts.connectTimeoutMs);
    timer.unref();
    session.on("connect", () => {
      entry.connected = true;
      clearTimeout(timer);
      session.setLocalWindowSize(16 << 20);
    });
    session.on("error", remove);
    session.on("goaway", remove);
    session.on("close", () => {
      clearTimeout(timer);
      remove();
    });
    session.on("frameError", () => {});
    entries.push(entry);
    return entry;
  }

  retain(live: ReadonlySet<string>): void {
    for (const [address, entries] of this.#origins) {
      if (live.has(address)) continue;
      this.#origins.delete(address);
      // close() lets running streams finish.
      for (const e of entries) e.session.close();
    }
  }

  sessions(): number {
    let n = 0;
    for (const entries of this.#origins.values()) for (const e of entries) if (!e.dead) n++;
    return n;
  }

  async close(): Promise<void> {
    const all: SessionEntry[] = [];
    for (const entries of this.#origins.values()) all.push(...entries);
    this.#origins.clear();
    for (const e of all) e.session.destroy();
  }
}

export class H2Attempt implements Attempt {
  readonly endpoint: EndpointState;
  settled = false;
  readonly #owner: AttemptOwner;
  readonly #pools: H2Pools;
  #stream: ClientHttp2Stream | null = null;
  #source: Readable | null = null;
  #body: RequestBody | null = null;
  #aborted = false;
  #finished = false;
  #headSeen = false;
  #trailers: string[] | null = null;

  constructor(owner: AttemptOwner, endpoint: EndpointState, pools: H2Pools) {
    this.#owner = owner;
    this.endpoint = endpoint;
    this.#pools = pools;
  }

  start(req: UpstreamRequest): void {
    const entry = this.#pools.get(this.endpoint);
    const headers: Record<string, string | string[] | number> = {
      ":method": req.method,
      ":path": req.path,
      ":scheme": "http",
      ":authority": req.authority,
    };
    listToH2Headers(req.headers, headers);
    if (req.grpcTimeout !== null) headers["grpc-timeout"] = req.grpcTimeout;
    let stream: ClientHttp2Stream;
    try {
      stream = entry.session.request(headers, { endStream: req.body === null });
    } catch (err) {
      this.#fail(err as Error, entry.connected ? "reset" : "connect");
      return;
    }
    this.#stream = stream;
    entry.active++;
    stream.on("response", (h, flags) => {
      if (this.#aborted) return;
      this.#headSeen = true;
      const status = Number(h[":status"]);
      const endStream = (flags & END_STREAM) !== 0;
      if (endStream) this.#finished = true;
      this.#owner.onAttemptHead(this, status, h2HeadersToList(h), endStream);
    });
    stream.on("data", (chunk: Buffer) => {
      if (this.#aborted || this.#finished) return;
      if (!this.#owner.onAttemptData(this, chunk)) stream.pause();
    });
    stream.on("trailers", (t) => {
      this.#trailers = h2HeadersToList(t);
    });
    stream.on("end", () => {
      if (this.#aborted || this.#finished) return;
      this.#finished = true;
      this.#detachBody();
      this.#owner.onAttemptEnd(this, this.#trailers);
    });
    stream.on("error", () => {});
    stream.on("close", () => {
      entry.active--;
      if (this.#aborted || this.#finished) return;
      this.#finished = true;
      this.#detachBody();
      const connect = !entry.connected && !this.#headSeen;
      this.#owner.onAttemptError(
        this,
        new Error(
          connect ? `cannot connect to ${this.endpoint.address}` : `stream reset (code ${stream.rstCode})`,
        ),
        connect ? "connect" : "reset",
      );
    });
    if (req.body instanceof RequestBody) {
      this.#body = req.body;
      req.body.attach(stream);
    } else if (req.body !== null) {
      this.#source = req.body;
      req.body.pipe(stream);
    }
  }

  #fail(err: Error, kind: "connect" | "reset"): void {
    this.#finished = true;
    // Owner callbacks must not run inside start(): the owner is still setting up.
    queueMicrotask(() => this.#owner.onAttemptError(this, err, kind));
  }

  pause(): void {
    this.#stream?.pause();
  }

  resume(): void {
    this.#stream?.resume();
  }

  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#detachBody();
    const s = this.#stream;
    if (s !== null && !s.closed) s.close(NGHTTP2_CANCEL);
  }

  #detachBody(): void {
    if (this.#body !== null) {
      this.#body.detach();
      this.#body = null;
    }
    if (this.#source !== null && this.#stream !== null) {
      this.#source.unpipe(this.#stream);
      this.#source = null;
    }
  }
}
