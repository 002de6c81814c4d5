// The Node object and its heartbeats, as kubelet keeps them: register (or
// update after a restart), renew the Lease in kube-node-lease every 10 s, and
// refresh the node conditions periodically so the node stays Ready.
import { createHash } from "node:crypto";
import { release } from "node:os";
import type { Logger } from "pino";
import { Backoff, sleep } from "./backoff.ts";
import type { NodeConfig } from "./config.ts";
import type { NodeAllocatable } from "./downward-api.ts";
import { microTime, rfc3339 } from "./k8s-time.ts";
import type { Lease, Node, NodeCondition, NodeStatus } from "./k8s-types.ts";
import { isStatus, type KubeApi } from "./kube-api.ts";

export const LEASE_RENEW_MS = 10_000;
export const LEASE_DURATION_S = 40;
export const STATUS_REFRESH_MS = 30_000;

export const NODE_ALLOCATABLE: NodeAllocatable & { pods: string } = {
  cpu: "8",
  memory: "16Gi",
  "ephemeral-storage": "100Gi",
  pods: "110",
};

const CONDITIONS: [type: string, status: string, reason: string, message: string][] = [
  ["MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"],
  ["DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"],
  ["PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"],
  ["Ready", "True", "KubeletReady", "kubelet is posting ready status"],
];

/** Our four conditions with a fresh heartbeat; transition times kept when the status did not change. */
export function nodeConditions(old: readonly NodeCondition[], now: Date): NodeCondition[] {
  return CONDITIONS.map(([type, status, reason, message]) => {
    const prev = old.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: rfc3339(now),
      lastTransitionTime:
        prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : rfc3339(now),
    };
  });
}

function stableId(cfg: NodeConfig, what: string): string {
  return createHash("sha256").update(`${cfg.boxId}/${cfg.name}/${what}`).digest("hex").slice(0, 32);
}

export function nodeLabels(cfg: NodeConfig): Record<string, string> {
  return {
    "kubernetes.io/hostname": cfg.name,
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "beta.kubernetes.io/os": "linux",
    "beta.kubernetes.io/arch": "amd64",
  };
}

export function nodeStatus(cfg: NodeConfig, oldConditions: readonly NodeCondition[], now: Date): NodeStatus {
  const resources = {
    cpu: NODE_ALLOCATABLE.cpu,
    memory: NODE_ALLOCATABLE.memory,
    "ephemeral-storage": NODE_ALLOCATABLE["ephemeral-storage"],
    pods: NODE_ALLOCATABLE.pods,
  };
  return {
    capacity: resources,
    allocatable: resources,
    conditions: nodeConditions(oldConditions, now),
    addresses: [
      { type: "InternalIP", address: cfg.underlayIP },
      { type: "Hostname", address: cfg.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
    nodeInfo: {
      machineID: stableId(cfg, "machine"),
      systemUUID: stableId(cfg, "system"),
      bootID: stableId(cfg, `boot-${process.pid}`),
      kernelVersion: release(),
      osImage: "Trellis cluster-in-a-box",
      containerRuntimeVersion: "trellis-sim://0.1.0",
      kubeletVersion: cfg.kubernetesVersion,
      kubeProxyVersion: cfg.kubernetesVersion,
      operatingSystem: "linux",
      architecture: "amd64",
    },
  };
}

/** An existing node status with ours applied; conditions owned by others (e.g. NetworkUnavailable) are kept. */
export function withOurStatus(cfg: NodeConfig, old: NodeStatus | undefined, now: Date): NodeStatus {
  const oldConditions = old?.conditions ?? [];
  const ours = new Set(CONDITIONS.map(([type]) => type));
  const status = nodeStatus(cfg, oldConditions, now);
  return {
    ...old,
    ...status,
    conditions: [...oldConditions.filter((c) => !ours.has(c.type)), ...(status.conditions ?? [])],
  };
}

/** The Node to create at registration. */
export function newNode(cfg: NodeConfig, now: Date): Node {
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name: cfg.name,
      labels: nodeLabels(cfg),
      annotations: { "node.alpha.kubernetes.io/ttl": "0" },
    },
    spec: { podCIDR: cfg.podCIDR, podCIDRs: [cfg.podCIDR] },
    status: nodeStatus(cfg, [], now),
  };
}

