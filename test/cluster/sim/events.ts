// Pod events (core/v1 Event), as kubelet records them: best effort, with
// identical events within a minute folded away so retries do not flood.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { rfc3339 } from "./k8s-time.ts";
import type { Pod } from "./k8s-types.ts";
import type { KubeApi } from "./kube-api.ts";

const DEDUPE_MS = 60_000;

export class EventRecorder {
  readonly #api: KubeApi;
  readonly #node: string;
  readonly #log: Logger;
  readonly #recent = new Map<string, number>();

  constructor(api: KubeApi, node: string, log: Logger) {
    this.#api = api;
    this.#node = node;
    this.#log = log;
  }

  record(pod: Pod, type: "Normal" | "Warning", reason: string, message: string, fieldPath?: string): void {
    const { name, namespace, uid } = pod.metadata;
    const key = `${uid}|${reason}|${message}`;
    const now = Date.now();
    const last = this.#recent.get(key);
    if (last !== undefined && now - last < DEDUPE_MS) return;
    this.#recent.set(key, now);
    if (this.#recent.size > 5000) {
      for (const [k, t] of this.#recent) if (now - t >= DEDUPE_MS) this.#recent.delete(k);
    }
    const ts = rfc3339(new Date(now));
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: `${name}.${randomBytes(8).toString("hex")}`, namespace },
      involvedObject: {
        apiVersion: "v1",
        kind: "Pod",
        name,
        namespace,
        uid,
        ...(fieldPath ? { fieldPath } : {}),
      },
      reason,
      message,
      type,
      source: { component: "kubelet", host: this.#node },
      firstTimestamp: ts,
      lastTimestamp: ts,
      count: 1,
      reportingComponent: "kubelet",
      reportingInstance: this.#node,
    };
    this.#api
      .request("POST", `/api/v1/namespaces/${namespace}/events`, { body: event })
      .catch((err: unknown) => {
        this.#log.debug({ reason, err: String(err) }, "event not recorded");
      });
  }
}
