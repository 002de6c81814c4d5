// NodeTable → the structures the proxies execute. Everything that can be
// decided once per table (predicates, regexes, weights, header modifiers,
// encoded gRPC messages, backend lookups) is decided here, so a request only
// walks precompiled data. A table that refers to something it does not define
// is rejected as a whole: the agent keeps serving its last good table.

import {
  type DirectResponse,
  type NodeTable,
  Protocol,
  type RequestMirror,
  type RequestRedirect,
  type Retry,
  RouteKind,
  type RouteSet,
  type Rule,
  type TableVersion,
  type URLRewrite,
} from "@trellis/api";
import type { BackendRuntime, EndpointRegistry, EndpointState } from "../endpoints/backend.ts";
import { encodeGrpcMessage, GrpcStatus } from "../grpc.ts";
import { type CompiledHeaderModifier, compileHeaderModifier } from "../routing/headers.ts";
import { compileGrpcMatch, compileHttpMatch, type Predicate } from "../routing/match.ts";
import { WeightedPicker } from "../routing/weighted.ts";

export class TableError extends Error {
  override name = "TableError";
}

export const DEFAULT_RETRY_BODY_LIMIT = 64 * 1024;

/** An answer the agent produces itself, ready to send in either protocol. */
export interface DirectAnswer {
  readonly httpStatus: number;
  readonly grpcStatus: number;
  /** grpc-message, already percent-encoded. */
  readonly grpcMessage: string;
  /** HTTP body (the message plus a newline). */
  readonly body: Buffer;
}

export interface BackendChoice {
  /** Backend id, or "" when the choice is a direct answer. */
  readonly label: string;
  readonly backend: BackendRuntime | null;
  readonly direct: DirectAnswer | null;
  readonly requestHeaders: CompiledHeaderModifier | null;
  readonly responseHeaders: CompiledHeaderModifier | null;
}

export type RuleAction =
  | { readonly kind: "forward"; readonly picker: WeightedPicker<BackendChoice> }
  | { readonly kind: "redirect"; readonly redirect: RequestRedirect }
  | { readonly kind: "direct"; readonly answer: DirectAnswer };

export interface CompiledMirror {
  readonly backend: BackendRuntime;
  /** Probability in [0, 1]. */
  readonly fraction: number;
}

export interface CompiledRetry {
  readonly codes: ReadonlySet<number>;
  readonly attempts: number;
  readonly backoffMs: number;
}

export interface CompiledRule {
  /** "namespace/name" of the route; "" for the default (no route) behaviour. */
  readonly route: string;
  /** spec.rules[].name, else the rule index; "" for the default behaviour. */
  readonly rule: string;
  readonly action: RuleAction;
  readonly requestHeaders: CompiledHeaderModifier | null;
  readonly responseHeaders: CompiledHeaderModifier | null;
  readonly urlRewrite: URLRewrite | null;
  readonly mirrors: readonly CompiledMirror[];
  readonly requestTimeoutMs: number;
  readonly backendTimeoutMs: number;
  readonly retry: CompiledRetry | null;
  /** Whether the request body must be kept for a second send (retries, mirrors). */
  readonly retainsBody: boolean;
}

export interface CompiledMatch {
  readonly test: Predicate;
  readonly prefix: string | null;
  readonly rule: CompiledRule;
}

export interface CompiledRouteSet {
  readonly clientNamespace: string;
  readonly grpc: boolean;
  readonly matches: readonly CompiledMatch[];
  readonly noMatch: DirectAnswer;
}

export type ListenerProtocol = "h1" | "h2" | "grpc" | "tcp" | "sniff";

