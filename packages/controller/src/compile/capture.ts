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
