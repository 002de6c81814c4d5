// Resolution + pods + nodes → one NodeTable per node, holding only what that
// node's agent needs. Deterministic: everything is already sorted by resolve
// and the snapshot, and nothing here depends on iteration order of inputs.
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
import type { Resolution } from "../resolve/resolution.ts";
import type { Snapshot } from "../snapshot/snapshot.ts";
import { compareStrings } from "../sort-order.ts";
import { namespaceCaptured, podCaptured } from "./capture.ts";

export const DEFAULT_AGENT_SETTINGS: AgentSettings = {
  listenerPortMin: 15100,
  listenerPortMax: 15999,
  failMode: FailMode.FAIL_MODE_OPEN,
  retryBodyLimitBytes: 64 * 1024,
};

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
  // A service port is meshed when its Service's namespace is captured or a
  // route attaches to it; other ports stay with kube-proxy.
  const meshed: Service[] = [];
  for (const service of resolution.services) {
    const captured = namespaceCaptured(snapshot.namespaces.get(service.namespace));
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
    if (ports.length > 0) {
      meshed.push({
        namespace: service.namespace,
        name: service.name,
        clusterIps: [...service.clusterIPs],
        ports,
      });
    }
  }

  const podsByNode = new Map<string, LocalPod[]>();
  const clientNamespacesByNode = new Map<string, Set<string>>();
  for (const pod of snapshot.pods) {
    // Finished pods give their IP back; it may already belong to another pod.
    if (pod.nodeName === "" || pod.hostNetwork || pod.phase === "Succeeded" || pod.phase === "Failed")
      continue;
    const captured = podCaptured(pod, snapshot.namespaces);
    const list = podsByNode.get(pod.nodeName) ?? [];
    list.push({ namespace: pod.namespace, name: pod.name, ips: [...pod.ips], captured });
    podsByNode.set(pod.nodeName, list);
    if (captured) {
      const namespaces = clientNamespacesByNode.get(pod.nodeName) ?? new Set<string>();
      namespaces.add(pod.namespace);
      clientNamespacesByNode.set(pod.nodeName, namespaces);
    }
  }

  const settings = options.settings ?? DEFAULT_AGENT_SETTINGS;
  const tables = new Map<string, NodeTable>();
  for (const node of snapshot.nodes) {
    const clients = clientNamespacesByNode.get(node.name) ?? new Set<string>();
    // Consumer route sets only for namespaces with captured clients here:
    // nobody else on this node could use them.
    const services = meshed.map((s) => ({
      ...s,
      ports: s.ports.map((p) => ({
        ...p,
        routeSets: p.routeSets.filter(
          (rs) => rs.clientNamespace === PRODUCER_GROUP || clients.has(rs.clientNamespace),
        ),
      })),
    }));
    tables.set(node.name, {
      version: options.version ?? { epoch: 0, number: 0 },
      node: node.name,
      settings,
      services,
      backends: referencedBackends(services, resolution.backends),
      localPods: podsByNode.get(node.name) ?? [],
    });
  }
  return tables;
}

function referencedBackends(services: readonly Service[], all: ReadonlyMap<string, Backend>): Backend[] {
  const ids = new Set<string>();
  for (const service of services) {
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
  }
  return [...ids].sort(compareStrings).flatMap((id) => {
    const backend = all.get(id);
    return backend ? [backend] : [];
  });
}