export interface PortPlan {
  /** "namespace/name:port", the listener's identity across versions. */
  readonly key: string;
  readonly serviceNamespace: string;
  readonly serviceName: string;
  readonly clusterIps: readonly string[];
  readonly port: number;
  readonly protocol: ListenerProtocol;
  /** The rule used when the client's namespace has no route set (forward to the Service's endpoints). */
  readonly defaultRule: CompiledRule | null;
  readonly defaultBackend: BackendRuntime | null;
  readonly producer: CompiledRouteSet | null;
  readonly consumers: ReadonlyMap<string, CompiledRouteSet>;
  readonly retryBodyLimit: number;
}

export interface CompiledTable {
  readonly version: TableVersion;
  readonly versionLabel: string;
  readonly node: string;
  readonly listenerPortMin: number;
  readonly listenerPortMax: number;
  readonly retryBodyLimit: number;
  readonly ports: ReadonlyMap<string, PortPlan>;
  readonly backends: ReadonlyMap<string, BackendRuntime>;
  /** Local pod IP → namespace, to tell which consumer routes a client sees. */
  readonly podNamespaces: ReadonlyMap<string, string>;
  /** Endpoint states created for this table (adopted on apply, shut down on reject). */
  readonly createdEndpoints: Map<string, EndpointState>;
}

/** gRPC status for an HTTP status, per the gRPC spec's HTTP-to-gRPC mapping. */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 200:
      return GrpcStatus.OK;
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

export function directAnswer(
  httpStatus: number,
  grpcStatus: number | undefined,
  message: string,
): DirectAnswer {
  const http = httpStatus === 0 ? 500 : httpStatus;
  const grpc =
    grpcStatus === undefined || (grpcStatus === 0 && http >= 300) ? grpcStatusForHttp(http) : grpcStatus;
  return {
    httpStatus: http,
    grpcStatus: grpc,
    grpcMessage: encodeGrpcMessage(message),
    body: Buffer.from(message === "" ? "" : `${message}\n`),
  };
}

function fromDirect(d: DirectResponse | undefined, fallback: DirectAnswer): DirectAnswer {
  if (d === undefined) return fallback;
  return directAnswer(d.httpStatus, d.grpcStatus, d.message);
}

const NO_MATCH = directAnswer(404, GrpcStatus.UNIMPLEMENTED, "no route matched");
const INVALID_RULE = directAnswer(500, GrpcStatus.UNIMPLEMENTED, "route rule has no usable backend");
const INVALID_BACKEND = directAnswer(500, GrpcStatus.UNAVAILABLE, "backend is invalid");

function listenerProtocol(p: Protocol): ListenerProtocol {
  switch (p) {
    case Protocol.PROTOCOL_HTTP1:
      return "h1";
    case Protocol.PROTOCOL_HTTP2:
      return "h2";
    case Protocol.PROTOCOL_GRPC:
      return "grpc";
    case Protocol.PROTOCOL_TCP:
      return "tcp";
    default:
      return "sniff";
  }
}

/** Values that end up on a request line or in Location must not carry whitespace or control characters. */
function checkTarget(value: string, what: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f)
      throw new TableError(`${what} ${JSON.stringify(value)} contains whitespace or control characters`);
  }
}

function compileRetry(r: Retry | undefined): CompiledRetry | null {
  if (r === undefined || r.attempts === 0) return null;
  return { codes: new Set(r.codes), attempts: r.attempts, backoffMs: r.backoffMs };
}

class Compiler {
  readonly backends = new Map<string, BackendRuntime>();
  readonly #table: NodeTable;

  constructor(table: NodeTable, registry: EndpointRegistry, created: Map<string, EndpointState>) {
    this.#table = table;
    for (const b of table.backends) {
      if (this.backends.has(b.id)) throw new TableError(`backend ${b.id} is defined twice`);
      this.backends.set(b.id, registry.build(b, created));
    }
  }

  backend(id: string, where: string): BackendRuntime {
    const b = this.backends.get(id);
    if (b === undefined)
      throw new TableError(`${where} refers to backend ${JSON.stringify(id)}, not in the table`);
    return b;
  }

