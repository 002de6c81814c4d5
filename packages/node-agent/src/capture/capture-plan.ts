// Which pod addresses the node captures, from two sources: the controller's
// table (authoritative for every pod it lists: namespace label, opt-out label,
// host network) and the CNI shim, which reports a pod's addresses before the
// controller can know them. A pod the table does not list yet is judged by
// the table's captured namespaces.
import type { LocalPod } from "@trellis/api";
import type { CaptureState, ServicePortRedirect } from "./nft-script.ts";

/** A pod the CNI shim announced (ADD) and has not removed (DEL). */
export interface CniPod {
  namespace: string;
  name: string;
  ips: readonly string[];
}

export interface CapturePlanInput {
  localPods: readonly LocalPod[];
  capturedNamespaces: readonly string[];
  cniPods: Iterable<CniPod>;
  /** Pods whose sandbox CNI DEL removed, by "namespace/name", with the addresses they had; the table may still list them. */
  deleted: ReadonlyMap<string, readonly string[]>;
  servicePorts: readonly ServicePortRedirect[];
}

export const podKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/** Whether a pod is captured: the table's verdict when it lists the pod, else its namespace's label. */
export function podIsCaptured(
  table: Pick<CapturePlanInput, "localPods" | "capturedNamespaces">,
  namespace: string,
  name: string,
): { captured: boolean; listed: boolean } {
  const pod = table.localPods.find((p) => p.namespace === namespace && p.name === name);
  if (pod) return { captured: pod.captured, listed: true };
  return { captured: table.capturedNamespaces.includes(namespace), listed: false };
}

export function capturePlan(input: CapturePlanInput): CaptureState {
  const ips = new Set<string>();
  const verdict = new Map<string, boolean>();
  for (const pod of input.localPods) {
    const key = podKey(pod.namespace, pod.name);
    verdict.set(key, pod.captured);
    if (!pod.captured) continue;
    const gone = input.deleted.get(key);
    for (const ip of pod.ips) if (!gone?.includes(ip)) ips.add(ip);
  }
  const namespaces = new Set(input.capturedNamespaces);
  for (const pod of input.cniPods) {
    // The table may list a pod before it knows the pod's addresses.
    if (!(verdict.get(podKey(pod.namespace, pod.name)) ?? namespaces.has(pod.namespace))) continue;
    for (const ip of pod.ips) ips.add(ip);
  }
  return { capturedIps: [...ips].sort(), servicePorts: input.servicePorts };
}
