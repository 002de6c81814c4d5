// The GAMMA decisions of resolve, cut at the seams where their inputs are
// small and stable, so that a change to one route or one Service redoes only
// the pieces that read it:
//   bindRouteParents     one route × the Services it names as parents
//   resolveServiceRoutes one Service × the routes bound to it (conflicts,
//                        protocol, route sets in precedence order)
//   routeStatus          one route × its parents' outcomes
// Each is pure. resolveRoutes composes them from scratch; RoutingState
// composes them incrementally; both must agree (property-tested).
import { RouteKind, type RouteSet, type Rule, type RuleMatch } from "@trellis/api";
import { routeKey } from "../snapshot/build-snapshot.ts";
import {
  objectKey,
  type ParentRefSpec,
  type RouteKindName,
  type RouteObject,
  type ServiceObject,
} from "../snapshot/snapshot.ts";
import { compareStrings } from "../sort-order.ts";
import { backendId } from "./backends.ts";
import { bindParent, type ParentBinding, PRODUCER_GROUP, parentRefOwner } from "./binding.ts";
import { compareOrigins, compareRankedMatches, type RankedMatch } from "./precedence.ts";
import { servicePortProtocol } from "./protocol.ts";
import type { ResolvedService, RouteStatus } from "./resolution.ts";
import { type CompiledRoute, GRPC_UNIMPLEMENTED, routeLabel } from "./route-rules.ts";
import { type ParentOutcome, parentStatus } from "./status.ts";

export type BoundBinding = Extract<ParentBinding, { ok: true }>;

/** One distinct Service parentRef of a route, as bound before conflicts are settled. */
export interface ParentState {
  readonly ref: ParentRefSpec;
  /** "<namespace>/<name>" of the Service the parentRef names (found or not). */
  readonly serviceKey: string;
  readonly outcome: Exclude<ParentOutcome, { state: "conflicted" }>;
}

export type ConflictOutcome = Extract<ParentOutcome, { state: "conflicted" }>;

/** Binds every Service parentRef of a route (duplicates once, other controllers' parents skipped). */
export function bindRouteParents(
  route: RouteObject,
  services: ReadonlyMap<string, ServiceObject>,
): readonly ParentState[] {
  const states: ParentState[] = [];
  const seen = new Set<string>();
  for (const ref of route.parentRefs) {
    if (parentRefOwner(ref) === "other") continue;
    const namespace = ref.namespace ?? route.namespace;
    const identity = JSON.stringify([ref.group, ref.kind, namespace, ref.name, ref.port, ref.sectionName]);
    if (seen.has(identity)) continue;
    seen.add(identity);
    const serviceKey = objectKey(namespace, ref.name);
    if (route.problems.length > 0) {
      states.push({ ref, serviceKey, outcome: { state: "unreadable" } });
      continue;
    }
    const binding = bindParent(route, ref, services);
    states.push({
      ref,
      serviceKey,
      outcome: binding.ok ? { state: "bound", binding } : { state: "unbound", binding },
    });
  }
  return states;
}

/** A route as seen by one Service: its compiled form and which of its parents bind to this Service. */
export interface ServiceAttachment {
  readonly compiled: CompiledRoute;
  /** Indexes into the route's parent states, each bound to this Service. */
  readonly parents: readonly { readonly index: number; readonly binding: BoundBinding }[];
}

export interface ServiceRoutes {
  readonly service: ResolvedService;
  /** Route key → parent index → why that parentRef lost to a GRPCRoute. */
  readonly conflicts: ReadonlyMap<string, ReadonlyMap<number, ConflictOutcome>>;
}

/** The ServiceAttachment of each parent state bound to `serviceKey`, or undefined when none is. */
export function attachmentFor(
  compiled: CompiledRoute,
  parents: readonly ParentState[],
  serviceKey: string,
): ServiceAttachment | undefined {
  const bound: { index: number; binding: BoundBinding }[] = [];
  parents.forEach((p, index) => {
    if (p.outcome.state === "bound" && p.serviceKey === serviceKey)
      bound.push({ index, binding: p.outcome.binding });
  });
  return bound.length > 0 ? { compiled, parents: bound } : undefined;
}

/**
 * Routes bound to one ClusterIP Service → its ports with route sets, and the
 * parentRefs that lose an HTTPRoute/GRPCRoute conflict. `attachments` must be
 * in route order (kind, then namespace/name), the order the conflict messages
 * are decided in.
 */
