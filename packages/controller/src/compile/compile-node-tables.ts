// Resolution + pods + nodes → one NodeTable per node, holding only what that
// node's agent needs. Deterministic: everything is already sorted by resolve
// and the snapshot, and nothing here depends on iteration order of inputs.
//
// The pieces are exported because RoutingState assembles tables from them
// incrementally and shares them between nodes; compileNodeTables is the
// from-scratch composition it is tested against.
import {
  type AgentSettings,
  type Backend,
  FailMode,
  type LocalPod,
  type NodeTable,
  type Service,
  type TableVersion,
} from "@trellis/api";
import { PRODUCER_GROUP } from "../resolve/binding.ts";
import type { Resolution, ResolvedService } from "../resolve/resolution.ts";
import type { NamespaceObject, PodObject, Snapshot } from "../snapshot/snapshot.ts";
import { compareStrings } from "../sort-order.ts";
import { capturedNamespaces, namespaceCaptured, podCaptured } from "./capture.ts";

export const DEFAULT_AGENT_SETTINGS: AgentSettings = {
  listenerPortMin: 15100,
  listenerPortMax: 15999,
  failMode: FailMode.FAIL_MODE_OPEN,
  retryBodyLimitBytes: 64 * 1024,
};

export const UNVERSIONED: TableVersion = { epoch: 0, number: 0 };

export interface CompileOptions {
  readonly settings?: AgentSettings;
  /** Assigned by whoever distributes tables; compile itself is versionless. */
  readonly version?: TableVersion;
}

export function compileNodeTables(
  resolution: Resolution,
  snapshot: Snapshot,
  options: CompileOptions = {},
): ReadonlyMap<string, NodeTable> {
  const meshed: Service[] = [];
  for (const service of resolution.services) {
    const m = meshedService(service, namespaceCaptured(snapshot.namespaces.get(service.namespace)));
    if (m) meshed.push(m);
  }

  const podsByNode = new Map<string, PodObject[]>();
  for (const pod of snapshot.pods) {
    if (!isLocalPod(pod)) continue;
    podsByNode.set(pod.nodeName, [...(podsByNode.get(pod.nodeName) ?? []), pod]);
  }

  const settings = options.settings ?? DEFAULT_AGENT_SETTINGS;
  const captured = capturedNamespaces(snapshot.namespaces.values());
  const tables = new Map<string, NodeTable>();
  for (const node of snapshot.nodes) {
    const localPods = (podsByNode.get(node.name) ?? []).map((p) => localPod(p, snapshot.namespaces));
    const clients = clientNamespaces(localPods);
    const services = meshed.map((s) => serviceForClients(s, clients));
    tables.set(node.name, {
      version: options.version ?? UNVERSIONED,
      node: node.name,
      settings,
      services,
      backends: referencedBackends(services, resolution.backends),
      localPods,
      capturedNamespaces: captured,
    });
  }
  return tables;
}

/**
 * The Service as every node's table carries it, or undefined when none of its
 * ports is meshed. A service port is meshed when its Service's namespace is
 * captured or a route attaches to it; other ports stay with kube-proxy.
 */
export function meshedService(service: ResolvedService, captured: boolean): Service | undefined {
  const ports = service.ports
    .filter((p) => captured || p.routeSets.length > 0)
    .map((p) => ({
      port: p.port,
      name: p.name,
      protocol: p.protocol,
      protocolSource: p.protocolSource,
      defaultBackendId: p.defaultBackendId,
      routeSets: [...p.routeSets],
    }));
  if (ports.length === 0) return undefined;
  return { namespace: service.namespace, name: service.name, clusterIps: [...service.clusterIPs], ports };
}

/** Client namespaces with consumer route sets in this Service, sorted. */
export function consumerNamespaces(service: Service): string[] {
  const namespaces = new Set<string>();
  for (const port of service.ports) {
    for (const set of port.routeSets)
      if (set.clientNamespace !== PRODUCER_GROUP) namespaces.add(set.clientNamespace);
  }
  return [...namespaces].sort(compareStrings);
}

/**
 * The Service as one node's table carries it: consumer route sets only for
 * namespaces with captured clients there, since nobody else on that node
 * could use them.
 */
export function serviceForClients(service: Service, clients: ReadonlySet<string>): Service {
  return {
    ...service,
    ports: service.ports.map((p) => ({
      ...p,
      routeSets: p.routeSets.filter(
        (rs) => rs.clientNamespace === PRODUCER_GROUP || clients.has(rs.clientNamespace),
      ),
    })),
  };
}

/** Pods an agent must know about: on a node, not host-network, not finished (their IP may already be reused). */
export function isLocalPod(pod: PodObject): boolean {
  return pod.nodeName !== "" && !pod.hostNetwork && pod.phase !== "Succeeded" && pod.phase !== "Failed";
}

export function localPod(pod: PodObject, namespaces: ReadonlyMap<string, NamespaceObject>): LocalPod {
  return {
    namespace: pod.namespace,
    name: pod.name,
    ips: [...pod.ips],
    captured: podCaptured(pod, namespaces),
  };
}

export function clientNamespaces(pods: readonly LocalPod[]): Set<string> {
  return new Set(pods.filter((p) => p.captured).map((p) => p.namespace));
}

/** Backend ids a Service's ports refer to (default backends, forward targets, mirrors), sorted. */
export function serviceBackendIds(service: Service): string[] {
  const ids = new Set<string>();
  for (const port of service.ports) {
    ids.add(port.defaultBackendId);
    for (const set of port.routeSets) {
      for (const rule of set.rules) {
        for (const mirror of rule.mirrors) ids.add(mirror.backendId);
        if (rule.action?.$case !== "forward") continue;
        for (const backend of rule.action.forward.backends) {
          if (backend.target?.$case === "backendId") ids.add(backend.target.backendId);
        }
      }
    }
  }
  return [...ids].sort(compareStrings);
}

function referencedBackends(services: readonly Service[], all: ReadonlyMap<string, Backend>): Backend[] {
  const ids = new Set<string>();
  for (const service of services) for (const id of serviceBackendIds(service)) ids.add(id);
  return [...ids].sort(compareStrings).flatMap((id) => {
    const backend = all.get(id);
    return backend ? [backend] : [];
  });
}
