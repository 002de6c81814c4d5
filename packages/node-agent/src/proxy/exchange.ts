// One request through the agent: route it by the table in force when it
// arrived, run the rule (filters, redirect, direct answers, weighted backend),
// then forward it with the rule's timeouts and retries. The same state machine
// serves HTTP/1.1 and HTTP/2 clients and upstreams through small adapters
// (ClientSide, Attempt), so behaviour cannot drift between protocols.

import { Readable } from "node:stream";
import type { RequestRedirect } from "@trellis/api";
import type { Logger } from "pino";
import type { BackendRuntime, EndpointState } from "../endpoints/backend.ts";
import { formatGrpcTimeout, GrpcStatus } from "../grpc.ts";
import type { AgentMetrics } from "../metrics.ts";
import { applyToList, getFromList } from "../routing/headers.ts";
import type { RequestView } from "../routing/match.ts";
import { redirectLocation, redirectStatus, rewritePath } from "../routing/rewrite.ts";
import {
  type BackendChoice,
  type CompiledRule,
  type CompiledTable,
  type DirectAnswer,
  directAnswer,
  type PortPlan,
} from "../table/compile.ts";
import type { Attempt, AttemptOwner, FailureKind, UpstreamRequest } from "./attempt.ts";
import { RequestBody } from "./body.ts";
import { H1Attempt, type H1Pools } from "./upstream-h1.ts";
import { H2Attempt, type H2Pools } from "./upstream-h2.ts";

export interface ProxyContext {
  readonly log: Logger;
  readonly metrics: AgentMetrics | null;
  readonly random: () => number;
  readonly debugHeaders: boolean;
  readonly h1: H1Pools;
  readonly h2: H2Pools;
}

/** The client half of an exchange: what came in, and how to answer. */
export interface ClientSide extends RequestView {
  readonly protocol: "h1" | "h2";
  /** Agent-made errors are gRPC trailers-only responses. */
  readonly grpc: boolean;
  authority: string;
  path: string;
  readonly query: string;
  /** Forwardable request headers (flat, mutable; no Host, no hop-by-hop). */
  readonly headers: string[];
  readonly sourceIp: string;
  readonly hasBody: boolean;
  readonly bodySource: Readable;
  /** From the client's grpc-timeout header. */
  readonly grpcTimeoutMs: number | undefined;
  readonly headersSent: boolean;
  bind(exchange: Exchange): void;
  respond(status: number, headers: string[], endStream: boolean): void;
  write(chunk: Buffer): boolean;
  end(trailers: string[] | null): void;
  /** Ends a response whose head went out already: gRPC trailers with this status, else a reset. */
  fail(grpcStatus: number, message: string): void;
  /** Sends an agent-made answer (headers are extra response headers). */
  answer(a: DirectAnswer, headers: string[]): void;
}

const NO_BACKEND = directAnswer(503, GrpcStatus.UNAVAILABLE, "no default backend for this service port");
const NO_ENDPOINT = directAnswer(503, GrpcStatus.UNAVAILABLE, "no healthy endpoint");
const CONNECT_FAILED = directAnswer(503, GrpcStatus.UNAVAILABLE, "upstream connect failure");
const UPSTREAM_RESET = directAnswer(502, GrpcStatus.UNAVAILABLE, "upstream reset before response");
const REQUEST_TIMEOUT = directAnswer(504, GrpcStatus.DEADLINE_EXCEEDED, "request timeout");
const TRY_TIMEOUT = directAnswer(504, GrpcStatus.DEADLINE_EXCEEDED, "upstream request timeout");
const DEADLINE = directAnswer(504, GrpcStatus.DEADLINE_EXCEEDED, "deadline exceeded");

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]);

const PENDING = 0;
const STREAMING = 1;
const DONE = 2;

