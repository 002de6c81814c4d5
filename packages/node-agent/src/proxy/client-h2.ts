// The HTTP/2 (and gRPC) client side on node:http2.

import http2, {
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import { encodeGrpcMessage, parseGrpcTimeout } from "../grpc.ts";
import type { DirectAnswer } from "../table/compile.ts";
import type { ClientSide, Exchange } from "./exchange.ts";
import { h2HeadersToList, listToH2Headers } from "./upstream-h2.ts";

const { NGHTTP2_INTERNAL_ERROR } = http2.constants;

export class H2Client implements ClientSide {
  readonly protocol = "h2" as const;
  readonly grpc: boolean;
  readonly method: string;
  authority: string;
  path: string;
  readonly query: string;
  readonly headers: string[];
  readonly sourceIp: string;
  readonly hasBody: boolean;
  readonly bodySource: ServerHttp2Stream;
  readonly grpcTimeoutMs: number | undefined;
  exchange: Exchange | null = null;
  readonly #in: IncomingHttpHeaders;
  #trailers: string[] | null = null;
  #awaitingTrailers = false;
  #drainHooked = false;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, sourceIp: string, grpcPort: boolean) {
    this.bodySource = stream;
    this.#in = headers;
    this.sourceIp = sourceIp;
    this.method = headers[":method"] ?? "GET";
    const rawPath = headers[":path"] ?? "/";
    const q = rawPath.indexOf("?");
    this.path = q === -1 ? rawPath : rawPath.slice(0, q);
    this.query = q === -1 ? "" : rawPath.slice(q + 1);
    this.authority = headers[":authority"] ?? (headers.host as string | undefined) ?? "";
    this.headers = h2HeadersToList(headers);
    const ct = headers["content-type"];
    this.grpc = grpcPort || (typeof ct === "string" && ct.startsWith("application/grpc"));
    this.grpcTimeoutMs = this.grpc
      ? parseGrpcTimeout(headers["grpc-timeout"] as string | undefined)
      : undefined;
    this.hasBody = !stream.endAfterHeaders;
    stream.on("error", () => {});
    stream.once("close", () => this.exchange?.onClientClose());
  }

  header(name: string): string | undefined {
    const v = this.#in[name];
    return Array.isArray(v) ? v.join(", ") : v;
  }

  get headersSent(): boolean {
    return this.bodySource.headersSent;
  }

  bind(exchange: Exchange): void {
    this.exchange = exchange;
  }

  respond(status: number, headers: string[], endStream: boolean): void {
    const stream = this.bodySource;
    if (stream.destroyed || stream.closed) return;
    const obj: OutgoingHttpHeaders = { ":status": status };
    listToH2Headers(headers, obj as Record<string, string | string[] | number>);
    if (endStream) {
      stream.respond(obj, { endStream: true });
      return;
    }
    this.#awaitingTrailers = true;
    stream.respond(obj, { waitForTrailers: true });
    stream.once("wantTrailers", () => {
      const t: OutgoingHttpHeaders = {};
      if (this.#trailers !== null)
        listToH2Headers(this.#trailers, t as Record<string, string | string[] | number>);
      try {
        stream.sendTrailers(t);
      } catch {
        stream.close(NGHTTP2_INTERNAL_ERROR);
      }
    });
  }

  write(chunk: Buffer): boolean {
    const stream = this.bodySource;
    if (stream.destroyed || stream.closed) return true;
    const ok = stream.write(chunk);
    if (!ok && !this.#drainHooked) {
      this.#drainHooked = true;
      stream.on("drain", () => this.exchange?.onClientDrain());
    }
    return ok;
  }

  end(trailers: string[] | null): void {
    const stream = this.bodySource;
    if (stream.destroyed || stream.closed) return;
    this.#trailers = trailers;
    stream.end();
  }

  fail(grpcStatus: number, message: string): void {
    const stream = this.bodySource;
    if (stream.destroyed || stream.closed) return;
    if (this.grpc && this.#awaitingTrailers && !stream.writableEnded) {
      this.#trailers = ["grpc-status", String(grpcStatus)];
      if (message !== "") this.#trailers.push("grpc-message", encodeGrpcMessage(message));
      stream.end();
      return;
    }
    stream.close(NGHTTP2_INTERNAL_ERROR);
  }

  answer(a: DirectAnswer, headers: string[]): void {
    const stream = this.bodySource;
    if (stream.destroyed || stream.closed) return;
    if (stream.headersSent) {
      this.fail(a.grpcStatus, "");
      return;
    }
    if (this.grpc) {
      // Trailers-only: one HEADERS frame with END_STREAM carrying the status.
      const obj: OutgoingHttpHeaders = {
        ":status": 200,
        "content-type": "application/grpc",
        "grpc-status": String(a.grpcStatus),
      };
      if (a.grpcMessage !== "") obj["grpc-message"] = a.grpcMessage;
      listToH2Headers(headers, obj as Record<string, string | string[] | number>);
      stream.respond(obj, { endStream: true });
      return;
    }
    const obj: OutgoingHttpHeaders = {
      ":status": a.httpStatus,
      "content-type": "text/plain; charset=utf-8",
      "content-length": a.body.length,
    };
    listToH2Headers(headers, obj as Record<string, string | string[] | number>);
    stream.respond(obj);
    stream.end(a.body);
  }
}
