// Which pods the agents capture (ARCHITECTURE.md "Capture"): pods opt in by
// namespace label, opt out by pod label; host-network pods share the node's
// address and are never captured.
import type { NamespaceObject, PodObject } from "../snapshot/snapshot.ts";

export const CAPTURE_LABEL = "trellis.dev/capture";

export function namespaceCaptured(namespace: NamespaceObject | undefined): boolean {
  return namespace?.labels[CAPTURE_LABEL] === "enabled";
}

export function podCaptured(pod: PodObject, namespaces: ReadonlyMap<string, NamespaceObject>): boolean {
  return (
    !pod.hostNetwork &&
    namespaceCaptured(namespaces.get(pod.namespace)) &&
    pod.labels[CAPTURE_LABEL] !== "disabled"
  );
}

/** Names of the captured namespaces, sorted (every node's table carries them). */
export function capturedNamespaces(namespaces: Iterable<NamespaceObject>): string[] {
  const out: string[] = [];
  for (const ns of namespaces) if (namespaceCaptured(ns)) out.push(ns.name);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
