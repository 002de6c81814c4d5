// Capture on this node: keeps the kernel's nftables state equal to the plan
// computed from the applied table, the agent's listeners and what the CNI
// shim reported, and answers the shim once a new pod's capture is programmed.
import { randomUUID } from "node:crypto";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { NodeTable } from "@trellis/api";
import type { CapturedNamespacesFile, CniRequest, CniResponse } from "@trellis/api/cni";
import type { Logger } from "pino";
import type { PortMapEntry } from "../agent.ts";
import type { CaptureMetrics } from "./capture-metrics.ts";
import { type CniPod, capturePlan, podIsCaptured, podKey } from "./capture-plan.ts";
import type { NftProgram } from "./nft.ts";
import type { CaptureState } from "./nft-script.ts";

export interface CaptureOptions {
  log: Logger;
  nft: NftProgram;
  metrics?: CaptureMetrics;
  /** Where the shim looks for captured namespaces while the agent is down; omitted = not written. */
  capturedNamespacesFile?: string;
  /** How long an ADD waits for the controller to list the new pod before judging by its namespace. */
  podWaitMs?: number;
  /** Delay before re-trying a failed nft transaction. */
  retryMs?: number;
  /**
   * Whether this agent still owns the node's capture. During a rolling update the new agent
   * takes over; the old one then stops writing nft, so a table change both apply while they
   * overlap cannot leave the kernel with the old one's port choices. Omitted: always.
   */
  owner?: () => Promise<boolean>;
}

/** A CNI request the agent answers with an error the shim reports (and the runtime retries). */
export class CniRefusal extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

interface TableView {
  localPods: NodeTable["localPods"];
  capturedNamespaces: readonly string[];
}

