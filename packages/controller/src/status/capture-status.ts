// The `trellis.dev/capture-status` annotation a pod should carry after its
// node's agent answered a table version: enabled once the agent applied a
// version that captures the pod's address, pending while the pod has none
// yet, failed when the agent rejected the version. Pods that are not
// captured carry no annotation.
import type { NodeTable } from "@trellis/api";

export const CAPTURE_STATUS_ANNOTATION = "trellis.dev/capture-status";

export type CaptureStatus = "enabled" | "pending" | "failed";

/** Desired annotation per "namespace/name" of the table's pods (null: none). */
export function captureStatuses(
  table: NodeTable,
  outcome: "ack" | "nack",
): Map<string, CaptureStatus | null> {
  const out = new Map<string, CaptureStatus | null>();
  for (const pod of table.localPods) {
    const key = `${pod.namespace}/${pod.name}`;
    if (!pod.captured) out.set(key, null);
    else if (outcome === "nack") out.set(key, "failed");
    else out.set(key, pod.ips.length > 0 ? "enabled" : "pending");
  }
  return out;
}
