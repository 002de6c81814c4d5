// Snapshot → Resolution from scratch: every GAMMA decision in one pure pass.
// Routes are grouped per (Service, port, client group), conflicts settled,
// rules ordered by precedence, and a status produced for every Service
// parentRef. The pieces live in service-routes.ts; RoutingState runs the same
// pieces incrementally, and this straightforward composition is the reference
// it is tested against.
import type { Backend } from "@trellis/api";
import { routeKey } from "../snapshot/build-snapshot.ts";
import type { Snapshot } from "../snapshot/snapshot.ts";
import { compareStrings } from "../sort-order.ts";
import { buildBackend, parseBackendId } from "./backends.ts";
import type { Resolution, ResolvedService, RouteStatus } from "./resolution.ts";
import { compileRoute } from "./route-rules.ts";
import {
  attachmentFor,
  bindRouteParents,
  compareRouteStatuses,
  hasClusterIP,
  resolveServiceRoutes,
  routeStatus,
  type ServiceAttachment,
} from "./service-routes.ts";

export function resolveRoutes(snapshot: Snapshot): Resolution {
  const routes = snapshot.routes.map((route) => {
    const compiled = compileRoute(route, snapshot.services);
    return { compiled, parents: bindRouteParents(route, snapshot.services) };
  });

  const attachments = new Map<string, ServiceAttachment[]>();
  for (const { compiled, parents } of routes) {
    for (const serviceKey of new Set(parents.map((p) => p.serviceKey))) {
      const att = attachmentFor(compiled, parents, serviceKey);
      if (att) attachments.set(serviceKey, [...(attachments.get(serviceKey) ?? []), att]);
    }
  }

  const services: ResolvedService[] = [];
  const conflicts = new Map<string, ReturnType<typeof resolveServiceRoutes>["conflicts"]>();
  for (const [key, service] of snapshot.services) {
    if (!hasClusterIP(service)) continue;
    const resolved = resolveServiceRoutes(service, attachments.get(key) ?? []);
    services.push(resolved.service);
    conflicts.set(key, resolved.conflicts);
  }

  const statuses: RouteStatus[] = routes.map(({ compiled, parents }) => {
    const routeConflicts = new Map(
      [...new Set(parents.map((p) => p.serviceKey))].flatMap((serviceKey) => [
        ...(conflicts.get(serviceKey)?.get(routeKey(compiled.route)) ?? []),
      ]),
    );
    return routeStatus(compiled, parents, routeConflicts);
  });
  statuses.sort(compareRouteStatuses);

  // Default backends of every routed service port, plus every backend a route refers to.
  const backendIds = new Set<string>();
  for (const s of services) for (const p of s.ports) backendIds.add(p.defaultBackendId);
  for (const { compiled } of routes) for (const id of compiled.backendIds) backendIds.add(id);
  const backends = new Map<string, Backend>();
  for (const id of [...backendIds].sort(compareStrings)) {
    const backend = backendOf(id, snapshot);
    if (backend) backends.set(id, backend);
  }
  return { services, backends, statuses };
}

function backendOf(id: string, snapshot: Snapshot): Backend | undefined {
  const { serviceKey, port } = parseBackendId(id);
  const service = snapshot.services.get(serviceKey);
  const servicePort = service?.ports.find((p) => p.port === port && p.protocol === "TCP");
  if (!service || !servicePort) return undefined;
  return buildBackend(service, servicePort, snapshot.endpointSlices.get(serviceKey) ?? []);
}
