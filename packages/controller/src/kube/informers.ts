// Keeps one informer per watched kind running for the life of the process.
// client-node's informer relists by itself on 410 Gone but *stops* on any
// other error, so every error schedules a restart with capped backoff.
import { type KubeConfig, type KubernetesObject, makeInformer } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { ObjectStore } from "./object-store.ts";
import { toPlainObject, type WatchedResource } from "./watched-resources.ts";

export interface RunningInformers {
  /** True once every kind has completed its first list. */
  synced(): boolean;
  stop(): Promise<void>;
}

export function startInformers(
  kc: KubeConfig,
  resources: readonly WatchedResource[],
  store: ObjectStore,
  log: Logger,
  onError: (kind: string) => void,
): RunningInformers {
  let stopping = false;
  const synced = new Set<string>();
  const stops: Array<() => Promise<void>> = [];

  for (const resource of resources) {
    const informer = makeInformer<KubernetesObject>(kc, resource.path, resource.list(kc));
    const put = (obj: KubernetesObject) =>
      store.upsert(resource.kind, toPlainObject(resource, obj) as Record<string, unknown> & KubernetesObject);
    informer.on("add", put);
    informer.on("update", put);
    informer.on("delete", (obj) => store.remove(resource.kind, obj));
    let failures = 0;
    let timer: NodeJS.Timeout | undefined;
    const start = () => {
      informer.start().then(
        () => {
          failures = 0;
          synced.add(resource.kind);
          log.debug({ kind: resource.kind }, "informer synced");
        },
        (err: unknown) => restart(err),
      );
    };
    const restart = (err: unknown) => {
      if (stopping) return;
      failures++;
      onError(resource.kind);
      const delay = Math.min(30_000, 250 * 2 ** Math.min(failures, 7)) * (0.5 + Math.random() / 2);
      log.warn(
        {
          kind: resource.kind,
          err: err instanceof Error ? err.message : String(err),
          retryInMs: Math.round(delay),
        },
        "watch failed; restarting informer",
      );
      clearTimeout(timer);
      timer = setTimeout(start, delay);
    };
    informer.on("error", restart);
    stops.push(async () => {
      clearTimeout(timer);
      await informer.stop();
    });
    start();
  }

  return {
    synced: () => synced.size === resources.length,
    stop: async () => {
      stopping = true;
      await Promise.allSettled(stops.map((s) => s()));
    },
  };
}