  rule(r: Rule, where: string): CompiledRule {
    const route = r.route === undefined ? "" : `${r.route.namespace}/${r.route.name}`;
    const label = r.ruleName !== "" ? r.ruleName : String(r.ruleIndex);
    const at = `${where} rule ${route}#${label}`;
    try {
      return this.#rule(r, route, label, at);
    } catch (err) {
      if (err instanceof TableError) throw err;
      throw new TableError(`${at}: ${(err as Error).message}`);
    }
  }

  #rule(r: Rule, route: string, label: string, at: string): CompiledRule {
    checkTarget(r.urlRewrite?.hostname ?? "", "URLRewrite hostname");
    checkTarget(r.urlRewrite?.path?.value ?? "", "URLRewrite path");
    if (r.action?.$case === "redirect") {
      checkTarget(r.action.redirect.hostname, "redirect hostname");
      checkTarget(r.action.redirect.scheme, "redirect scheme");
      checkTarget(r.action.redirect.path?.value ?? "", "redirect path");
    }
    let action: RuleAction;
    const a = r.action;
    if (a === undefined) {
      action = { kind: "direct", answer: INVALID_RULE };
    } else if (a.$case === "forward") {
      const entries = a.forward.backends.map((wb) => {
        const choice: BackendChoice =
          wb.target?.$case === "backendId"
            ? {
                label: wb.target.backendId,
                backend: this.backend(wb.target.backendId, at),
                direct: null,
                requestHeaders: compileHeaderModifier(wb.requestHeaders),
                responseHeaders: compileHeaderModifier(wb.responseHeaders),
              }
            : {
                label: "",
                backend: null,
                direct:
                  wb.target?.$case === "direct"
                    ? fromDirect(wb.target.direct, INVALID_BACKEND)
                    : INVALID_BACKEND,
                requestHeaders: null,
                responseHeaders: compileHeaderModifier(wb.responseHeaders),
              };
        return { weight: wb.weight, value: choice };
      });
      if (!entries.some((e) => e.weight > 0))
        throw new TableError(`${at}: forward has no backend with weight > 0`);
      action = { kind: "forward", picker: new WeightedPicker(entries) };
    } else if (a.$case === "redirect") {
      action = { kind: "redirect", redirect: a.redirect };
    } else {
      action = { kind: "direct", answer: fromDirect(a.direct, INVALID_RULE) };
    }
    const mirrors = r.mirrors.map((m: RequestMirror) => ({
      backend: this.backend(m.backendId, `${at} mirror`),
      fraction: m.denominator === 0 ? (m.numerator === 0 ? 1 : 1) : Math.min(1, m.numerator / m.denominator),
    }));
    const retry = compileRetry(r.retry);
    return {
      route,
      rule: label,
      action,
      requestHeaders: compileHeaderModifier(r.requestHeaders),
      responseHeaders: compileHeaderModifier(r.responseHeaders),
      urlRewrite: r.urlRewrite ?? null,
      mirrors,
      requestTimeoutMs: r.timeouts?.requestMs ?? 0,
      backendTimeoutMs: r.timeouts?.backendRequestMs ?? 0,
      retry,
      retainsBody: retry !== null || mirrors.length > 0,
    };
  }

  routeSet(set: RouteSet, where: string): CompiledRouteSet {
    const at = `${where} route set ${JSON.stringify(set.clientNamespace)}`;
    const rules = set.rules.map((r) => this.rule(r, at));
    const matches = set.matches.map((m, i): CompiledMatch => {
      const rule = rules[m.rule];
      if (rule === undefined)
        throw new TableError(`${at} match ${i} refers to rule ${m.rule} of ${rules.length}`);
      let compiled: { test: Predicate; prefix: string | null };
      try {
        if (m.match?.$case === "http") compiled = compileHttpMatch(m.match.http);
        else if (m.match?.$case === "grpc") compiled = compileGrpcMatch(m.match.grpc);
        else compiled = { test: () => true, prefix: null };
      } catch (err) {
        throw new TableError(`${at} match ${i}: ${(err as Error).message}`);
      }
      return { test: compiled.test, prefix: compiled.prefix, rule };
    });
    return {
      clientNamespace: set.clientNamespace,
      grpc: set.kind === RouteKind.ROUTE_KIND_GRPC,
      matches,
      noMatch: fromDirect(set.noMatch, NO_MATCH),
    };
  }

  defaultRule(backend: BackendRuntime): CompiledRule {
    return {
      route: "",
      rule: "",
      action: {
        kind: "forward",
        picker: new WeightedPicker([
          {
            weight: 1,
            value: { label: backend.id, backend, direct: null, requestHeaders: null, responseHeaders: null },
          },
        ]),
      },
      requestHeaders: null,
      responseHeaders: null,
      urlRewrite: null,
      mirrors: [],
      requestTimeoutMs: 0,
      backendTimeoutMs: 0,
      retry: null,
      retainsBody: false,
    };
  }

  compile(): Omit<CompiledTable, "createdEndpoints"> {
    const t = this.#table;
    const settings = t.settings;
    const min = settings?.listenerPortMin ?? 0;
    const max = settings?.listenerPortMax ?? 0;
    if (!(min > 0 && max >= min && max <= 65535)) {
      throw new TableError(`listener port range ${min}..${max} is not a valid range`);
    }
    const retryBodyLimit =
      settings?.retryBodyLimitBytes === undefined || settings.retryBodyLimitBytes === 0
        ? DEFAULT_RETRY_BODY_LIMIT
        : settings.retryBodyLimitBytes;
    const ports = new Map<string, PortPlan>();
    for (const svc of t.services) {
      for (const p of svc.ports) {
        const key = `${svc.namespace}/${svc.name}:${p.port}`;
        if (ports.has(key)) throw new TableError(`service port ${key} is defined twice`);
        const defaultBackend = p.defaultBackendId === "" ? null : this.backend(p.defaultBackendId, key);
        let producer: CompiledRouteSet | null = null;
        const consumers = new Map<string, CompiledRouteSet>();
        for (const set of p.routeSets) {
          const compiled = this.routeSet(set, key);
          if (set.clientNamespace === "*") producer = compiled;
          else consumers.set(set.clientNamespace, compiled);
        }
        ports.set(key, {
          key,
          serviceNamespace: svc.namespace,
          serviceName: svc.name,
          clusterIps: svc.clusterIps,
          port: p.port,
          protocol: listenerProtocol(p.protocol),
          defaultRule: defaultBackend === null ? null : this.defaultRule(defaultBackend),
          defaultBackend,
          producer,
          consumers,
          retryBodyLimit,
        });
      }
    }
    const podNamespaces = new Map<string, string>();
    for (const pod of t.localPods) for (const ip of pod.ips) podNamespaces.set(ip, pod.namespace);
    const version = t.version ?? { epoch: 0, number: 0 };
    return {
      version,
      versionLabel: `${version.epoch}/${version.number}`,
      node: t.node,
      listenerPortMin: min,
      listenerPortMax: max,
      retryBodyLimit,
      ports,
      backends: this.backends,
      podNamespaces,
    };
  }
}

/**
 * Compiles a table against the long-lived endpoint registry. Endpoint states
 * it creates are not yet adopted: the caller commits them once the table is in
 * force, or discards them if applying fails.
 */
export function compileTable(table: NodeTable, registry: EndpointRegistry): CompiledTable {
  const created = new Map<string, EndpointState>();
  try {
    const c = new Compiler(table, registry, created);
    return { ...c.compile(), createdEndpoints: created };
  } catch (err) {
    registry.discard(created);
    if (err instanceof TableError) throw err;
    throw new TableError((err as Error).message);
  }
}