export class Exchange implements AttemptOwner {
  readonly #ctx: ProxyContext;
  readonly #table: CompiledTable;
  readonly #plan: PortPlan;
  readonly #client: ClientSide;
  readonly #start = performance.now();
  #state = PENDING;
  #sourceNs = "";
  #rule: CompiledRule | null = null;
  #choice: BackendChoice | null = null;
  #prefix: string | null = null;
  #body: RequestBody | null = null;
  #attempt: Attempt | null = null;
  #tryStart = 0;
  #lastEndpoint: EndpointState | null = null;
  #retries = 0;
  #staleRetried = false;
  #deadline = Number.POSITIVE_INFINITY;
  /** The client's grpc-timeout, not the route, set the deadline. */
  #clientDeadline = false;
  #requestTimer: NodeJS.Timeout | null = null;
  #tryTimer: NodeJS.Timeout | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #code = 0;
  #grpcStatus = "";

  constructor(ctx: ProxyContext, table: CompiledTable, plan: PortPlan, client: ClientSide) {
    this.#ctx = ctx;
    this.#table = table;
    this.#plan = plan;
    this.#client = client;
    client.bind(this);
  }

  start(): void {
    const client = this.#client;
    const plan = this.#plan;
    const ns = this.#table.podNamespaces.get(client.sourceIp);
    if (ns !== undefined) this.#sourceNs = ns;
    const set = (ns === undefined ? undefined : plan.consumers.get(ns)) ?? plan.producer;
    let rule: CompiledRule | null = null;
    if (set !== null) {
      for (const m of set.matches) {
        if (m.test(client)) {
          rule = m.rule;
          this.#prefix = m.prefix;
          break;
        }
      }
      if (rule === null) {
        this.#answer(set.noMatch);
        return;
      }
    } else {
      rule = plan.defaultRule;
      if (rule === null) {
        this.#answer(NO_BACKEND);
        return;
      }
    }
    this.#rule = rule;
    if (rule.requestHeaders !== null) applyToList(client.headers, rule.requestHeaders);
    const action = rule.action;
    if (action.kind === "redirect") {
      this.#redirect(action.redirect);
      return;
    }
    if (action.kind === "direct") {
      this.#answer(action.answer);
      return;
    }
    const choice = action.picker.pick(this.#ctx.random());
    this.#choice = choice;
    if (choice.direct !== null) {
      this.#answer(choice.direct);
      return;
    }
    const rewrite = rule.urlRewrite;
    if (rewrite !== null) {
      if (rewrite.hostname !== "") client.authority = rewrite.hostname;
      if (rewrite.path !== undefined) client.path = rewritePath(client.path, rewrite.path, this.#prefix);
    }
    let timeout = rule.requestTimeoutMs;
    const g = client.grpcTimeoutMs;
    if (g !== undefined && (timeout === 0 || g < timeout)) {
      timeout = g;
      this.#clientDeadline = true;
    }
    if (g === 0) {
      this.#answer(DEADLINE);
      return;
    }
    if (client.hasBody && rule.retainsBody)
      this.#body = new RequestBody(client.bodySource, plan.retryBodyLimit);
    if (rule.mirrors.length > 0) this.#mirror(rule);
    if (choice.requestHeaders !== null) applyToList(client.headers, choice.requestHeaders);
    if (timeout > 0) {
      this.#deadline = this.#start + timeout;
      this.#requestTimer = setTimeout(onRequestTimeout, timeout, this);
    }
    this.#send();
  }

  // ---- forwarding ----

  /** Next try after a retry backoff. */
  resend(): void {
    this.#send();
  }

  #send(): void {
    this.#retryTimer = null;
    if (this.#state !== PENDING) return;
    const backend = (this.#choice as BackendChoice).backend;
    if (backend === null) return;
    const ep = backend.pick(this.#ctx.random, this.#lastEndpoint);
    if (ep === null) {
      this.#answer(NO_ENDPOINT);
      return;
    }
    this.#lastEndpoint = ep;
    ep.ewma.pending++;
    ep.breaker.onSend();
    const client = this.#client;
    const proto = backend.protocol === "client" ? client.protocol : backend.protocol;
    const attempt: Attempt =
      proto === "h1" ? new H1Attempt(this, ep, this.#ctx.h1) : new H2Attempt(this, ep, this.#ctx.h2);
    this.#attempt = attempt;
    this.#tryStart = performance.now();
    const rule = this.#rule as CompiledRule;
    let tryTimeout = rule.backendTimeoutMs;
    if (tryTimeout > 0) {
      const left = this.#deadline - this.#tryStart;
      if (left < tryTimeout) tryTimeout = 0;
    }
    if (tryTimeout > 0) this.#tryTimer = setTimeout(onTryTimeout, tryTimeout, this);
    const finite = this.#deadline !== Number.POSITIVE_INFINITY;
    const req: UpstreamRequest = {
      method: client.method,
      authority: client.authority,
      path: client.query === "" ? client.path : `${client.path}?${client.query}`,
      headers: client.headers,
      body: !client.hasBody ? null : this.#body !== null ? this.#body : client.bodySource,
      grpcTimeout:
        client.grpc && finite ? formatGrpcTimeout(Math.max(0, this.#deadline - performance.now())) : null,
    };
    attempt.start(req);
  }

  /** Accounts for one try exactly once: load, latency and breaker. */
  #settle(a: Attempt, ok: boolean | null): void {
    if (a.settled) return;
    a.settled = true;
    const ep = a.endpoint;
    ep.ewma.pending--;
    if (ok === null) ep.breaker.abandon();
    else ep.breaker.record(ok);
    if (a === this.#attempt && this.#tryTimer !== null) {
      clearTimeout(this.#tryTimer);
      this.#tryTimer = null;
    }
  }

  #canRetry(): boolean {
    const r = (this.#rule as CompiledRule).retry;
    if (r === null || this.#retries >= r.attempts || this.#state !== PENDING) return false;
    if (this.#client.hasBody && (this.#body === null || !this.#body.replayable)) return false;
    return performance.now() + this.#backoff() < this.#deadline;
  }

  #backoff(): number {
    const base = (this.#rule as CompiledRule).retry?.backoffMs ?? 0;
    // Exponential from the configured minimum, capped so a long series stays bounded.
    return Math.min(base * 2 ** this.#retries, base * 32);
  }

  #retry(): void {
    const wait = this.#backoff();
    this.#retries++;
    this.#attempt = null;
    this.#retryTimer = setTimeout(sendAgain, wait, this);
  }

  onAttemptHead(a: Attempt, status: number, headers: string[], endStream: boolean): void {
    if (a !== this.#attempt || this.#state !== PENDING) return;
    const now = performance.now();
    a.endpoint.ewma.observe(now - this.#tryStart, now);
    const rule = this.#rule as CompiledRule;
    const client = this.#client;
    if (rule.retry?.codes.has(status) && this.#canRetry()) {
      a.abort();
      this.#settle(a, false);
      this.#retry();
      return;
    }
    this.#state = STREAMING;
    this.#code = status;
    if (endStream) {
      const gs = getFromList(headers, "grpc-status");
      if (gs !== undefined) this.#grpcStatus = gs;
    }
    if (rule.responseHeaders !== null) applyToList(headers, rule.responseHeaders);
    const choice = this.#choice as BackendChoice;
    if (choice.responseHeaders !== null) applyToList(headers, choice.responseHeaders);
    if (this.#ctx.debugHeaders)
      headers.push("x-trellis-route", routeLabel(rule), "x-trellis-backend", choice.label);
    try {
      client.respond(status, headers, endStream);
    } catch (err) {
      // Invalid upstream headers: the response cannot be relayed.
      this.#ctx.log.warn({ err, destination: this.#plan.key }, "cannot relay upstream response head");
      a.abort();
      this.#settle(a, false);
      this.#state = PENDING;
      this.#answer(UPSTREAM_RESET);
      return;
    }
    if (endStream) {
      this.#settle(a, status < 500 && this.#grpcStatus !== "14");
      this.#finish();
    }
  }

  onAttemptData(a: Attempt, chunk: Buffer): boolean {
    if (a !== this.#attempt || this.#state !== STREAMING) return true;
    return this.#client.write(chunk);
  }

  onAttemptEnd(a: Attempt, trailers: string[] | null): void {
    if (a !== this.#attempt || this.#state !== STREAMING) return;
    if (trailers !== null) {
      const gs = getFromList(trailers, "grpc-status");
      if (gs !== undefined) this.#grpcStatus = gs;
    }
    this.#settle(a, this.#code < 500 && this.#grpcStatus !== "14");
    this.#client.end(trailers);
    this.#finish();
  }

  onAttemptError(a: Attempt, err: Error, kind: FailureKind): void {
    if (a !== this.#attempt || this.#state === DONE) return;
    this.#settle(a, false);
    if (this.#state === PENDING) {
      const client = this.#client;
      // A kept-alive connection the endpoint closed just as we reused it: one
      // silent retry is safe for requests without a body that may be repeated.
      if (
        kind === "reset" &&
        !this.#staleRetried &&
        !client.hasBody &&
        IDEMPOTENT.has(client.method) &&
        performance.now() - this.#tryStart < 50
      ) {
        this.#staleRetried = true;
        this.#attempt = null;
        this.#lastEndpoint = null;
        this.#send();
        return;
      }
      if (this.#canRetry()) {
        this.#retry();
        return;
      }
      this.#ctx.log.debug({ err, endpoint: a.endpoint.address, kind }, "upstream failure");
      this.#answer(kind === "connect" ? CONNECT_FAILED : UPSTREAM_RESET);
      return;
    }
    this.#grpcStatus = this.#client.grpc ? String(GrpcStatus.UNAVAILABLE) : this.#grpcStatus;
    this.#client.fail(GrpcStatus.UNAVAILABLE, "upstream reset");
    this.#finish();
  }

  onRequestTimeout(): void {
    this.#requestTimer = null;
    if (this.#state === DONE) return;
    const a = this.#attempt;
    if (a !== null) {
      a.abort();
      this.#settle(a, null);
    }
    if (this.#state === PENDING) {
      this.#answer(this.#clientDeadline ? DEADLINE : REQUEST_TIMEOUT);
      return;
    }
    if (this.#client.grpc) this.#grpcStatus = String(GrpcStatus.DEADLINE_EXCEEDED);
    this.#client.fail(GrpcStatus.DEADLINE_EXCEEDED, "request timeout");
    this.#finish();
  }

  onTryTimeout(): void {
    this.#tryTimer = null;
    const a = this.#attempt;
    if (this.#state === DONE || a === null) return;
    a.abort();
    this.#settle(a, false);
    if (this.#state === PENDING) {
      const r = (this.#rule as CompiledRule).retry;
      if (r !== null && (r.codes.has(504) || this.#client.grpc) && this.#canRetry()) {
        this.#retry();
        return;
      }
      this.#answer(this.#client.grpc ? DEADLINE : TRY_TIMEOUT);
      return;
    }
    if (this.#client.grpc) this.#grpcStatus = String(GrpcStatus.DEADLINE_EXCEEDED);
    this.#client.fail(GrpcStatus.DEADLINE_EXCEEDED, "upstream request timeout");
    this.#finish();
  }

  /** The client resumed reading after backpressure. */
  onClientDrain(): void {
    this.#attempt?.resume();
  }

  /** The client went away before the response was complete. */
  onClientClose(): void {
    if (this.#state === DONE) return;
    const a = this.#attempt;
    if (a !== null) {
      a.abort();
      this.#settle(a, null);
    }
    this.#code = 499;
    this.#finish();
  }

  // ---- answers made by the agent ----

  #extraResponseHeaders(): string[] {
    const headers: string[] = [];
    const rule = this.#rule;
    if (rule !== null && rule.responseHeaders !== null) applyToList(headers, rule.responseHeaders);
    const choice = this.#choice;
    if (choice !== null && choice.responseHeaders !== null) applyToList(headers, choice.responseHeaders);
    if (this.#ctx.debugHeaders) {
      headers.push(
        "x-trellis-route",
        rule === null ? "" : routeLabel(rule),
        "x-trellis-backend",
        choice?.label ?? "",
      );
    }
    return headers;
  }

  #answer(a: DirectAnswer): void {
    if (this.#state !== PENDING) return;
    const client = this.#client;
    client.answer(a, this.#extraResponseHeaders());
    if (client.grpc) {
      this.#code = 200;
      this.#grpcStatus = String(a.grpcStatus);
    } else {
      this.#code = a.httpStatus;
    }
    this.#finish();
  }

  #redirect(r: RequestRedirect): void {
    const client = this.#client;
    const location = redirectLocation(r, {
      scheme: "http",
      authority: client.authority,
      path: client.path,
      query: client.query,
      servicePort: this.#plan.port,
      matchedPrefix: this.#prefix,
    });
    const headers = this.#extraResponseHeaders();
    headers.push("location", location, "content-length", "0");
    const status = redirectStatus(r);
    this.#code = status;
    client.respond(status, headers, true);
    this.#finish();
  }

  // ---- mirrors ----

  #mirror(rule: CompiledRule): void {
    const client = this.#client;
    const body = this.#body;
    for (const m of rule.mirrors) {
      if (m.fraction < 1 && this.#ctx.random() >= m.fraction) continue;
      const headers = client.headers.slice();
      const base = {
        method: client.method,
        authority: client.authority,
        path: client.query === "" ? client.path : `${client.path}?${client.query}`,
        headers,
        grpcTimeout: null,
      };
      if (!client.hasBody) {
        Mirror.send(this.#ctx, m.backend, client.protocol, { ...base, body: null });
      } else if (body !== null) {
        // Only a body that ended within the retry limit is mirrored; larger ones are not copied.
        body.whenEnded(() => {
          const chunks = body.complete;
          if (chunks !== null) Mirror.send(this.#ctx, m.backend, client.protocol, { ...base, body: chunks });
        });
      }
    }
  }

  // ---- end ----

  #finish(): void {
    this.#state = DONE;
    if (this.#requestTimer !== null) {
      clearTimeout(this.#requestTimer);
      this.#requestTimer = null;
    }
    if (this.#tryTimer !== null) {
      clearTimeout(this.#tryTimer);
      this.#tryTimer = null;
    }
    if (this.#retryTimer !== null) {
      clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
    }
    const metrics = this.#ctx.metrics;
    if (metrics !== null) {
      const rule = this.#rule;
      metrics.request(
        {
          sourceNamespace: this.#sourceNs,
          destination: this.#plan.key,
          route: rule?.route ?? "",
          rule: rule?.rule ?? "",
          backend: this.#choice?.label ?? "",
          code: this.#code,
          grpcStatus: this.#grpcStatus,
        },
        (performance.now() - this.#start) / 1000,
      );
    }
  }
}

function routeLabel(rule: CompiledRule): string {
  return rule.route === "" ? "" : `${rule.route}#${rule.rule}`;
}

function onRequestTimeout(ex: Exchange): void {
  ex.onRequestTimeout();
}

function onTryTimeout(ex: Exchange): void {
  ex.onTryTimeout();
}

function sendAgain(ex: Exchange): void {
  ex.resend();
}

/** A fire-and-forget copy of a request: its response is read and dropped, its failures only logged. */
class Mirror implements AttemptOwner {
  static readonly TIMEOUT_MS = 10_000;
  readonly #ctx: ProxyContext;
  #attempt: Attempt | null = null;
  #timer: NodeJS.Timeout | null = null;

  private constructor(ctx: ProxyContext) {
    this.#ctx = ctx;
  }

  static send(
    ctx: ProxyContext,
    backend: BackendRuntime,
    clientProtocol: "h1" | "h2",
    req: Omit<UpstreamRequest, "body"> & { body: Buffer[] | null },
  ): void {
    const ep = backend.pick(ctx.random, null);
    if (ep === null) return;
    const m = new Mirror(ctx);
    const proto = backend.protocol === "client" ? clientProtocol : backend.protocol;
    const a: Attempt = proto === "h1" ? new H1Attempt(m, ep, ctx.h1) : new H2Attempt(m, ep, ctx.h2);
    m.#attempt = a;
    m.#timer = setTimeout(() => m.#done(true), Mirror.TIMEOUT_MS);
    m.#timer.unref();
    a.start({ ...req, body: req.body === null ? null : Readable.from(req.body, { objectMode: false }) });
  }

  #done(abort: boolean): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (abort) this.#attempt?.abort();
    this.#attempt = null;
  }

  onAttemptHead(_a: Attempt, _status: number, _headers: string[], endStream: boolean): void {
    if (endStream) this.#done(false);
  }

  onAttemptData(): boolean {
    return true;
  }

  onAttemptEnd(): void {
    this.#done(false);
  }

  onAttemptError(a: Attempt, err: Error): void {
    this.#ctx.log.debug({ err, endpoint: a.endpoint.address }, "mirror request failed");
    this.#done(false);
  }
}