export function resolveServiceRoutes(
  service: ServiceObject,
  attachments: readonly ServiceAttachment[],
): ServiceRoutes {
  const serviceKey = objectKey(service.namespace, service.name);
  interface Slot {
    readonly key: string;
    readonly attachments: ServiceAttachment[];
  }
  // Slots (port × client group) in the order the bindings name them.
  const slots = new Map<string, Slot>();
  const slotsByPort = new Map<number, Slot[]>();
  for (const att of attachments) {
    for (const p of att.parents) {
      for (const port of p.binding.ports) {
        const key = slotKey(serviceKey, port.port, p.binding.clientGroup);
        let slot = slots.get(key);
        if (!slot) {
          slot = { key, attachments: [] };
          slots.set(key, slot);
          slotsByPort.set(port.port, [...(slotsByPort.get(port.port) ?? []), slot]);
        }
        if (!slot.attachments.includes(att)) slot.attachments.push(att);
      }
    }
  }

  // An HTTPRoute and a GRPCRoute for the same clients on one port: the GRPCRoute wins.
  const conflicts = new Map<string, Map<number, ConflictOutcome>>();
  const isConflicted = (att: ServiceAttachment, index: number) =>
    conflicts.get(routeKey(att.compiled.route))?.has(index) ?? false;
  const covers = (att: ServiceAttachment, slot: Slot) =>
    att.parents.some(
      (p) =>
        !isConflicted(att, p.index) &&
        p.binding.ports.some((port) => slotKey(serviceKey, port.port, p.binding.clientGroup) === slot.key),
    );
  for (const slot of slots.values()) {
    const grpc = slot.attachments
      .filter((a) => a.compiled.route.kind === "GRPCRoute")
      .sort((a, b) => compareRouteAge(a.compiled.route, b.compiled.route))[0];
    if (!grpc) continue;
    for (const att of slot.attachments) {
      if (att.compiled.route.kind !== "HTTPRoute") continue;
      const key = routeKey(att.compiled.route);
      for (const p of att.parents) {
        if (isConflicted(att, p.index)) continue;
        if (
          !p.binding.ports.some((port) => slotKey(serviceKey, port.port, p.binding.clientGroup) === slot.key)
        )
          continue;
        const byIndex = conflicts.get(key) ?? new Map<number, ConflictOutcome>();
        byIndex.set(p.index, {
          state: "conflicted",
          winner: `${grpc.compiled.route.namespace}/${grpc.compiled.route.name}`,
          where: describeSlot(slot.key),
        });
        conflicts.set(key, byIndex);
      }
    }
  }

  const ports = service.ports
    .filter((p) => p.protocol === "TCP")
    .map((port) => {
      const prefix = `${serviceKey}:${port.port}|`;
      const groups = (slotsByPort.get(port.port) ?? [])
        .map((slot) => ({
          group: slot.key.slice(prefix.length),
          attachments: slot.attachments
            .filter((a) => covers(a, slot))
            .sort((a, b) => compareRouteAge(a.compiled.route, b.compiled.route)),
        }))
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
        defaultBackendId: backendId(service.namespace, service.name, port.port),
        routeSets: groups.map((g) => buildRouteSet(g.group, g.attachments, `${serviceKey}:${port.port}`)),
      };
    });
  return {
    service: { namespace: service.namespace, name: service.name, clusterIPs: service.clusterIPs, ports },
    conflicts,
  };
}

/** Whether resolve gives this Service a frontend (a cluster IP Trellis can route). */
export function hasClusterIP(service: ServiceObject): boolean {
  return service.type !== "ExternalName" && !service.headless && service.clusterIPs.length > 0;
}

export function routeStatus(
  compiled: CompiledRoute,
  parents: readonly ParentState[],
  conflicts: ReadonlyMap<number, ConflictOutcome> | undefined,
): RouteStatus {
  const route = compiled.route;
  return {
    kind: route.kind,
    namespace: route.namespace,
    name: route.name,
    generation: route.generation,
    parents: parents.map((s, i) =>
      parentStatus(route, s.ref, conflicts?.get(i) ?? s.outcome, compiled.ruleIssues, compiled.refIssues),
    ),
  };
}

export function compareRouteStatuses(a: RouteStatus, b: RouteStatus): number {
  return (
    compareStrings(a.kind, b.kind) ||
    compareStrings(objectKey(a.namespace, a.name), objectKey(b.namespace, b.name))
  );
}

function slotKey(serviceKey: string, port: number, group: string): string {
  return `${serviceKey}:${port}|${group}`;
}

function describeSlot(key: string): string {
  const [where, group] = key.split("|");
  return `Service ${where?.replace(/:(\d+)$/, " port $1")}${group === PRODUCER_GROUP ? "" : ` (clients in namespace ${group})`}`;
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

function buildRouteSet(group: string, attachments: readonly ServiceAttachment[], where: string): RouteSet {
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
