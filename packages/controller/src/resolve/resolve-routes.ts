// Snapshot → Resolution: every GAMMA decision in one pure pass. Routes are
// grouped per (Service, port, client group), conflicts settled, rules ordered
// by precedence, and a status produced for every Service parentRef.
import { RouteKind, type RouteSet, type Rule, type RuleMatch } from "@trellis/api";
import {
  objectKey,
  type ParentRefSpec,
  type RouteKindName,
  type RouteObject,
  type Snapshot,
} from "../snapshot/snapshot.ts";
import { compareStrings } from "../sort-order.ts";
import { BackendCatalog } from "./backends.ts";
import { bindParent, PRODUCER_GROUP, parentRefOwner } from "./binding.ts";
import { compareOrigins, compareRankedMatches, type RankedMatch } from "./precedence.ts";
import { servicePortProtocol } from "./protocol.ts";
import type { Resolution, ResolvedService, RouteStatus } from "./resolution.ts";
import { type CompiledRoute, compileRoute, GRPC_UNIMPLEMENTED, routeLabel } from "./route-rules.ts";
import { type ParentOutcome, parentStatus } from "./status.ts";

interface ParentState {
  readonly ref: ParentRefSpec;
  outcome: ParentOutcome;
}

interface Attachment {
  readonly compiled: CompiledRoute;
  readonly parents: readonly ParentState[];
}

export function resolveRoutes(snapshot: Snapshot): Resolution {
  const catalog = new BackendCatalog(snapshot);
  const compiled = snapshot.routes.map((route) => compileRoute(route, catalog));

  // Bind every Service parentRef; collect attachments per slot (service port × client group).
  const parentsByRoute = new Map<RouteObject, ParentState[]>();
  const slots = new Map<string, Attachment[]>();
  // Slot keys per service port, so each port finds its client groups directly.
  const groupsByPort = new Map<string, string[]>();
  for (const c of compiled) {
    const states: ParentState[] = [];
    const seen = new Set<string>();
    for (const ref of c.route.parentRefs) {
      if (parentRefOwner(ref) === "other") continue;
      const identity = JSON.stringify([
        ref.group,
        ref.kind,
        ref.namespace ?? c.route.namespace,
        ref.name,
        ref.port,
        ref.sectionName,
      ]);
      if (seen.has(identity)) continue;
      seen.add(identity);
      const binding = bindParent(c.route, ref, snapshot);
      const state: ParentState = {
        ref,
        outcome:
          c.route.problems.length > 0
            ? { state: "unreadable" }
            : binding.ok
              ? { state: "bound", binding }
              : { state: "unbound", binding },
      };
      states.push(state);
      if (state.outcome.state !== "bound") continue;
      const b = state.outcome.binding;
      for (const port of b.ports) {
        const portKey = `${objectKey(b.service.namespace, b.service.name)}:${port.port}`;
        const key = slotKey(objectKey(b.service.namespace, b.service.name), port.port, b.clientGroup);
        if (!slots.has(key)) groupsByPort.set(portKey, [...(groupsByPort.get(portKey) ?? []), key]);
        const list = slots.get(key) ?? [];
        if (!list.some((a) => a.compiled === c)) list.push({ compiled: c, parents: states });
        slots.set(key, list);
      }
    }
    parentsByRoute.set(c.route, states);
  }

  // An HTTPRoute and a GRPCRoute for the same clients on one port: the GRPCRoute wins.
  for (const [key, attachments] of slots) {
    const grpc = attachments
      .filter((a) => a.compiled.route.kind === "GRPCRoute")
      .sort((a, b) => compareRouteAge(a.compiled.route, b.compiled.route))[0];
    if (!grpc) continue;
    for (const a of attachments) {
      if (a.compiled.route.kind !== "HTTPRoute") continue;
      const route = a.compiled.route;
      for (const state of parentsByRoute.get(route) ?? []) {
        if (state.outcome.state === "bound" && slotCovers(state, key)) {
          state.outcome = {
            state: "conflicted",
            winner: `${grpc.compiled.route.namespace}/${grpc.compiled.route.name}`,
            where: describeSlot(key),
          };
        }
      }
    }
  }

  const services: ResolvedService[] = [];
  for (const service of snapshot.services.values()) {
    if (service.type === "ExternalName" || service.headless || service.clusterIPs.length === 0) continue;
    const serviceKey = objectKey(service.namespace, service.name);
    const ports = service.ports
      .filter((p) => p.protocol === "TCP")
      .map((port) => {
        const prefix = `${serviceKey}:${port.port}|`;
        const groups = (groupsByPort.get(`${serviceKey}:${port.port}`) ?? [])
          .map((k) => ({ group: k.slice(prefix.length), attachments: bound(slots.get(k) ?? [], k) }))
          .filter((g) => g.attachments.length > 0)
          .sort((a, b) => compareGroups(a.group, b.group));
        const kinds = new Set<RouteKindName>(
          groups.flatMap((g) => g.attachments.map((a) => a.compiled.route.kind)),
        );
        const protocol = servicePortProtocol(port, kinds);
        return {
          port: port.port,
          name: port.name,
          protocol: protocol.protocol,
          protocolSource: protocol.source,
          defaultBackendId: catalog.forServicePort(service, port),
          routeSets: groups.map((g) => buildRouteSet(g.group, g.attachments, `${serviceKey}:${port.port}`)),
        };
      });
    services.push({
      namespace: service.namespace,
      name: service.name,
      clusterIPs: service.clusterIPs,
      ports,
    });
  }

  const statuses: RouteStatus[] = compiled.map((c) => ({
    kind: c.route.kind,
    namespace: c.route.namespace,
    name: c.route.name,
    generation: c.route.generation,
    parents: (parentsByRoute.get(c.route) ?? []).map((s) =>
      parentStatus(c.route, s.ref, s.outcome, c.ruleIssues, c.refIssues),
    ),
  }));
  statuses.sort(
    (a, b) =>
      compareStrings(a.kind, b.kind) ||
      compareStrings(objectKey(a.namespace, a.name), objectKey(b.namespace, b.name)),
  );

  return {
    services,
    backends: new Map([...catalog.backends].sort((a, b) => compareStrings(a[0], b[0]))),
    statuses,
  };
}

