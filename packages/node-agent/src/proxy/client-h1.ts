// The HTTP/1.1 client side on plain sockets: llhttp (strict) parses requests;
// a response head is held until its first body bytes, so a small response
// leaves in one write. Strict parsing
// rejects malformed request lines, oversized headers, Content-Length /
// Transfer-Encoding conflicts and data after Connection: close before the
// router sees anything.

import type net from "node:net";
import { Readable } from "node:stream";
import { http } from "../node-http.ts";
import type { DirectAnswer } from "../table/compile.ts";
import type { Exchange, ProxyContext } from "./exchange.ts";
import {
  HTTPParser,
  kOnBody,
  kOnHeaders,
  kOnHeadersComplete,
  kOnMessageBegin,
  kOnMessageComplete,
  METHODS,
  type NativeParser,
  type OnHeadersComplete,
  type ParseError,
  REQUEST,
  STRICT,
} from "./llhttp.ts";

/** What a connection needs from its listener. */
export interface H1Host {
  readonly ctx: ProxyContext;
  readonly key: string;
  readonly draining: boolean;
  readonly maxHeaderSize: number;
  /** Clock of the listener's sweeper (advanced every sweep interval). */
  readonly tick: number;
  startExchange(client: H1Request): void;
  forget(conn: H1Connection): void;
}

