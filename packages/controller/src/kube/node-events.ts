// Kubernetes Events on Node objects, so `kubectl describe node` and
// `kubectl get events` show what went wrong with that node's agent.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";

export function makeNodeEventRecorder(kc: KubeConfig, namespace: string, component: string, log: Logger) {
  const api = kc.makeApiClient(CoreV1Api);
  return async (node: string, type: "Normal" | "Warning", reason: string, message: string): Promise<void> => {
    const now = new Date();
    try {
      await api.createNamespacedEvent({
        namespace,
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
