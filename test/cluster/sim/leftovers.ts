// Start-up cleanup after an earlier run of this node's simulator crashed or
// was killed: processes, sandboxes (CNI DEL + netns), CNI cache, stale
// /etc/netns dirs, host-local IP reservations and pod state dirs. Sandboxes of
// pods that are still wanted are adopted when they pass CNI CHECK (the pod
// keeps its IP); their containers are restarted.
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { CniRuntime } from "./cni-runtime.ts";
import type { NodeConfig } from "./config.ts";
import type { Pod } from "./k8s-types.ts";
import { deleteNetns, isPodNetnsOf, listNetns, NETNS_ETC_DIR } from "./netns.ts";
import { killMatching } from "./processes.ts";
import type { Sandboxes, SandboxRecord } from "./sandbox.ts";
import { isTerminalPhase } from "./status.ts";

const uidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Pods whose sandbox may be kept: wanted, not finished, not being deleted, not hostNetwork. */
export function adoptable(pod: Pod | undefined): boolean {
  return (
    pod !== undefined &&
    !pod.metadata.deletionTimestamp &&
    !isTerminalPhase(pod.status?.phase) &&
    pod.spec.hostNetwork !== true
  );
}

export async function cleanUpLeftovers(opts: {
  cfg: NodeConfig;
  cni: CniRuntime;
  sandboxes: Sandboxes;
  pods: ReadonlyMap<string, Pod>;
  log: Logger;
}): Promise<Map<string, SandboxRecord>> {
  const { cfg, cni, sandboxes, pods, log } = opts;

  const killed = await killMatching(cfg.boxId, cfg.name, () => true);
  if (killed.length) log.info({ pids: killed }, "killed processes left by an earlier run");

  const adopted = new Map<string, SandboxRecord>();
  for (const rec of await sandboxes.records()) {
    const pod = pods.get(rec.uid);
    if (adoptable(pod) && (await sandboxes.check(rec))) {
      adopted.set(rec.uid, rec);
      log.info({ uid: rec.uid, netns: rec.netns, podIPs: rec.podIPs }, "adopted sandbox of an earlier run");
    } else {
      log.info({ uid: rec.uid, netns: rec.netns }, "removing sandbox of an earlier run");
      await sandboxes
        .teardown(rec)
        .catch((err: unknown) => log.warn({ err: String(err) }, "teardown failed"));
    }
  }
  const keepIds = new Set([...adopted.values()].map((r) => r.sandboxId));
  const keepNetns = new Set([...adopted.values()].map((r) => r.netns));

  for (const rec of await cni.listCache()) {
    if (keepIds.has(rec.containerId)) continue;
    log.info({ containerId: rec.containerId }, "CNI DEL for a cached result without sandbox");
    const rt = {
      containerId: rec.containerId,
      netns: rec.netns,
      ifName: rec.ifName,
      args: rec.cniArgs,
      capabilityArgs: rec.capabilityArgs,
    };
    await cni.del(rt).catch((err: unknown) => log.warn({ err: String(err) }, "CNI DEL of leftover failed"));
    await cni.dropCache(rec);
  }

  for (const name of await listNetns()) {
    if (isPodNetnsOf(cfg.name, name) && !keepNetns.has(name)) {
      log.info({ netns: name }, "deleting stale pod netns");
      await deleteNetns(name);
    }
  }
  for (const name of await readdir(NETNS_ETC_DIR).catch(() => [] as string[])) {
    if (isPodNetnsOf(cfg.name, name) && !keepNetns.has(name)) {
      await rm(join(NETNS_ETC_DIR, name), { recursive: true, force: true });
    }
  }

  for (const r of await cni.ipamReservations()) {
    if (!keepIds.has(r.containerId)) {
      log.info({ file: r.file, containerId: r.containerId }, "releasing stale IP reservation");
      await rm(r.file, { force: true });
    }
  }

  const podsDir = join(cfg.stateDir, "pods");
  for (const name of await readdir(podsDir).catch(() => [] as string[])) {
    if (uidPattern.test(name) && !pods.has(name))
      await rm(join(podsDir, name), { recursive: true, force: true });
  }
  return adopted;
}
