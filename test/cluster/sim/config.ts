// node.json, written by the cluster script for each simulated node.
import { readFileSync } from "node:fs";

export type NodeConfig = {
  name: string;
  /** The node's network namespace (exists already; owned by the cluster script). */
  netns: string;
  underlayIP: string;
  podCIDR: string;
  podGateway: string;
  clusterCIDR: string;
  serviceCIDR: string;
  underlayCIDR: string;
  apiServer: string;
  kubeconfig: string;
  stateDir: string;
  boxId: string;
  clusterDomain: string;
  kubernetesVersion: string;
  trellisRoot: string;
};

const stringFields = [
  "name",
  "netns",
  "underlayIP",
  "podCIDR",
  "podGateway",
  "clusterCIDR",
  "serviceCIDR",
  "underlayCIDR",
  "apiServer",
  "kubeconfig",
  "stateDir",
  "boxId",
  "clusterDomain",
  "kubernetesVersion",
  "trellisRoot",
] as const satisfies readonly (keyof NodeConfig)[];

const cidr = /^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/;
const ipv4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export function parseNodeConfig(raw: unknown): NodeConfig {
  if (typeof raw !== "object" || raw === null) throw new Error("node config: not an object");
  const obj = raw as Record<string, unknown>;
  const out: Partial<NodeConfig> = {};
  for (const field of stringFields) {
    const v = obj[field];
    if (typeof v !== "string" || v === "")
      throw new Error(`node config: ${field} must be a non-empty string`);
    out[field] = v;
  }
  const cfg = out as NodeConfig;
  for (const f of ["podCIDR", "clusterCIDR", "serviceCIDR", "underlayCIDR"] as const) {
    if (!cidr.test(cfg[f])) throw new Error(`node config: ${f} ${cfg[f]} is not an IPv4 CIDR`);
  }
  for (const f of ["underlayIP", "podGateway"] as const) {
    if (!ipv4.test(cfg[f])) throw new Error(`node config: ${f} ${cfg[f]} is not an IPv4 address`);
  }
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(cfg.name))
    throw new Error(`node config: bad node name ${cfg.name}`);
  return cfg;
}

export function loadNodeConfig(path: string): NodeConfig {
  return parseNodeConfig(JSON.parse(readFileSync(path, "utf8")));
}
