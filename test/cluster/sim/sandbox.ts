// Pod sandboxes: the pod's network namespace, its /etc/netns files, and its
// network from the CNI chain. A record per sandbox under
// <stateDir>/sandboxes/<uid>.json lets a restarted simulator adopt (CNI CHECK)
// or tear down (CNI DEL) what an earlier run left.
import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { podCapabilityArgs, podCniArgs, type RuntimeConf, resultIPs } from "./cni.ts";
import type { CniRuntime } from "./cni-runtime.ts";
import type { NodeConfig } from "./config.ts";
import { type HostsInput, renderHosts, renderResolvConf, writeInPlace } from "./hosts-file.ts";
import type { Pod, Service } from "./k8s-types.ts";
import { podHostname } from "./launch.ts";
import { createNetns, deleteNetns, netnsEtcDir, netnsExists, netnsPath, podNetnsName } from "./netns.ts";

export type SandboxRecord = {
  uid: string;
  namespace: string;
  name: string;
  netns: string;
  sandboxId: string;
  runtime: RuntimeConf;
  podIPs: string[];
  createdAt: string;
};

export class SandboxError extends Error {
  override readonly name = "SandboxError";
}

export class Sandboxes {
  readonly #cfg: NodeConfig;
  readonly #cni: CniRuntime;
  readonly #log: Logger;
  readonly #dir: string;

  constructor(cfg: NodeConfig, cni: CniRuntime, log: Logger) {
    this.#cfg = cfg;
    this.#cni = cni;
    this.#log = log;
    this.#dir = join(cfg.stateDir, "sandboxes");
  }

  #recordFile(uid: string): string {
    return join(this.#dir, `${uid}.json`);
  }

  async records(): Promise<SandboxRecord[]> {
    const files = await readdir(this.#dir).catch(() => [] as string[]);
    const out: SandboxRecord[] = [];
    for (const f of files) {
      if (!f.endsWith(".json")) continue;
      try {
        out.push(JSON.parse(await readFile(join(this.#dir, f), "utf8")) as SandboxRecord);
      } catch {
        await rm(join(this.#dir, f), { force: true });
      }
    }
    return out;
  }

  hostsInput(pod: Pod, podIPs: readonly string[], services: readonly Service[]): HostsInput {
    return {
      namespace: pod.metadata.namespace ?? "default",
      hostname: podHostname(pod),
      ...(pod.spec.subdomain ? { subdomain: pod.spec.subdomain } : {}),
      podIPs,
      hostAliases: pod.spec.hostAliases ?? [],
      services,
      clusterDomain: this.#cfg.clusterDomain,
    };
  }

  async writeHosts(record: SandboxRecord, pod: Pod, services: readonly Service[]): Promise<boolean> {
    return writeInPlace(
      join(netnsEtcDir(record.netns), "hosts"),
      renderHosts(this.hostsInput(pod, record.podIPs, services)),
    );
  }

  /**
   * Creates the sandbox: netns (lo up), /etc/netns/<ns>/{resolv.conf,hosts},
   * CNI ADD. On failure everything added is removed again (CNI DEL of the
   * chain, netns deleted) and a SandboxError is thrown.
   */
  async create(pod: Pod, services: readonly Service[]): Promise<SandboxRecord> {
    const uid = pod.metadata.uid ?? "";
    const netns = podNetnsName(this.#cfg.name, uid);
    const sandboxId = randomBytes(32).toString("hex");
    const runtime: RuntimeConf = {
      containerId: sandboxId,
      netns: netnsPath(netns),
      ifName: "eth0",
      args: podCniArgs(pod, sandboxId),
      capabilityArgs: podCapabilityArgs(pod),
    };
    const record: SandboxRecord = {
      uid,
      namespace: pod.metadata.namespace ?? "",
      name: pod.metadata.name ?? "",
      netns,
      sandboxId,
      runtime,
      podIPs: [],
      createdAt: new Date().toISOString(),
    };
    if (await netnsExists(netns)) await deleteNetns(netns); // stale, from an earlier failed attempt
    await mkdir(this.#dir, { recursive: true });
    await writeFile(this.#recordFile(uid), JSON.stringify(record));
    try {
      await createNetns(netns);
      const etc = netnsEtcDir(netns);
      await writeInPlace(
        join(etc, "resolv.conf"),
        renderResolvConf(record.namespace, this.#cfg.clusterDomain),
      );
      await writeInPlace(join(etc, "hosts"), renderHosts(this.hostsInput(pod, [], services)));
      const { result } = await this.#cni.add(runtime);
      record.podIPs = resultIPs(result);
      if (record.podIPs.length === 0) throw new SandboxError("CNI result has no IP for the pod");
      await writeFile(this.#recordFile(uid), JSON.stringify(record));
      await this.writeHosts(record, pod, services);
      return record;
    } catch (err) {
      await this.teardown(record).catch((e: unknown) =>
        this.#log.warn({ uid, err: String(e) }, "cleanup after failed sandbox creation failed"),
      );
      throw new SandboxError(
        `failed to set up sandbox network: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /** Whether an existing sandbox is intact (netns present, CNI CHECK passes). */
  async check(record: SandboxRecord): Promise<boolean> {
    if (!(await netnsExists(record.netns))) return false;
    try {
      await this.#cni.check(record.runtime);
      return true;
    } catch (err) {
      this.#log.info({ uid: record.uid, err: String(err) }, "sandbox CNI CHECK failed");
      return false;
    }
  }

  /**
   * CNI DEL (reverse chain, cached result as prevResult), then the netns and
   * its /etc/netns dir. A DEL that keeps failing does not block the teardown:
   * the netns goes anyway and host-local's reservations are released by hand.
   */
  async teardown(record: SandboxRecord): Promise<void> {
    let deleted = false;
    for (let attempt = 1; attempt <= 2 && !deleted; attempt++) {
      try {
        await this.#cni.del(record.runtime);
        deleted = true;
      } catch (err) {
        this.#log.warn({ uid: record.uid, attempt, err: String(err) }, "CNI DEL failed");
      }
    }
    if (!deleted) {
      await this.#cni.releaseIPs(record.sandboxId);
      const cached = await this.#cni.readCache(record.sandboxId, record.runtime.ifName);
      if (cached) await this.#cni.dropCache(cached);
    }
    await deleteNetns(record.netns);
    await rm(this.#recordFile(record.uid), { force: true });
  }
}