/** Parsed request target: path, query and (absolute-form only) authority. */
export function parseTarget(url: string): { path: string; query: string; authority: string | null } | null {
  if (url.charCodeAt(0) === 0x2f) {
    const q = url.indexOf("?");
    return q === -1
      ? { path: url, query: "", authority: null }
      : { path: url.slice(0, q), query: url.slice(q + 1), authority: null };
  }
  if (url === "*") return { path: "*", query: "", authority: null };
  const m = /^https?:\/\/([^/?#]+)([^?#]*)(?:\?([^#]*))?/i.exec(url);
  if (m === null) return null;
  return { path: m[2] === "" ? "/" : (m[2] as string), query: m[3] ?? "", authority: m[1] as string };
}

const { STATUS_CODES } = http;

const ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: "431 Request Header Fields Too Large",
  HPE_CHUNK_EXTENSIONS_OVERFLOW: "413 Content Too Large",
};

/** One client connection: parses requests and runs them one at a time, in order. */
export class H1Connection {
  readonly socket: net.Socket;
  readonly sourceIp: string;
  readonly #host: H1Host;
  readonly #parser: NativeParser;
  /** The request whose response is being produced. */
  #active: H1Request | null = null;
  /** The request whose body is being parsed (may be queued behind #active when pipelining). */
  #reading: H1Request | null = null;
  readonly #queue: H1Request[] = [];
  #headers: string[] = [];
  #url = "";
  /** Sweeper tick when the current request head started, or -1. */
  headStart = -1;
  /** Sweeper tick since which the connection has been idle, or -1 while busy. */
  idleSince: number;
  #heldHead: string | null = null;
  #closing = false;
  #bodyPaused = false;

  constructor(host: H1Host, socket: net.Socket, sourceIp: string) {
    this.#host = host;
    this.socket = socket;
    this.sourceIp = sourceIp;
    this.idleSince = host.tick;
    const parser = new HTTPParser();
    parser.initialize(REQUEST, {}, host.maxHeaderSize, STRICT);
    this.#parser = parser;
    parser[kOnMessageBegin] = this.#onMessageBegin;
    parser[kOnHeaders] = this.#onHeaders;
    parser[kOnHeadersComplete] = this.#onHeadersComplete;
    parser[kOnBody] = this.#onBody;
    parser[kOnMessageComplete] = this.#onMessageComplete;
    socket.on("data", this.#onData);
    socket.on("error", () => {});
    socket.on("close", this.#onClose);
  }

  #onData = (d: Buffer): void => {
    const r = this.#parser.execute(d);
    if (typeof r !== "number") this.#clientError(r);
  };

  #onClose = (): void => {
    this.#host.forget(this);
    this.#parser.close();
    const active = this.#active;
    this.#active = null;
    this.#queue.length = 0;
    active?.onClientClose();
  };

  #onMessageBegin = (): number => {
    this.headStart = this.#host.tick;
    this.idleSince = -1;
    return 0;
  };

  // Headers bigger than one read arrive in pieces before headers-complete.
  #onHeaders = (headers: string[], url: string): void => {
    for (const h of headers) this.#headers.push(h);
    this.#url += url;
  };

  #onHeadersComplete: OnHeadersComplete = (maj, min, headers, method, url, _s, _m, upgrade, keepAlive) => {
    this.headStart = -1;
    const raw = headers ?? this.#headers;
    const target = url ?? this.#url;
    this.#headers = [];
    this.#url = "";
    const name = method === undefined ? undefined : METHODS[method];
    const req = new H1Request(this, name ?? "", target, raw, maj, min, keepAlive && !upgrade);
    this.#reading = req;
    if (name === undefined || name === "CONNECT") {
      req.invalid = "501 Not Implemented";
    } else if (req.path === "") {
      req.invalid = "400 Bad Request";
    }
    if (this.#active === null) this.#begin(req);
    else {
      // Pipelined: answer in order; stop reading until the current response is done.
      this.#queue.push(req);
      this.socket.pause();
    }
    return 0;
  };

  #onBody = (b: Buffer): void => {
    this.#reading?.pushBody(b);
  };

  #onMessageComplete = (): void => {
    const r = this.#reading;
    this.#reading = null;
    r?.endBody();
  };

  #begin(req: H1Request): void {
    this.#active = req;
    if (req.invalid !== null) {
      this.#closing = true;
      this.#writeRaw(`HTTP/1.1 ${req.invalid}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      this.socket.end();
      return;
    }
    if (req.expectsContinue && req.hasBody) this.write("HTTP/1.1 100 Continue\r\n\r\n");
    this.#host.startExchange(req);
  }

  /** Called when a response has been written completely. */
  responseDone(req: H1Request): void {
    if (this.#active !== req) return;
    this.flushHead();
    this.#active = null;
    if (!req.keepAlive || this.#closing) {
      this.#closing = true;
      this.socket.end();
      return;
    }
    const next = this.#queue.shift();
    if (next !== undefined) {
      if (this.#queue.length === 0) this.socket.resume();
      this.#begin(next);
      return;
    }
    if (this.headStart === -1) this.idleSince = this.#host.tick;
  }

  /**
   * Writes a response head, holding it back until the first body bytes (or
   * the end) so that a small response leaves in a single write.
   */
  writeHead(head: string): void {
    this.#heldHead = head;
  }

  write(data: string | Buffer): boolean {
    const socket = this.socket;
    if (socket.destroyed) return true;
    const head = this.#heldHead;
    if (head !== null) {
      this.#heldHead = null;
      if (typeof data === "string") return socket.write(head + data, "latin1");
      const len = Buffer.byteLength(head, "latin1");
      const out = Buffer.allocUnsafe(len + data.length);
      out.write(head, 0, len, "latin1");
      data.copy(out, len);
      return socket.write(out);
    }
    return typeof data === "string" ? socket.write(data, "latin1") : socket.write(data);
  }

  /** Sends a held head that no body followed. */
  flushHead(): void {
    const head = this.#heldHead;
    if (head === null) return;
    this.#heldHead = null;
    if (!this.socket.destroyed) this.socket.write(head, "latin1");
  }

  #writeRaw(s: string): void {
    if (!this.socket.destroyed) this.socket.write(s, "latin1");
  }

  get closing(): boolean {
    return this.#closing || this.#host.draining;
  }

  markClosing(): void {
    this.#closing = true;
  }

  pauseForBody(): void {
    if (!this.#bodyPaused) {
      this.#bodyPaused = true;
      this.socket.pause();
    }
  }

  resumeBody(): void {
    if (this.#bodyPaused) {
      this.#bodyPaused = false;
      if (this.#queue.length === 0) this.socket.resume();
    }
  }

  #clientError(err: ParseError): void {
    const code = err.code ?? "";
    this.#host.ctx.metrics?.clientError("http1", code);
    this.#host.ctx.log.debug(
      { err: { code, reason: err.reason }, listener: this.#host.key },
      "malformed HTTP/1.1 input",
    );
    this.#closing = true;
    // Mid-response we can only cut the connection; otherwise say what was wrong.
    if (this.#active === null && !this.socket.destroyed && code !== "HPE_CLOSED_CONNECTION") {
      this.socket.end(
        `HTTP/1.1 ${ERROR_STATUS[code] ?? "400 Bad Request"}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
      this.socket.destroySoon();
    } else {
      this.socket.destroy();
    }
  }

  /** The sweeper found a request head that took too long (slow client). */
  headersTimedOut(): void {
    this.#host.ctx.metrics?.clientError("http1", "headers_timeout");
    this.#closing = true;
    if (this.#active === null) {
      this.socket.end("HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      this.socket.destroySoon();
    } else this.socket.destroy();
  }

  /** Idle keep-alive connection past its timeout, or a draining listener. */
  closeIfIdle(): boolean {
    if (this.#active !== null || this.headStart !== -1 || this.#reading !== null) return false;
    this.socket.end();
    return true;
  }
}

export class H1Request {
  readonly protocol = "h1" as const;
  readonly grpc = false;
  readonly method: string;
  authority: string;
  path: string;
  readonly query: string;
  readonly headers: string[];
  readonly sourceIp: string;
  readonly hasBody: boolean;
  readonly grpcTimeoutMs: undefined = undefined;
  readonly keepAlive: boolean;
  /** Set when the request cannot be routed at all (answered by the connection). */
  invalid: string | null = null;
  expectsContinue = false;
  exchange: Exchange | null = null;
  readonly #conn: H1Connection;
  readonly #raw: string[];
  readonly #http10: boolean;
  #body: Readable | null = null;
  #bodyEnded = false;
  #discardBody = false;
  #headersSent = false;
  #chunked = false;
  #noBody = false;
  #done = false;

  constructor(
    conn: H1Connection,
    method: string,
    url: string,
    raw: string[],
    versionMajor: number,
    versionMinor: number,
    keepAlive: boolean,
  ) {
    this.#conn = conn;
    this.#raw = raw;
    this.method = method;
    this.sourceIp = conn.sourceIp;
    this.keepAlive = keepAlive;
    this.#http10 = versionMajor === 1 && versionMinor === 0;
    const target = parseTarget(url);
    this.path = target?.path ?? "";
    this.query = target?.query ?? "";
    const headers: string[] = [];
    let authority = target?.authority ?? "";
    let hasBody = false;
    let connectionTokens: string | null = null;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const value = raw[i + 1] as string;
      // Only names of these lengths can be hop-by-hop or special: skip the lower-casing otherwise.
      switch (name.length) {
        case 2:
        case 4:
        case 6:
        case 7:
        case 10:
        case 14:
        case 16:
        case 17: {
          const lower = name.toLowerCase();
          if (lower === "host") {
            if (target?.authority === null && authority === "") authority = value;
            continue;
          }
          if (lower === "content-length") {
            if (value !== "0") hasBody = true;
            break;
          }
          if (lower === "transfer-encoding") {
            hasBody = true;
            continue;
          }
          if (lower === "connection") {
            connectionTokens = connectionTokens === null ? value : `${connectionTokens},${value}`;
            continue;
          }
          if (lower === "expect") {
            // Answered here (as node:http would): the body then comes to us, not to the backend.
            if (value.toLowerCase() === "100-continue") this.expectsContinue = true;
            continue;
          }
          if (
            lower === "te" ||
            lower === "upgrade" ||
            lower === "trailer" ||
            lower === "keep-alive" ||
            lower === "proxy-connection" ||
            lower === "http2-settings"
          ) {
            continue;
          }
          break;
        }
      }
      headers.push(name, value);
    }
    if (connectionTokens !== null) dropConnectionTokens(headers, connectionTokens);
    this.headers = headers;
    this.authority = authority;
    this.hasBody = hasBody;
    if (hasBody) {
      this.#body = new Readable({ read: () => conn.resumeBody() });
      this.#body.on("error", () => {});
    }
  }

  get bodySource(): Readable {
    if (this.#body === null) {
      this.#body = Readable.from([]);
    }
    return this.#body;
  }

  pushBody(b: Buffer): void {
    if (this.#discardBody || this.#body === null) return;
    if (!this.#body.push(b)) this.#conn.pauseForBody();
  }

  endBody(): void {
    this.#bodyEnded = true;
    if (!this.#discardBody) this.#body?.push(null);
  }

  header(name: string): string | undefined {
    const raw = this.#raw;
    let out: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i] as string;
      if (n.length === name.length && n.toLowerCase() === name) {
        out = out === undefined ? (raw[i + 1] as string) : `${out}, ${raw[i + 1] as string}`;
      }
    }
    return out;
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  bind(exchange: Exchange): void {
    this.exchange = exchange;
  }

  onClientClose(): void {
    this.#done = true;
    this.exchange?.onClientClose();
  }

  onDrain = (): void => {
    this.exchange?.onClientDrain();
  };

  respond(status: number, headers: string[], endStream: boolean): void {
    if (this.#done) return;
    this.#headersSent = true;
    const conn = this.#conn;
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Unknown"}\r\n`;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
      head += `${name}: ${headers[i + 1] as string}\r\n`;
    }
    const bodiless = this.method === "HEAD" || status === 204 || status === 304 || status < 200;
    this.#noBody = bodiless || endStream;
    let keepAlive = this.keepAlive && !conn.closing;
    if (!bodiless) {
      if (endStream) {
        if (!hasLength) head += "content-length: 0\r\n";
      } else if (!hasLength) {
        if (this.#http10) keepAlive = false;
        else {
          this.#chunked = true;
          head += "transfer-encoding: chunked\r\n";
        }
      }
    }
    if (!keepAlive) {
      conn.markClosing();
      head += "connection: close\r\n\r\n";
    } else head += this.#http10 ? "connection: keep-alive\r\n\r\n" : "\r\n";
    conn.writeHead(head);
    if (endStream) this.#finish();
  }

  write(chunk: Buffer): boolean {
    if (this.#done || this.#noBody) return true;
    const conn = this.#conn;
    let ok: boolean;
    if (this.#chunked) {
      if (chunk.length === 0) return true;
      const size = `${chunk.length.toString(16)}\r\n`;
      const framed = Buffer.allocUnsafe(size.length + chunk.length + 2);
      framed.write(size, 0, "latin1");
      chunk.copy(framed, size.length);
      framed[framed.length - 2] = 0x0d;
      framed[framed.length - 1] = 0x0a;
      ok = conn.write(framed);
    } else ok = conn.write(chunk);
    if (!ok) conn.socket.once("drain", this.onDrain);
    return ok;
  }

  end(_trailers: string[] | null): void {
    // HTTP/1.1 responses are relayed without trailers (clients rarely ask for them with TE: trailers).
    if (this.#done) return;
    if (this.#chunked) this.#conn.write("0\r\n\r\n");
    this.#finish();
  }

  #finish(): void {
    this.#done = true;
    if (!this.#bodyEnded) {
      // Answered before the request body was read: read the rest and drop it.
      this.#discardBody = true;
      this.#body?.destroy();
      this.#conn.resumeBody();
    }
    this.#conn.responseDone(this);
  }

  fail(): void {
    this.#done = true;
    // The head is out (or held): the only honest signal left in HTTP/1.1 is to cut the connection.
    this.#conn.socket.destroy();
  }

  answer(a: DirectAnswer, headers: string[]): void {
    if (this.#done) return;
    if (this.#headersSent) {
      this.fail();
      return;
    }
    headers.push("content-type", "text/plain; charset=utf-8", "content-length", String(a.body.length));
    this.respond(a.httpStatus, headers, false);
    if (!this.#noBody) this.#conn.write(a.body);
    this.#finish();
  }
}

/** Removes headers the client named in Connection (RFC 9110 §7.6.1). */
function dropConnectionTokens(headers: string[], tokens: string): void {
  const names = new Set<string>();
  for (const t of tokens.split(",")) {
    const n = t.trim().toLowerCase();
    if (n !== "" && n !== "close" && n !== "keep-alive") names.add(n);
  }
  if (names.size === 0) return;
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    if (names.has((headers[r] as string).toLowerCase())) continue;
    headers[w++] = headers[r] as string;
    headers[w++] = headers[r + 1] as string;
  }
  headers.length = w;
}
