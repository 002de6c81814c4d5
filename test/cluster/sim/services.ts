// All Services of the cluster (node credentials may list/watch them), for the
// pods' hosts files and service-link env vars. Listeners hear about changes
// debounced, so a burst of Service updates rewrites each hosts file once.
import type { Logger } from "pino";
import type { Service } from "./k8s-types.ts";
import type { KubeApi } from "./kube-api.ts";
import { ListWatch } from "./list-watch.ts";

const DEBOUNCE_MS = 100;

export class ServiceCatalog {
  readonly #informer: ListWatch<Service>;
  readonly #listeners = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;

  constructor(api: KubeApi, log: Logger) {
    const changed = () => this.#changed();
    this.#informer = new ListWatch<Service>({
      api,
      path: "/api/v1/services",
      log,
      handlers: { upsert: changed, delete: changed },
    });
  }

  start(): void {
    this.#informer.start();
  }

  waitForSync(): Promise<void> {
    return this.#informer.waitForSync();
  }

  list(): Service[] {
    return this.#informer.list();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      for (const l of this.#listeners) l();
    }, DEBOUNCE_MS);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    await this.#informer.stop();
  }
}
