// The contract between a request's state machine (Exchange, or a mirror) and
// one try against one endpoint, whichever protocol the try speaks.

import type { Readable } from "node:stream";
import type { EndpointState } from "../endpoints/backend.ts";
import type { RequestBody } from "./body.ts";

export interface UpstreamRequest {
  readonly method: string;
  readonly authority: string;
  /** Path with query. */
  readonly path: string;
  /** Flat [name, value, ...] without Host and hop-by-hop headers. */
  readonly headers: readonly string[];
  /** null: no body; a Readable: stream it once; a RequestBody: replayable. */
  readonly body: RequestBody | Readable | null;
  /** grpc-timeout to send upstream (HTTP/2 only), or null to pass the client's through. */
  readonly grpcTimeout: string | null;
}

export type FailureKind = "connect" | "reset";

export interface AttemptOwner {
  /** endStream: the response has no body (HTTP/2 trailers-only or empty HEADERS). */
  onAttemptHead(a: Attempt, status: number, headers: string[], endStream: boolean): void;
  /** Returns false to ask the attempt to pause until resume(). */
  onAttemptData(a: Attempt, chunk: Buffer): boolean;
  onAttemptEnd(a: Attempt, trailers: string[] | null): void;
  onAttemptError(a: Attempt, err: Error, kind: FailureKind): void;
}

export interface Attempt {
  readonly endpoint: EndpointState;
  /** Set once the owner has accounted for this try (so it is settled exactly once). */
  settled: boolean;
  start(req: UpstreamRequest): void;
  pause(): void;
  resume(): void;
  /** Stops the try; no owner callback follows. */
  abort(): void;
}

/** Response header names that describe one HTTP/1.1 connection and must not be forwarded. */
export function isHopByHopResponseHeader(lower: string): boolean {
  switch (lower.length) {
    case 7:
      return lower === "upgrade" || lower === "trailer";
    case 10:
      return lower === "connection" || lower === "keep-alive";
    case 16:
      return lower === "proxy-connection";
    case 17:
      return lower === "transfer-encoding";
    default:
      return false;
  }
}
