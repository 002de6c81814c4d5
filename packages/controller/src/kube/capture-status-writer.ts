// Writes `trellis.dev/capture-status` on pods when their node's agent ACKs or
// NACKs a table. The replica an agent is connected to is the one that hears
// the answer, so every replica writes for its own agents (not only the
// leader). Patches go one at a time, only when a value changes; a pod this
// process never annotated is not patched to remove an annotation, so that a
// restart does not patch every pod of the cluster.
import { CoreV1Api, type KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { NodeTable } from "@trellis/api";
import type { Logger } from "pino";
import { CAPTURE_STATUS_ANNOTATION, type CaptureStatus, captureStatuses } from "../status/capture-status.ts";

export class CaptureStatusWriter {
  readonly #api: CoreV1Api;
  readonly #log: Logger;
  readonly #written = new Map<string, CaptureStatus | null>();
  readonly #queue = new Map<string, CaptureStatus | null>();
  #running = false;

  constructor(kc: KubeConfig, log: Logger) {
    this.#api = kc.makeApiClient(CoreV1Api);
    this.#log = log;
  }

  /** Records an agent's answer to `table` (the version it answered must be this table's). */
  answered(table: NodeTable, outcome: "ack" | "nack"): void {
    for (const [key, status] of captureStatuses(table, outcome)) {
      const known = this.#written.get(key);
      if (known === status || (status === null && known === undefined)) continue;
      this.#queue.set(key, status);
    }
    void this.#drain();
  }

  async #drain(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#queue.size > 0) {
        const [key, status] = this.#queue.entries().next().value as [string, CaptureStatus | null];
        this.#queue.delete(key);
        const [namespace = "", name = ""] = key.split("/");
        try {
          await this.#api.patchNamespacedPod(
            { namespace, name, body: { metadata: { annotations: { [CAPTURE_STATUS_ANNOTATION]: status } } } },
            setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
          );
          this.#written.set(key, status);
        } catch (err) {
          // A deleted pod needs no annotation; anything else is retried with the next answer.
          const code = (err as { code?: number }).code;
          if (code === 404) this.#written.delete(key);
          else
            this.#log.warn({ pod: key, status, err: (err as Error).message }, "cannot write capture status");
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
