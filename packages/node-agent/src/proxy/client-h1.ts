// The HTTP/1.1 client side: node:http parses (llhttp in strict mode rejects
// malformed request lines, oversized headers and Content-Length /
// Transfer-Encoding conflicts before we see them); this adapter turns the
// request into what the Exchange needs and writes the response back.

import { type IncomingMessage, ServerResponse } from "node:http";
import type { DirectAnswer } from "../table/compile.ts";
import type { ClientSide, Exchange } from "./exchange.ts";

/** ServerResponse that knows its client adapter, so shared listeners need no per-request closures. */
export class AgentResponse extends ServerResponse<IncomingMessage> {
  client: H1Client | null = null;
}

function onResponseClose(this: AgentResponse): void {
  this.client?.exchange?.onClientClose();
}

function onResponseDrain(this: AgentResponse): void {
  this.client?.exchange?.onClientDrain();
}

function flushHeld(c: H1Client): void {
  c.flush();
}

export interface H1ConnectionState {
  /** The listener is going away: answer with Connection: close. */
  readonly draining: boolean;
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

export class H1Client implements ClientSide {
  readonly protocol = "h1" as const;
  readonly grpc = false;
  readonly method: string;
  authority: string;
  path: string;
  readonly query: string;
  readonly headers: string[];
  readonly sourceIp: string;
  readonly hasBody: boolean;
  readonly bodySource: IncomingMessage;
  readonly grpcTimeoutMs: undefined = undefined;
  exchange: Exchange | null = null;
  readonly #res: AgentResponse;
  readonly #conn: H1ConnectionState;
  #held: Buffer | null = null;
  #flushScheduled = false;
  #drainHooked = false;

  /** Returns null when the request target is unusable (answered 400 already). */
  static from(
    req: IncomingMessage,
    res: AgentResponse,
    conn: H1ConnectionState,
    sourceIp: string,
  ): H1Client | null {
    const target = parseTarget(req.url ?? "");
    if (target === null) {
      res.writeHead(400, ["content-type", "text/plain", "content-length", "20", "connection", "close"]);
      res.end("invalid request URI\n");
      return null;
    }
    return new H1Client(req, res, conn, sourceIp, target);
  }

  private constructor(
    req: IncomingMessage,
    res: AgentResponse,
    conn: H1ConnectionState,
    sourceIp: string,
    target: { path: string; query: string; authority: string | null },
  ) {
    this.#res = res;
    this.#conn = conn;
    this.bodySource = req;
    this.method = req.method ?? "GET";
    this.path = target.path;
    this.query = target.query;
    this.sourceIp = sourceIp;
    const raw = req.rawHeaders;
    const headers: string[] = [];
    let authority = target.authority ?? "";
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
            if (target.authority === null && authority === "") authority = value;
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
          if (
            lower === "te" ||
            lower === "expect" ||
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
    res.client = this;
    res.once("close", onResponseClose);
  }

  header(name: string): string | undefined {
    const v = this.bodySource.headers[name];
    return Array.isArray(v) ? v.join(", ") : v;
  }

  get headersSent(): boolean {
    return this.#res.headersSent;
  }

  bind(exchange: Exchange): void {
    this.exchange = exchange;
  }

  respond(status: number, headers: string[], endStream: boolean): void {
    if (this.#conn.draining) headers.push("connection", "close");
    const res = this.#res;
    res.writeHead(status, headers);
    if (endStream) this.#finish(null);
  }

  /**
   * Holds each chunk until the next one or the end, so a small response goes
   * out with its head in one write; a held chunk is flushed on the next tick,
   * so streamed responses are not delayed.
   */
  write(chunk: Buffer): boolean {
    const held = this.#held;
    this.#held = chunk;
    if (held === null) {
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(flushHeld, this);
      }
      return true;
    }
    return this.#write(held);
  }

  flush(): void {
    this.#flushScheduled = false;
    const held = this.#held;
    if (held === null) return;
    this.#held = null;
    if (!this.#write(held)) this.exchange?.onClientBackpressure();
  }

  #write(chunk: Buffer): boolean {
    const res = this.#res;
    if (res.destroyed) return true;
    const ok = res.write(chunk);
    if (!ok && !this.#drainHooked) {
      this.#drainHooked = true;
      res.on("drain", onResponseDrain);
    }
    return ok;
  }

  end(_trailers: string[] | null): void {
    // HTTP/1.1 responses are relayed without trailers (clients rarely ask for them with TE: trailers).
    const held = this.#held;
    this.#held = null;
    this.#finish(held);
  }

  #finish(last: Buffer | null): void {
    const res = this.#res;
    res.client = null;
    if (res.destroyed) return;
    if (last === null) res.end();
    else res.end(last);
  }

  fail(): void {
    this.#res.client = null;
    // The head is out: the only honest signal left in HTTP/1.1 is to cut the connection.
    this.#res.destroy();
  }

  answer(a: DirectAnswer, headers: string[]): void {
    const res = this.#res;
    if (res.destroyed || res.headersSent) {
      this.fail();
      return;
    }
    headers.push("content-type", "text/plain; charset=utf-8", "content-length", String(a.body.length));
    if (this.#conn.draining) headers.push("connection", "close");
    res.writeHead(a.httpStatus, headers);
    this.#finish(a.body);
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
