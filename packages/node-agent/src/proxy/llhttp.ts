// Node's own HTTP/1.1 parser (llhttp, native), without node:http's stream
// objects around it. node:http and undici cost more per request than the rest
// of the agent together (see docs/agent.md); the parser itself is cheap,
// strict and the one node:http uses, so the agent drives it directly.
//
// It is reached through the `_http_common` module, which Node exposes but does
// not document. The shape used here is checked once at load time, so a Node
// upgrade that changes it fails loudly at start rather than mid-request.

import { createRequire } from "node:module";

export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenientFlags: number): void;
  /** Bytes consumed, or an Error with `code` (HPE_*) and `bytesParsed`. */
  execute(data: Buffer): number | ParseError;
  /** Signals EOF (ends a close-delimited body). */
  finish(): number | ParseError | undefined;
  close(): void;
  free(): void;
  pause(): void;
  resume(): void;
  [callback: number]: unknown;
}

export interface ParseError extends Error {
  code: string;
  reason?: string;
  bytesParsed: number;
}

interface ParserConstructor {
  new (): NativeParser;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}

const common = createRequire(import.meta.url)("_http_common") as {
  HTTPParser: ParserConstructor;
  methods: string[];
};

const P = common.HTTPParser;
for (const k of [
  "REQUEST",
  "RESPONSE",
  "kOnMessageBegin",
  "kOnHeaders",
  "kOnHeadersComplete",
  "kOnBody",
  "kOnMessageComplete",
] as const) {
  if (typeof P?.[k] !== "number") throw new Error(`this Node.js has no usable HTTP parser binding (${k})`);
}

export const HTTPParser = P;
/** Method names by the index llhttp reports. */
export const METHODS: readonly string[] = common.methods;
export const REQUEST = P.REQUEST;
export const RESPONSE = P.RESPONSE;
export const kOnMessageBegin = P.kOnMessageBegin | 0;
export const kOnHeaders = P.kOnHeaders | 0;
export const kOnHeadersComplete = P.kOnHeadersComplete | 0;
export const kOnBody = P.kOnBody | 0;
export const kOnMessageComplete = P.kOnMessageComplete | 0;
/** Strict parsing: no lenient flags (request smuggling defences stay on). */
export const STRICT = P.kLenientNone ?? 0;

/** Signature of the headers-complete callback (requests: method index and url; responses: status). */
export type OnHeadersComplete = (
  versionMajor: number,
  versionMinor: number,
  headers: string[] | undefined,
  method: number | undefined,
  url: string | undefined,
  statusCode: number | undefined,
  statusMessage: string | undefined,
  upgrade: boolean,
  shouldKeepAlive: boolean,
) => number;
