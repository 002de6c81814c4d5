// Pods bound to this node → one PodWorker each (keyed by uid).
//
// The node authorizer lets a node list/watch pods only with
// fieldSelector=spec.nodeName=<node>, so that is how they are watched.
import type { Logger } from "pino";
import { Backoff, sleep } from "./backoff.ts";
import type { CniRuntime } from "./cni-runtime.ts";
import type { NodeConfig } from "./config.ts";
import type { EventRecorder } from "./events.ts";
import type { ObjectList, Pod } from "./k8s-types.ts";
import type { KubeApi } from "./kube-api.ts";
import { cleanUpLeftovers } from "./leftovers.ts";
import { ListWatch } from "./list-watch.ts";
import { NODE_ALLOCATABLE } from "./node-registration.ts";
import { PodWorker, type WorkerDeps } from "./pod-worker.ts";
import type { Sandboxes, SandboxRecord } from "./sandbox.ts";
import type { ServiceCatalog } from "./services.ts";

export class PodSync {
  readonly #deps: WorkerDeps;
  readonly #cni: CniRuntime;
  readonly #log: Logger;
  readonly #workers = new Map<string, PodWorker>();
  readonly #informer: ListWatch<Pod>;
  readonly #fieldSelector: string;
  #adopted = new Map<string, SandboxRecord>();
  #stopping = false;

  constructor(opts: {
    cfg: NodeConfig;
    api: KubeApi;
    log: Logger;
    cni: CniRuntime;
    sandboxes: Sandboxes;
    services: ServiceCatalog;
    events: EventRecorder;
  }) {
    this.#deps = {
      cfg: opts.cfg,
      api: opts.api,
      log: opts.log,
      sandboxes: opts.sandboxes,
      services: opts.services,
      events: opts.events,
      allocatable: NODE_ALLOCATABLE,
    };
    this.#cni = opts.cni;
    this.#log = opts.log;
    this.#fieldSelector = `spec.nodeName=${opts.cfg.name}`;
    this.#informer = new ListWatch<Pod>({
      api: opts.api,
      path: "/api/v1/pods",
      query: { fieldSelector: this.#fieldSelector },
      log: opts.log,
      handlers: {
        upsert: (pod, old) => this.#upsert(pod, old),
        delete: (pod) => this.#workers.get(pod.metadata.uid ?? "")?.gone(),
      },
    });
    opts.services.onChange(() => {
      for (const w of this.#workers.values()) w.servicesChanged();
    });
  }

  /** Cleans up after an earlier run, then starts watching this node's pods. */
  async start(): Promise<void> {
    await this.#cni.ensureDefaultConfig();
    const list = await this.#initialList();
    const pods = new Map(list.items.map((p) => [p.metadata.uid ?? "", p]));
    this.#adopted = await cleanUpLeftovers({
      cfg: this.#deps.cfg,
      cni: this.#cni,
      sandboxes: this.#deps.sandboxes,
      pods,
      log: this.#log,
    });
    await this.#deps.services.waitForSync();
    this.#informer.start();
    await this.#informer.waitForSync();
    this.#log.info({ pods: this.#workers.size }, "pod sync started");
  }

  async #initialList(): Promise<ObjectList<Pod>> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 10_000 });
    for (;;) {
      try {
        return await this.#deps.api.get<ObjectList<Pod>>("/api/v1/pods", {
          fieldSelector: this.#fieldSelector,
        });
      } catch (err) {
        const delay = backoff.next();
        this.#log.warn({ err: String(err), retryInMs: delay }, "listing this node's pods failed");
        await sleep(delay);
      }
    }
  }

  #upsert(pod: Pod, old: Pod | undefined): void {
    if (this.#stopping) return;
    const uid = pod.metadata.uid ?? "";
    if (old && old.metadata.uid !== uid) this.#workers.get(old.metadata.uid ?? "")?.gone();
    let worker = this.#workers.get(uid);
    if (!worker) {
      worker = new PodWorker(pod, this.#deps, this.#adopted.get(uid));
      this.#adopted.delete(uid);
      this.#workers.set(uid, worker);
      const w = worker;
      void w.done.then(() => {
        if (this.#workers.get(uid) === w) this.#workers.delete(uid);
      });
      this.#log.info(
        { pod: `${pod.metadata.namespace}/${pod.metadata.name}`, uid },
        "pod bound to this node",
      );
    }
    worker.update(pod);
  }

  /** Stops every pod of this node (processes, CNI DEL, netns) and the watch. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    await this.#informer.stop();
    await Promise.all([...this.#workers.values()].map((w) => w.shutdown()));
    // sandboxes adopted at start whose pod never showed up again
    for (const rec of this.#adopted.values()) await this.#deps.sandboxes.teardown(rec).catch(() => {});
  }
}
