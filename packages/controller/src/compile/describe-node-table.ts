// A NodeTable as a plain, human-readable tree (for golden files and
// `trellis tables`). It shows everything the agent would act on, in the same
// order, with backend ids and rules spelled out instead of wire shapes.
import {
  type DirectResponse,
  type HeaderModifier,
  type NodeTable,
  type PathRewrite,
  PathRewriteType,
  Protocol,
  RouteKind,
  type RouteSet,
  type Rule,
  type WeightedBackend,
} from "@trellis/api";
import { describeGrpcMatch, describeHttpMatch } from "../resolve/matches.ts";

export type Described =
  | string
  | number
  | boolean
  | readonly Described[]
  | { readonly [key: string]: Described };

const PROTOCOL_NAMES: Readonly<Record<number, string>> = {
  [Protocol.PROTOCOL_HTTP1]: "HTTP1",
  [Protocol.PROTOCOL_HTTP2]: "HTTP2",
  [Protocol.PROTOCOL_GRPC]: "GRPC",
  [Protocol.PROTOCOL_TCP]: "TCP",
  [Protocol.PROTOCOL_SNIFF]: "SNIFF",
};

export function describeNodeTable(table: NodeTable): { [key: string]: Described } {
  return {
    version: `${table.version?.epoch ?? 0}.${table.version?.number ?? 0}`,
    settings: table.settings
      ? `listeners ${table.settings.listenerPortMin}-${table.settings.listenerPortMax}, fail ${table.settings.failMode === 2 ? "closed" : "open"}, retry bodies up to ${table.settings.retryBodyLimitBytes} bytes`
      : "none",
    capturedNamespaces: table.capturedNamespaces.join(", ") || "none",
    localPods: table.localPods.map(
      (p) => `${p.namespace}/${p.name} ${p.ips.join(",") || "(no IP yet)"}${p.captured ? " captured" : ""}`,
    ),
    services: Object.fromEntries(
      table.services.map((s) => [
        `${s.namespace}/${s.name} ${s.clusterIps.join(",")}`,
        Object.fromEntries(
          s.ports.map((p) => [
            `${p.port}${p.name ? `/${p.name}` : ""} ${PROTOCOL_NAMES[p.protocol] ?? p.protocol} (${p.protocolSource})`,
            {
              default: p.defaultBackendId,
              ...(p.routeSets.length > 0 ? { routeSets: p.routeSets.map(describeRouteSet) } : {}),
            },
          ]),
        ),
      ]),
    ),
    backends: Object.fromEntries(
      table.backends.map((b) => [
        `${b.id} ${PROTOCOL_NAMES[b.protocol] ?? b.protocol}`,
        b.endpoints.map(
          (e) =>
            `${e.ip}:${e.port} ${e.node || "(node?)"} ${e.pod || "(pod?)"}${e.ready ? " ready" : ""}${e.serving ? " serving" : ""}${e.terminating ? " terminating" : ""}`,
        ),
      ]),
    ),
  };
}

function ruleLabel(rule: Rule): string {
  const kind = rule.route?.kind === RouteKind.ROUTE_KIND_GRPC ? "GRPCRoute" : "HTTPRoute";
  return `${kind} ${rule.route?.namespace}/${rule.route?.name} rule ${rule.ruleIndex}${rule.ruleName ? ` (${rule.ruleName})` : ""}`;
}

function describeRouteSet(set: RouteSet): Described {
  return {
    clients: set.clientNamespace,
    kind: set.kind === RouteKind.ROUTE_KIND_GRPC ? "GRPC" : "HTTP",
    matches: set.matches.map((m) => {
      const rule = set.rules[m.rule];
      const text =
        m.match?.$case === "http"
          ? describeHttpMatch(m.match.http)
          : m.match?.$case === "grpc"
            ? describeGrpcMatch(m.match.grpc)
            : "?";
      return `${text} → ${rule ? ruleLabel(rule) : `missing rule ${m.rule}`}`;
    }),
    rules: Object.fromEntries(set.rules.map((r) => [ruleLabel(r), describeNodeRule(r)])),
    noMatch: describeDirect(set.noMatch),
  };
}

/** One rule as the tables show it (also used by `trellis explain`). */
export function describeNodeRule(rule: Rule): Described {
  const out: Record<string, Described> = {};
  const action = rule.action;
  if (action?.$case === "forward") out.forward = action.forward.backends.map(describeWeighted);
  else if (action?.$case === "redirect") {
    const r = action.redirect;
    const parts = [`${r.statusCode}`];
    if (r.scheme) parts.push(`scheme ${r.scheme}`);
    if (r.hostname) parts.push(`host ${r.hostname}`);
    if (r.port) parts.push(`port ${r.port}`);
    if (r.path) parts.push(describePathRewrite(r.path));
    out.redirect = parts.join(", ");
  } else if (action?.$case === "direct") out.direct = describeDirect(action.direct);
  if (rule.requestHeaders) out.requestHeaders = describeHeaders(rule.requestHeaders);
  if (rule.responseHeaders) out.responseHeaders = describeHeaders(rule.responseHeaders);
  if (rule.urlRewrite) {
    const parts: string[] = [];
    if (rule.urlRewrite.hostname) parts.push(`host ${rule.urlRewrite.hostname}`);
    if (rule.urlRewrite.path) parts.push(describePathRewrite(rule.urlRewrite.path));
    out.urlRewrite = parts.join(", ");
  }
  if (rule.mirrors.length > 0)
    out.mirrors = rule.mirrors.map((m) => `${m.numerator}/${m.denominator} → ${m.backendId}`);
  if (rule.timeouts) {
    const ms = (value: number) => (value === 0 ? "none" : `${value}ms`);
    out.timeouts = `request ${ms(rule.timeouts.requestMs)}, backendRequest ${ms(rule.timeouts.backendRequestMs)}`;
  }
  if (rule.retry) {
    const n = rule.retry.attempts;
    out.retry = `${n} retr${n === 1 ? "y" : "ies"} on ${rule.retry.codes.join(",") || "connection failures"}, backoff ${rule.retry.backoffMs}ms`;
  }
  return out;
}

function describeWeighted(backend: WeightedBackend): Described {
  const target =
    backend.target?.$case === "backendId"
      ? backend.target.backendId
      : backend.target?.$case === "direct"
        ? `answer ${describeDirect(backend.target.direct)}`
        : "?";
  const text = `${backend.weight} ${target}`;
  if (!backend.requestHeaders && !backend.responseHeaders) return text;
  return {
    [text]: {
      ...(backend.requestHeaders ? { requestHeaders: describeHeaders(backend.requestHeaders) } : {}),
      ...(backend.responseHeaders ? { responseHeaders: describeHeaders(backend.responseHeaders) } : {}),
    },
  };
}

function describeDirect(direct: DirectResponse | undefined): string {
  if (!direct) return "none";
  return `${direct.httpStatus} / grpc-status ${direct.grpcStatus}: ${direct.message}`;
}

function describeHeaders(modifier: HeaderModifier): Described {
  const out: Record<string, Described> = {};
  if (modifier.set.length > 0) out.set = modifier.set.map((h) => `${h.name}: ${h.value}`);
  if (modifier.add.length > 0) out.add = modifier.add.map((h) => `${h.name}: ${h.value}`);
  if (modifier.remove.length > 0) out.remove = [...modifier.remove];
  return out;
}

function describePathRewrite(path: PathRewrite): string {
  return path.type === PathRewriteType.PATH_REWRITE_TYPE_PREFIX_MATCH
    ? `replace prefix with ${path.value}`
    : `replace path with ${path.value}`;
}