export class Capture {
  readonly #o: Required<Omit<CaptureOptions, "metrics" | "capturedNamespacesFile" | "owner">> &
    Pick<CaptureOptions, "metrics" | "capturedNamespacesFile" | "owner">;
  #superseded = false;
  #table: TableView | null = null;
  #servicePorts: CaptureState["servicePorts"] = [];
  readonly #cniPods = new Map<string, CniPod>();
  readonly #deleted = new Map<string, readonly string[]>();
  readonly #tableWaiters = new Set<() => void>();
  #programmed: CaptureState | null = null;
  #lastError: string | null = null;
  #namespacesWritten: string | null = null;
  #retry: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(opts: CaptureOptions) {
    this.#o = { podWaitMs: 5_000, retryMs: 5_000, ...opts };
  }

  /** Programs a newly applied table; rejects when nft refuses (the version is then NACKed). */
  async update(table: NodeTable, portMap: readonly PortMapEntry[]): Promise<void> {
    this.#table = { localPods: table.localPods, capturedNamespaces: table.capturedNamespaces };
    this.#servicePorts = portMap.map((e) => ({
      serviceIp: e.serviceIp,
      port: e.port,
      listenerPort: e.listenerPort,
    }));
    this.#forgetDeletedPodsTheTableDropped(table);
    for (const wake of this.#tableWaiters) wake();
    await this.#writeCapturedNamespaces(table.capturedNamespaces);
    await this.#program();
  }

  async cni(req: CniRequest): Promise<CniResponse> {
    switch (req.command) {
      case "ADD":
        return this.#add(req);
      case "DEL":
        return this.#del(req);
      case "CHECK":
        return this.#check(req);
    }
  }

  /** What is programmed, for /debug/capture. */
  debugState(): object {
    return {
      programmed: this.#programmed,
      lastError: this.#lastError,
      capturedNamespaces: this.#table?.capturedNamespaces ?? null,
      cniPods: [...this.#cniPods].map(([containerId, p]) => ({ containerId, ...p })),
      deleted: Object.fromEntries(this.#deleted),
    };
  }

  close(): void {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    for (const wake of this.#tableWaiters) wake();
  }

  async #add(req: CniRequest): Promise<CniResponse> {
    const key = podKey(req.podNamespace, req.podName);
    const table = await this.#tableListing(req.podNamespace, req.podName);
    if (table === null)
      throw new CniRefusal(
        503,
        `the agent has no routing table yet, so it cannot tell whether ${key} is captured; the runtime will retry`,
      );
    const { captured, listed } = podIsCaptured(table, req.podNamespace, req.podName);
    this.#deleted.delete(key);
    this.#cniPods.set(req.containerId, { namespace: req.podNamespace, name: req.podName, ips: req.ips });
    if (captured) {
      try {
        await this.#program();
      } catch (err) {
        // Never keep state that cannot be programmed: it would fail every later change too.
        this.#cniPods.delete(req.containerId);
        throw err;
      }
    }
    this.#o.log.info({ pod: key, ips: req.ips, captured, listed }, "cni add");
    return { captured };
  }

  async #del(req: CniRequest): Promise<CniResponse> {
    const known = this.#cniPods.get(req.containerId);
    this.#cniPods.delete(req.containerId);
    const namespace = known?.namespace ?? req.podNamespace;
    const name = known?.name ?? req.podName;
    const key = podKey(namespace, name);
    const listed = this.#table?.localPods.find((p) => p.namespace === namespace && p.name === name);
    const ips = [...new Set([...(known?.ips ?? []), ...req.ips, ...(listed?.ips ?? [])])];
    if (ips.length > 0) this.#deleted.set(key, ips);
    await this.#program();
    this.#o.log.info({ pod: key, ips }, "cni del");
    return { captured: false };
  }

  async #check(req: CniRequest): Promise<CniResponse> {
    const table = this.#table;
    if (table === null) throw new CniRefusal(503, "the agent has no routing table yet");
    const { captured } = podIsCaptured(table, req.podNamespace, req.podName);
    const programmed = new Set(this.#programmed?.capturedIps ?? []);
    const missing = captured ? req.ips.filter((ip) => !programmed.has(ip)) : [];
    if (missing.length > 0)
      throw new CniRefusal(
        500,
        `${podKey(req.podNamespace, req.podName)} should be captured but ${missing.join(", ")} is not programmed`,
      );
    return { captured };
  }

  /** Waits (bounded) for a table that lists the pod; returns the latest table, or null if none came. */
  async #tableListing(namespace: string, name: string): Promise<TableView | null> {
    const deadline = Date.now() + this.#o.podWaitMs;
    for (;;) {
      const t = this.#table;
      if (t?.localPods.some((p) => p.namespace === namespace && p.name === name)) return t;
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed) return t;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#tableWaiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#tableWaiters.add(done);
      });
    }
  }

  #forgetDeletedPodsTheTableDropped(table: NodeTable): void {
    for (const [key, ips] of this.#deleted) {
      const pod = table.localPods.find((p) => podKey(p.namespace, p.name) === key);
      if (!pod?.ips.some((ip) => ips.includes(ip))) this.#deleted.delete(key);
    }
  }

  async #program(): Promise<void> {
    if (this.#table === null || this.#closed) return;
    if (this.#superseded || (this.#o.owner && !(await this.#o.owner()))) {
      if (!this.#superseded)
        this.#o.log.info("a newer agent owns this node's capture: no longer programming nft");
      this.#superseded = true;
      return;
    }
    const state = capturePlan({
      localPods: this.#table.localPods,
      capturedNamespaces: this.#table.capturedNamespaces,
      cniPods: this.#cniPods.values(),
      deleted: this.#deleted,
      servicePorts: this.#servicePorts,
    });
    try {
      const changed = await this.#o.nft.apply(state);
      this.#programmed = state;
      this.#lastError = null;
      this.#o.metrics?.programmed(state, changed);
      if (changed)
        this.#o.log.info(
          { capturedPods: state.capturedIps.length, servicePorts: state.servicePorts.length },
          "capture programmed",
        );
    } catch (err) {
      this.#lastError = (err as Error).message;
      this.#o.metrics?.programFailed();
      this.#o.log.error({ err }, "capture programming failed");
      this.#scheduleRetry();
      throw err;
    }
  }

  #scheduleRetry(): void {
    if (this.#retry || this.#closed) return;
    this.#retry = setTimeout(() => {
      this.#retry = null;
      this.#program().catch(() => {});
    }, this.#o.retryMs);
    this.#retry.unref();
  }

  async #writeCapturedNamespaces(namespaces: readonly string[]): Promise<void> {
    const file = this.#o.capturedNamespacesFile;
    const list = [...namespaces].sort();
    const key = list.join("\n");
    if (!file || key === this.#namespacesWritten) return;
    const body: CapturedNamespacesFile = { namespaces: list, updatedAt: new Date().toISOString() };
    await mkdir(dirname(file), { recursive: true });
    // Not the pid: two agents of a rolling update may both be pid 1 in their own pid namespaces.
    const tmp = `${file}.${randomUUID()}.tmp`;
    await writeFile(tmp, `${JSON.stringify(body)}\n`, { mode: 0o644 });
    await rename(tmp, file);
    this.#namespacesWritten = key;
  }
}
