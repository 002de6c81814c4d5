// An informer: list, then watch from the list's resourceVersion, keeping a
// local store and emitting upserts/deletes.
//
// - 410 Gone (HTTP answer or an ERROR event on the stream) → relist, and the
//   relist is diffed against the store so deletions missed meanwhile are seen.
// - any other error → capped exponential backoff, then watch again from the
//   last resourceVersion (relist if that fails with 410).
// - bookmarks keep the resourceVersion fresh; an idle watchdog aborts a
//   silent stream (no bytes for 2 min, while bookmarks come about every min).
import type { Logger } from "pino";
import { Backoff, sleep } from "./backoff.ts";
import type { ApiStatus, ObjectList, ObjectMeta, WatchEvent } from "./k8s-types.ts";
import { isStatus, type KubeApi } from "./kube-api.ts";

export type Handlers<T> = {
  upsert: (obj: T, old: T | undefined) => void;
  delete: (obj: T) => void;
  /** After each (re)list has been applied to the store. */
  synced?: () => void;
};

class GoneError extends Error {}

export function objectKey(meta: ObjectMeta): string {
  return meta.namespace ? `${meta.namespace}/${meta.name}` : (meta.name ?? "");
}

export class ListWatch<T extends { metadata: ObjectMeta }> {
  readonly #api: KubeApi;
  readonly #path: string;
  readonly #query: Record<string, string>;
  readonly #log: Logger;
  readonly #handlers: Handlers<T>;
  readonly #store = new Map<string, T>();
  readonly #stop = new AbortController();
  readonly #backoff = new Backoff({ initialMs: 500, maxMs: 30_000, jitter: 0.2 });
  #resourceVersion = "";
  #loop: Promise<void> | undefined;
  #firstSync: Promise<void>;
  #markSynced: () => void = () => {};

  constructor(opts: {
    api: KubeApi;
    path: string;
    query?: Record<string, string>;
    log: Logger;
    handlers: Handlers<T>;
  }) {
    this.#api = opts.api;
    this.#path = opts.path;
    this.#query = opts.query ?? {};
    this.#log = opts.log;
    this.#handlers = opts.handlers;
    this.#firstSync = new Promise((resolve) => {
      this.#markSynced = resolve;
    });
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** Resolves once the first list has been applied. */
  waitForSync(): Promise<void> {
    return this.#firstSync;
  }

  list(): T[] {
    return [...this.#store.values()];
  }

  get(key: string): T | undefined {
    return this.#store.get(key);
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        if (this.#resourceVersion === "") await this.#relist();
        await this.#api.watch(this.#path, {
          query: {
            ...this.#query,
            resourceVersion: this.#resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: 300 + Math.floor(Math.random() * 60),
          },
          onEvent: (e) => this.#onEvent(e as WatchEvent<T>),
          signal,
          idleTimeoutMs: 120_000,
        });
        this.#backoff.reset();
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof GoneError || isStatus(err, 410)) {
          this.#log.info({ path: this.#path }, "watch expired (410), relisting");
          this.#resourceVersion = "";
          continue;
        }
        const delay = this.#backoff.next();
        this.#log.warn({ path: this.#path, err: String(err), retryInMs: delay }, "list/watch failed");
        await sleep(delay, signal);
      }
    }
  }

  async #relist(): Promise<void> {
    const list = await this.#api.get<ObjectList<T>>(this.#path, this.#query);
    const seen = new Set<string>();
    for (const item of list.items) {
      const key = objectKey(item.metadata);
      seen.add(key);
      this.#apply(item);
    }
    for (const [key, old] of this.#store) {
      if (!seen.has(key)) {
        this.#store.delete(key);
        this.#handlers.delete(old);
      }
    }
    this.#resourceVersion = list.metadata?.resourceVersion ?? "";
    this.#handlers.synced?.();
    this.#markSynced();
  }

  #apply(obj: T): void {
    const key = objectKey(obj.metadata);
    const old = this.#store.get(key);
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.#store.set(key, obj);
    this.#handlers.upsert(obj, old);
  }

  #onEvent(event: WatchEvent<T>): void {
    switch (event.type) {
      case "ADDED":
      case "MODIFIED": {
        const obj = event.object as T;
        this.#apply(obj);
        this.#resourceVersion = obj.metadata.resourceVersion ?? this.#resourceVersion;
        break;
      }
      case "DELETED": {
        const obj = event.object as T;
        const key = objectKey(obj.metadata);
        if (this.#store.delete(key)) this.#handlers.delete(obj);
        this.#resourceVersion = obj.metadata.resourceVersion ?? this.#resourceVersion;
        break;
      }
      case "BOOKMARK": {
        const rv = (event.object as { metadata?: ObjectMeta }).metadata?.resourceVersion;
        if (rv) this.#resourceVersion = rv;
        break;
      }
      case "ERROR": {
        const status = event.object as ApiStatus;
        if (status.code === 410) throw new GoneError(status.message ?? "gone");
        throw new Error(`watch error event: ${status.code} ${status.message}`);
      }
    }
  }
}
