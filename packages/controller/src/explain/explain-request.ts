// `trellis explain`: which route set, match, rule and backends the agent on
// the client's node would use for one request, and why. Pure: it reads the
// compiled node tables only, with the matching semantics the NodeTable
// contract prescribes (node_table.proto), so it explains what the agent is
// told to do.
import {
  type GrpcMatch,
  type HeaderMatch,
  type HttpMatch,
  MatchType,
  type NodeTable,
  RouteKind,
  type Rule,
  type WeightedBackend,
} from "@trellis/api";
import { describeNodeRule } from "../compile/describe-node-table.ts";
import { describeGrpcMatch, describeHttpMatch } from "../resolve/matches.ts";

export interface ExplainRequest {
  /** The client pod. */
  readonly from: { readonly namespace: string; readonly name: string };
  /** The Service and port the client connects to (its cluster IP and port). */
  readonly to: { readonly namespace: string; readonly name: string; readonly port: number };
  /** HTTP path, query string allowed ("/edge/?row=1"); for gRPC "/<service>/<method>". */
  readonly path?: string;
  readonly method?: string;
  readonly headers?: readonly (readonly [string, string])[];
  /** gRPC service and method; sets the path to "/<service>/<method>". */
  readonly grpc?: { readonly service: string; readonly method: string };
}

export type Explanation = { readonly [key: string]: unknown };

export function explainRequest(tables: ReadonlyMap<string, NodeTable>, req: ExplainRequest): Explanation {
  const client = `${req.from.namespace}/${req.from.name}`;
  let node: NodeTable | undefined;
  let captured = false;
  for (const table of tables.values()) {
    const pod = table.localPods.find((p) => p.namespace === req.from.namespace && p.name === req.from.name);
    if (pod) {
      node = table;
      captured = pod.captured;
      break;
    }
  }
  const target = `${req.to.namespace}/${req.to.name}:${req.to.port}`;
  if (!node) {
    return {
      client,
      to: target,
      verdict: `pod ${client} is in no node table: not scheduled yet, host-network, finished, or missing; Trellis does not handle its traffic`,
    };
  }
  const header = { client, node: node.node, to: target };
  if (!captured) {
    return {
      ...header,
      verdict: `not captured (namespace ${req.from.namespace} is not labelled trellis.dev/capture=enabled, or the pod opts out): kube-proxy handles the connection`,
    };
  }
  const service = node.services.find((s) => s.namespace === req.to.namespace && s.name === req.to.name);
  const port = service?.ports.find((p) => p.port === req.to.port);
  if (!service || !port) {
    return {
      ...header,
      verdict: `${target} is not meshed (its namespace is not captured and no route attaches to that port): kube-proxy handles the connection`,
    };
  }
  const path = req.grpc ? `/${req.grpc.service}/${req.grpc.method}` : (req.path ?? "/");
  const base = { ...header, clusterIPs: service.clusterIps, protocol: port.protocolSource };
  const set =
    port.routeSets.find((s) => s.clientNamespace === req.from.namespace) ??
    port.routeSets.find((s) => s.clientNamespace === "*");
  if (!set) {
    return {
      ...base,
      routeSet: "none: no route attaches to this port for these clients",
      verdict: `forwarded to the Service's own endpoints (backend ${port.defaultBackendId})`,
      backends: describeBackends(
        [{ weight: 1, target: { $case: "backendId", backendId: port.defaultBackendId } }],
        node,
      ),
    };
  }
  const setLabel =
    set.clientNamespace === "*"
      ? "producer routes (route namespace = Service namespace)"
      : `consumer routes of namespace ${set.clientNamespace} (they replace the producer routes for its clients)`;
  const request = normalise(req, path);
  const tried: string[] = [];
  for (const entry of set.matches) {
    const rule = set.rules[entry.rule];
    const text =
      entry.match?.$case === "http"
        ? describeHttpMatch(entry.match.http)
        : entry.match?.$case === "grpc"
          ? describeGrpcMatch(entry.match.grpc)
          : "?";
    const ok =
      entry.match?.$case === "http"
        ? httpMatches(entry.match.http, request)
        : entry.match?.$case === "grpc"
          ? grpcMatches(entry.match.grpc, request)
          : false;
    if (!ok || !rule) {
      tried.push(`${text}: no`);
      continue;
    }
    return {
      ...base,
      routeSet: setLabel,
      ...(tried.length > 0 ? { notMatching: tried } : {}),
      matched: `${text} → ${ruleLabel(rule)}`,
      rule: describeNodeRule(rule),
      ...(rule.action?.$case === "forward"
        ? { backends: describeBackends(rule.action.forward.backends, node) }
        : {}),
    };
  }
  return {
    ...base,
    routeSet: setLabel,
    notMatching: tried,
    verdict: `no rule matches: ${set.noMatch ? `${set.noMatch.httpStatus} / grpc-status ${set.noMatch.grpcStatus} (${set.noMatch.message})` : "404"}`,
    ...(set.kind === RouteKind.ROUTE_KIND_GRPC && !req.grpc
      ? { hint: "these are GRPCRoutes: give --grpc-method <service>/<method>" }
      : {}),
  };
}

interface NormalRequest {
  readonly path: string;
  readonly method: string;
  /** Lower-case names → values in order given. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  /** First occurrence of each query parameter. */
  readonly query: ReadonlyMap<string, string>;
  readonly grpc: { readonly service: string; readonly method: string } | undefined;
}

