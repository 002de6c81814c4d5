// Kubernetes Events on Node objects, so `kubectl describe node` and
// `kubectl get events` show what went wrong with that node's agent.
//
// The API server accepts an Event about a cluster-scoped object (a Node) only
// in the "default" namespace (as the kubelet records its node events); in any
// other namespace creation fails with "involvedObject.namespace: does not
// match event.namespace".
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";

export const NODE_EVENT_NAMESPACE = "default";

export function makeNodeEventRecorder(kc: KubeConfig, component: string, log: Logger) {
  const api = kc.makeApiClient(CoreV1Api);
  return async (node: string, type: "Normal" | "Warning", reason: string, message: string): Promise<void> => {
    const now = new Date();
    try {
      await api.createNamespacedEvent({
        namespace: NODE_EVENT_NAMESPACE,
        body: {
          metadata: { generateName: `${node}.` },
          involvedObject: { kind: "Node", name: node, apiVersion: "v1" },
          type,
          reason,
          message,
          source: { component },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      log.warn(
        { node, reason, err: err instanceof Error ? err.message : String(err) },
        "cannot record event",
      );
    }
  };
}
