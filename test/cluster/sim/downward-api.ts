// Downward API: pod fields and container resources, for env vars and volumes.
import type { Container, ObjectFieldSelector, Pod, ResourceFieldSelector } from "./k8s-types.ts";

/** Facts about the running pod that are not in its spec. */
export type PodRuntimeFacts = {
  podIPs: readonly string[];
  hostIPs: readonly string[];
};

const suffixes: Record<string, number> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** Parses a resource.Quantity ("250m", "16Gi", "1e3") into a number of base units. */
export function parseQuantity(q: string | number): number {
  if (typeof q === "number") return q;
  const m = /^([+-]?[0-9.]+)([eE][+-]?[0-9]+)?([a-zA-Z]*)$/.exec(q.trim());
  if (!m) throw new Error(`invalid quantity ${q}`);
  const mult = suffixes[m[3] ?? ""];
  if (mult === undefined) throw new Error(`invalid quantity suffix in ${q}`);
  return Number(`${m[1]}${m[2] ?? ""}`) * mult;
}

function formatLabelMap(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(map?.[k] ?? "")}`)
    .join("\n");
}

/** Resolves a fieldRef; undefined when the path is not supported. */
export function resolveFieldRef(
  pod: Pod,
  ref: ObjectFieldSelector,
  facts: PodRuntimeFacts,
): string | undefined {
  const path = ref.fieldPath;
  const subscript = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (subscript) {
    const map = subscript[1] === "labels" ? pod.metadata.labels : pod.metadata.annotations;
    return map?.[subscript[2] ?? ""] ?? "";
  }
  switch (path) {
    case "metadata.name":
      return pod.metadata.name ?? "";
    case "metadata.namespace":
      return pod.metadata.namespace ?? "";
    case "metadata.uid":
      return pod.metadata.uid ?? "";
    case "metadata.labels":
      return formatLabelMap(pod.metadata.labels);
    case "metadata.annotations":
      return formatLabelMap(pod.metadata.annotations);
    case "spec.nodeName":
      return pod.spec.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec.serviceAccountName ?? "default";
    case "status.podIP":
      return facts.podIPs[0] ?? "";
    case "status.podIPs":
      return facts.podIPs.join(",");
    case "status.hostIP":
      return facts.hostIPs[0] ?? "";
    case "status.hostIPs":
      return facts.hostIPs.join(",");
    default:
      return undefined;
  }
}

/** Node allocatable used when a container sets no limit (as kubelet does). */
export type NodeAllocatable = { cpu: string; memory: string; "ephemeral-storage": string };

export function resolveResourceFieldRef(
  container: Container | undefined,
  ref: ResourceFieldSelector,
  allocatable: NodeAllocatable,
): string {
  const [kind, resource] = ref.resource.split(".", 2) as [string, string];
  const limits = container?.resources?.limits ?? {};
  const requests = container?.resources?.requests ?? {};
  const nodeValue = allocatable[resource as keyof NodeAllocatable] ?? "0";
  let raw: string | number;
  if (kind === "limits") raw = limits[resource] ?? nodeValue;
  else if (kind === "requests") raw = requests[resource] ?? limits[resource] ?? 0;
  else throw new Error(`unsupported resource ${ref.resource}`);
  const divisor = parseQuantity(ref.divisor ?? "1") || 1;
  // toPrecision: 0.25 / 0.001 is 250.00000000000003 in floating point
  return String(Math.ceil(Number((parseQuantity(raw) / divisor).toPrecision(12))));
}
