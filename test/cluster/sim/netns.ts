// Network namespaces for pods, and their /etc/netns/<name> overlay directory.
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { run, runOk } from "./exec.ts";

export const NETNS_RUN_DIR = "/run/netns";
export const NETNS_ETC_DIR = "/etc/netns";

/** tbx-<node>-<first 8 hex digits of the pod uid>. */
export function podNetnsName(node: string, uid: string): string {
  return `tbx-${node}-${uid.replace(/-/g, "").slice(0, 8)}`;
}

/** Matches the names podNetnsName gives on this node (and nothing else, e.g. not tbx-<node>). */
export function isPodNetnsOf(node: string, name: string): boolean {
  const prefix = `tbx-${node}-`;
  return name.startsWith(prefix) && /^[0-9a-f]{8}$/.test(name.slice(prefix.length));
}

export function netnsPath(name: string): string {
  return join(NETNS_RUN_DIR, name);
}

export function netnsEtcDir(name: string): string {
  return join(NETNS_ETC_DIR, name);
}

export async function listNetns(): Promise<string[]> {
  return readdir(NETNS_RUN_DIR).catch(() => []);
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await listNetns()).includes(name);
}

/** Creates the namespace with `lo` up, and its /etc/netns directory. */
export async function createNetns(name: string): Promise<void> {
  await runOk("ip", ["netns", "add", name]);
  await runOk("ip", ["-n", name, "link", "set", "lo", "up"]);
  await mkdir(netnsEtcDir(name), { recursive: true });
}

/** Deletes the namespace (its interfaces go with it) and its /etc/netns directory. */
export async function deleteNetns(name: string): Promise<void> {
  if (await netnsExists(name)) {
    const r = await run("ip", ["netns", "del", name]);
    if (r.code !== 0 && (await netnsExists(name)))
      throw new Error(`ip netns del ${name}: ${r.stderr.trim()}`);
  }
  await rm(netnsEtcDir(name), { recursive: true, force: true });
}