function slotKey(serviceKey: string, port: number, group: string): string {
  return `${serviceKey}:${port}|${group}`;
}

function describeSlot(key: string): string {
  const [where, group] = key.split("|");
  return `Service ${where?.replace(/:(\d+)$/, " port $1")}${group === PRODUCER_GROUP ? "" : ` (clients in namespace ${group})`}`;
}

function slotCovers(state: ParentState, key: string): boolean {
  if (state.outcome.state !== "bound") return false;
  const b = state.outcome.binding;
  return b.ports.some(
    (p) => slotKey(objectKey(b.service.namespace, b.service.name), p.port, b.clientGroup) === key,
  );
}

/** Attachments still in force after conflicts: some parentRef of the route binds it to this slot. */
function bound(attachments: readonly Attachment[], key: string): Attachment[] {
  return attachments
    .filter((a) => a.parents.some((s) => slotCovers(s, key)))
    .sort((a, b) => compareRouteAge(a.compiled.route, b.compiled.route));
}

function compareRouteAge(a: RouteObject, b: RouteObject): number {
  return compareOrigins(
    { createdAtMs: a.createdAtMs, namespace: a.namespace, name: a.name, ruleIndex: 0, matchIndex: 0 },
    { createdAtMs: b.createdAtMs, namespace: b.namespace, name: b.name, ruleIndex: 0, matchIndex: 0 },
  );
}

/** Producer set first, then consumer sets by namespace. */
function compareGroups(a: string, b: string): number {
  if (a === b) return 0;
  if (a === PRODUCER_GROUP) return -1;
  if (b === PRODUCER_GROUP) return 1;
  return compareStrings(a, b);
}

function buildRouteSet(group: string, attachments: readonly Attachment[], where: string): RouteSet {
  const kind =
    attachments[0]?.compiled.route.kind === "GRPCRoute"
      ? RouteKind.ROUTE_KIND_GRPC
      : RouteKind.ROUTE_KIND_HTTP;
  const rules: Rule[] = [];
  const entries: { ranked: RankedMatch; match: RuleMatch["match"]; rule: number }[] = [];
  for (const { compiled } of attachments) {
    for (const r of compiled.rules) {
      if (r.entries.length === 0) continue;
      const index = rules.length;
      rules.push(r.rule);
      for (const e of r.entries) entries.push({ ranked: e.ranked, match: e.match, rule: index });
    }
  }
  entries.sort((a, b) => compareRankedMatches(a.ranked, b.ranked));
  const routes = attachments.map((a) => routeLabel(a.compiled.route)).join(", ");
  return {
    clientNamespace: group,
    kind,
    rules,
    matches: entries.map((e) => ({ rule: e.rule, match: e.match })),
    noMatch: {
      httpStatus: 404,
      grpcStatus: GRPC_UNIMPLEMENTED,
      message: `no rule matches (routes on ${where}: ${routes})`,
    },
  };
}
