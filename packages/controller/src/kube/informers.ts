// Keeps one informer per watched kind running for the life of the process.
//
// What client-node 2.x's ListWatch does and does not do, and why this file
// exists around it:
// - It relists by itself on 410 Gone and reconnects by itself when a watch
//   ends or sees 30 s of silence (its own inactivity timeout).
// - On any other error (list failed, watch refused, connection reset) it calls
//   the `error` listeners and *stops*; `start()` still resolves normally. So a
//   resolved `start()` does not mean the kind was listed: a kind only counts as
//   synced once its list call has succeeded, and every error schedules a
//   restart with capped, jittered backoff.
// - `stop()` aborts the watch, which reports an abort error: ignored once
//   stopping.
import { type KubeConfig, type KubernetesObject, makeInformer } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { toPlainObject, type WatchedResource } from "./watched-resources.ts";

export interface InformerEvents {
  /** An object was added or changed (plain JSON, kind and apiVersion stamped). */
  upsert(resource: WatchedResource, obj: Record<string, unknown>): void;
  remove(resource: WatchedResource, obj: Record<string, unknown>): void;
  /** Every kind has completed its first list. Called once. */
  synced(): void;
  error(resource: WatchedResource, err: unknown): void;
}

export interface RunningInformers {
  /** True once every kind has completed its first list. */
  synced(): boolean;
  stop(): Promise<void>;
}

const MAX_BACKOFF_MS = 30_000;

export function startInformers(
  kc: KubeConfig,
  resources: readonly WatchedResource[],
  events: InformerEvents,
  log: Logger,
): RunningInformers {
  let stopping = false;
  const synced = new Set<string>();
  const stops: Array<() => Promise<void>> = [];

  for (const resource of resources) {
    const list = resource.list(kc);
    let listed = false;
    let failures = 0;
    const informer = makeInformer<KubernetesObject>(kc, resource.path, async () => {
      const result = await list();
      listed = true;
      failures = 0;
      return result;
    });
    // A successful list or any watch event proves the API works again, so
    // the backoff starts over. ("connect" would not: it fires before trying.)
    informer.on("add", (obj) => {
      failures = 0;
      events.upsert(resource, toPlainObject(resource, obj));
    });
    informer.on("update", (obj) => {
      failures = 0;
      events.upsert(resource, toPlainObject(resource, obj));
    });
    informer.on("delete", (obj) => {
      failures = 0;
      events.remove(resource, toPlainObject(resource, obj));
    });

    let failedDuringStart = false;
    let timer: NodeJS.Timeout | undefined;
    const start = () => {
      failedDuringStart = false;
      informer.start().then(
        () => {
          // start() resolves even when the list or watch failed (the error
          // listener has run by then); only a listed kind is synced.
          if (failedDuringStart || !listed || synced.has(resource.kind)) return;
          synced.add(resource.kind);
          log.debug({ kind: resource.kind }, "informer synced");
          if (synced.size === resources.length) events.synced();
        },
        (err: unknown) => restart(err),
      );
    };
    const restart = (err: unknown) => {
      if (stopping) return;
      failedDuringStart = true;
      failures++;
      events.error(resource, err);
      const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(failures, 7)) * (0.5 + Math.random() / 2);
      log.warn(
        { kind: resource.kind, err: errorText(err), retryInMs: Math.round(delay) },
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

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "object" && err !== null) {
    const o = err as { message?: unknown; code?: unknown; statusCode?: unknown };
    return `${String(o.message ?? "")} (code ${String(o.code ?? o.statusCode ?? "?")})`;
  }
  return String(err);
}