export class NodeRegistration {
  readonly #cfg: NodeConfig;
  readonly #api: KubeApi;
  readonly #log: Logger;
  readonly #stop = new AbortController();
  #nodeUid = "";
  #lease: Lease | undefined;
  #loops: Promise<void>[] = [];

  constructor(cfg: NodeConfig, api: KubeApi, log: Logger) {
    this.#cfg = cfg;
    this.#api = api;
    this.#log = log;
  }

  /** Registers the node (retrying until it works), then keeps lease and status fresh. */
  async start(): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 10_000 });
    while (!this.#stop.signal.aborted) {
      try {
        await this.#register();
        break;
      } catch (err) {
        const delay = backoff.next();
        this.#log.warn({ err: String(err), retryInMs: delay }, "node registration failed");
        await sleep(delay, this.#stop.signal);
      }
    }
    await this.#renewLease().catch((err: unknown) =>
      this.#log.warn({ err: String(err) }, "lease renewal failed"),
    );
    this.#loops = [
      this.#every(LEASE_RENEW_MS, () => this.#renewLease(), "lease renewal failed"),
      this.#every(STATUS_REFRESH_MS, () => this.#refreshStatus(), "node status update failed"),
    ];
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#loops);
  }

  async #every(ms: number, fn: () => Promise<void>, what: string): Promise<void> {
    while (!this.#stop.signal.aborted) {
      await sleep(ms, this.#stop.signal);
      if (this.#stop.signal.aborted) return;
      await fn().catch((err: unknown) => this.#log.warn({ err: String(err) }, what));
    }
  }

  async #register(): Promise<void> {
    const path = `/api/v1/nodes/${this.#cfg.name}`;
    let node: Node;
    try {
      node = await this.#api.request<Node>("POST", "/api/v1/nodes", { body: newNode(this.#cfg, new Date()) });
      this.#log.info("node registered");
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
      // Restart: the Node exists. Bring labels/spec up to date, then its status.
      const existing = await this.#api.get<Node>(path);
      existing.metadata.labels = { ...existing.metadata.labels, ...nodeLabels(this.#cfg) };
      existing.spec ??= {};
      if (!existing.spec.podCIDR) {
        existing.spec.podCIDR = this.#cfg.podCIDR;
        existing.spec.podCIDRs = [this.#cfg.podCIDR];
      } else if (existing.spec.podCIDR !== this.#cfg.podCIDR) {
        this.#log.error(
          { have: existing.spec.podCIDR, want: this.#cfg.podCIDR },
          "node podCIDR differs (immutable)",
        );
      }
      const updated = await this.#api.request<Node>("PUT", path, { body: existing });
      updated.status = withOurStatus(this.#cfg, updated.status, new Date());
      node = await this.#api.request<Node>("PUT", `${path}/status`, { body: updated });
      this.#log.info("node existed: updated");
    }
    this.#nodeUid = node.metadata.uid ?? "";
  }

  async #refreshStatus(): Promise<void> {
    const path = `/api/v1/nodes/${this.#cfg.name}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const node = await this.#api.get<Node>(path);
      node.status = withOurStatus(this.#cfg, node.status, new Date());
      try {
        await this.#api.request("PUT", `${path}/status`, { body: node });
        return;
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
      }
    }
  }

  #leaseBody(now: Date, base?: Lease): Lease {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        ...base?.metadata,
        name: this.#cfg.name,
        namespace: "kube-node-lease",
        ownerReferences: this.#nodeUid
          ? [{ apiVersion: "v1", kind: "Node", name: this.#cfg.name, uid: this.#nodeUid }]
          : base?.metadata.ownerReferences,
      },
      spec: {
        ...base?.spec,
        holderIdentity: this.#cfg.name,
        leaseDurationSeconds: LEASE_DURATION_S,
        renewTime: microTime(now),
      },
    };
  }

  async #renewLease(): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.#cfg.name}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        if (!this.#lease) {
          try {
            this.#lease = await this.#api.get<Lease>(path);
          } catch (err) {
            if (!isStatus(err, 404)) throw err;
            this.#lease = await this.#api.request<Lease>(
              "POST",
              "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
              { body: this.#leaseBody(new Date()) },
            );
            return;
          }
        }
        this.#lease = await this.#api.request<Lease>("PUT", path, {
          body: this.#leaseBody(new Date(), this.#lease),
        });
        return;
      } catch (err) {
        this.#lease = undefined;
        if (!isStatus(err, 409, 404)) throw err;
      }
    }
  }
}