function normalise(req: ExplainRequest, rawPath: string): NormalRequest {
  const q = rawPath.indexOf("?");
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  const query = new Map<string, string>();
  if (q >= 0) {
    for (const [k, v] of new URLSearchParams(rawPath.slice(q + 1))) if (!query.has(k)) query.set(k, v);
  }
  const headers = new Map<string, string[]>();
  for (const [k, v] of req.headers ?? [])
    headers.set(k.toLowerCase(), [...(headers.get(k.toLowerCase()) ?? []), v]);
  const grpcPath = /^\/([^/]+)\/([^/]+)$/.exec(path);
  return {
    path,
    method: (req.method ?? (req.grpc ? "POST" : "GET")).toUpperCase(),
    headers,
    query,
    grpc: req.grpc ?? (grpcPath ? { service: grpcPath[1]!, method: grpcPath[2]! } : undefined),
  };
}

function stringMatches(type: MatchType, expected: string, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  if (type === MatchType.MATCH_TYPE_REGEX) return new RegExp(`^(?:${expected})$`).test(actual);
  return actual === expected;
}

function headersMatch(matches: readonly HeaderMatch[], req: NormalRequest): boolean {
  // A header sent several times is compared as the values joined by ",".
  return matches.every((h) => stringMatches(h.type, h.value, req.headers.get(h.name)?.join(",")));
}

function httpMatches(m: HttpMatch, req: NormalRequest): boolean {
  const p = m.path;
  if (p) {
    if (p.type === MatchType.MATCH_TYPE_PREFIX) {
      if (!(p.value === "/" || req.path === p.value || req.path.startsWith(`${p.value}/`))) return false;
    } else if (!stringMatches(p.type, p.value, req.path)) return false;
  }
  if (m.method !== "" && m.method !== req.method) return false;
  if (!headersMatch(m.headers, req)) return false;
  return m.queryParams.every((q) => stringMatches(q.type, q.value, req.query.get(q.name)));
}

function grpcMatches(m: GrpcMatch, req: NormalRequest): boolean {
  if (m.service !== "" || m.method !== "") {
    if (!req.grpc) return false;
    if (m.service !== "" && !stringMatches(m.type, m.service, req.grpc.service)) return false;
    if (m.method !== "" && !stringMatches(m.type, m.method, req.grpc.method)) return false;
  }
  return headersMatch(m.headers, req);
}

function ruleLabel(rule: Rule): string {
  const kind = rule.route?.kind === RouteKind.ROUTE_KIND_GRPC ? "GRPCRoute" : "HTTPRoute";
  return `${kind} ${rule.route?.namespace}/${rule.route?.name} rule ${rule.ruleIndex}${rule.ruleName ? ` (${rule.ruleName})` : ""}`;
}

function describeBackends(backends: readonly WeightedBackend[], node: NodeTable): string[] {
  const total = backends.reduce((n, b) => n + b.weight, 0);
  return backends.map((b) => {
    const share = total > 0 ? `${Math.round((1000 * b.weight) / total) / 10} %` : "0 %";
    if (b.target?.$case === "direct") {
      const d = b.target.direct;
      return `${share}: answered ${d.httpStatus} / grpc-status ${d.grpcStatus} (${d.message})`;
    }
    const id = b.target?.$case === "backendId" ? b.target.backendId : "?";
    const backend = node.backends.find((x) => x.id === id);
    const ready = backend?.endpoints.filter((e) => e.ready).length ?? 0;
    const serving = backend?.endpoints.filter((e) => !e.ready && e.serving).length ?? 0;
    const endpoints =
      ready > 0
        ? `${ready} ready endpoint${ready === 1 ? "" : "s"}`
        : serving > 0
          ? `no ready endpoint; ${serving} terminating but serving`
          : "no endpoints: 503 / UNAVAILABLE";
    return `${share}: ${id} (${endpoints})`;
  });
}

/**
 * Reads the request as `trellis explain` passes it: from "<ns>/<pod>"; to
 * "<ns>/<svc>:<port>", "<svc>.<ns>:<port>" or "<svc>:<port>" (the client's
 * namespace, as DNS would resolve it); headers "name: value" or "name=value";
 * grpc "<service>/<method>".
 */
export function parseExplainRequest(params: {
  from: string | null;
  to: string | null;
  path?: string | null;
  method?: string | null;
  headers?: readonly string[];
  grpc?: string | null;
}): ExplainRequest | { error: string } {
  const from = /^([^/\s]+)\/([^/\s]+)$/.exec(params.from ?? "");
  if (!from) return { error: "from must be <namespace>/<pod>" };
  const to = /^(?:([^/\s]+)\/)?([^/:\s]+):(\d+)$/.exec(params.to ?? "");
  if (!to)
    return {
      error: "to must be <namespace>/<service>:<port>, <service>.<namespace>:<port> or <service>:<port>",
    };
  let namespace = to[1] ?? from[1]!;
  let name = to[2]!;
  if (!to[1] && name.includes(".")) {
    const dot = name.indexOf(".");
    namespace = name.slice(dot + 1).replace(/\.svc(\..*)?$/, "");
    name = name.slice(0, dot);
  }
  const headers: [string, string][] = [];
  for (const h of params.headers ?? []) {
    const m = /^([^:=\s]+)\s*[:=]\s*(.*)$/.exec(h);
    if (!m) return { error: `header "${h}" must be name=value or "name: value"` };
    headers.push([m[1]!, m[2]!]);
  }
  let grpc: { service: string; method: string } | undefined;
  if (params.grpc) {
    const m = /^\/?([^/\s]+)\/([^/\s]+)$/.exec(params.grpc);
    if (!m) return { error: "grpc method must be <service>/<method>, e.g. ColorService/Center" };
    grpc = { service: m[1]!, method: m[2]! };
  }
  return {
    from: { namespace: from[1]!, name: from[2]! },
    to: { namespace, name, port: Number(to[3]) },
    ...(params.path ? { path: params.path } : {}),
    ...(params.method ? { method: params.method } : {}),
    headers,
    ...(grpc ? { grpc } : {}),
  };
}
