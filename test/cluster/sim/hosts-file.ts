// /etc/hosts and /etc/resolv.conf for pod network namespaces.
//
// DNS decision (no CoreDNS in the cluster-in-a-box): names resolve from a
// per-pod hosts file. `ip netns exec <podns>` bind-mounts
// /etc/netns/<podns>/{hosts,resolv.conf} over /etc/{hosts,resolv.conf} in the
// private mount namespace of every process it starts, so each pod sees its own
// files. The hosts file lists localhost, the pod's own hostname, its
// hostAliases, and every Service that has a ClusterIP as
//   name.ns  name.ns.svc  name.ns.svc.<domain>   (+ bare `name` for the pod's own namespace)
// because glibc applies no search list to hosts-file lookups. resolv.conf
// points at 127.0.0.1 inside the pod, where nothing listens, so a name that is
// not in the hosts file fails fast and no DNS query ever leaves the box.
// Headless and ExternalName Services are not resolvable this way.
//
// The files are rewritten IN PLACE (open with O_TRUNC, same inode) when
// Services change: running processes hold a bind mount of the inode, and a
// rename-replace would leave them looking at the old file forever.
import { readFile, writeFile } from "node:fs/promises";
import type { HostAlias, Service } from "./k8s-types.ts";

export type HostsInput = {
  namespace: string;
  hostname: string;
  subdomain?: string;
  podIPs: readonly string[];
  hostAliases?: readonly HostAlias[];
  services: readonly Service[];
  clusterDomain: string;
};

export function serviceClusterIPs(svc: Service): string[] {
  if (svc.spec.type === "ExternalName") return [];
  const ips = svc.spec.clusterIPs?.length
    ? svc.spec.clusterIPs
    : svc.spec.clusterIP
      ? [svc.spec.clusterIP]
      : [];
  return ips.filter((ip) => ip !== "" && ip !== "None");
}

export function renderHosts(input: HostsInput): string {
  const lines = [
    "# Kubernetes-managed hosts file (trellis node simulator).",
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "fe00::0\tip6-mcastprefix",
    "fe00::1\tip6-allnodes",
    "fe00::2\tip6-allrouters",
  ];
  for (const ip of input.podIPs) {
    if (input.subdomain) {
      const fqdn = `${input.hostname}.${input.subdomain}.${input.namespace}.svc.${input.clusterDomain}`;
      lines.push(`${ip}\t${fqdn}\t${input.hostname}`);
    } else {
      lines.push(`${ip}\t${input.hostname}`);
    }
  }
  if (input.hostAliases?.length) {
    lines.push("", "# Entries added by HostAliases.");
    for (const alias of input.hostAliases) {
      if (alias.hostnames?.length) lines.push(`${alias.ip}\t${alias.hostnames.join("\t")}`);
    }
  }
  const services = [...input.services].sort(
    (a, b) =>
      (a.metadata.namespace ?? "").localeCompare(b.metadata.namespace ?? "") ||
      (a.metadata.name ?? "").localeCompare(b.metadata.name ?? ""),
  );
  const serviceLines: string[] = [];
  for (const svc of services) {
    const { name, namespace } = svc.metadata;
    if (!name || !namespace) continue;
    const names = [
      `${name}.${namespace}`,
      `${name}.${namespace}.svc`,
      `${name}.${namespace}.svc.${input.clusterDomain}`,
    ];
    if (namespace === input.namespace) names.unshift(name);
    for (const ip of serviceClusterIPs(svc)) serviceLines.push(`${ip}\t${names.join(" ")}`);
  }
  if (serviceLines.length) lines.push("", "# Services (ClusterIP).", ...serviceLines);
  return `${lines.join("\n")}\n`;
}

export function renderResolvConf(namespace: string, clusterDomain: string): string {
  return [
    "# Trellis cluster-in-a-box: names resolve from /etc/hosts; nothing serves DNS.",
    "nameserver 127.0.0.1",
    `search ${namespace}.svc.${clusterDomain} svc.${clusterDomain} ${clusterDomain}`,
    "options ndots:5 timeout:1 attempts:1",
    "",
  ].join("\n");
}

/**
 * Writes `content` into `path` keeping the inode (truncate + write), and only
 * when the content differs. Returns whether it wrote.
 */
export async function writeInPlace(path: string, content: string): Promise<boolean> {
  const current = await readFile(path, "utf8").catch(() => undefined);
  if (current === content) return false;
  await writeFile(path, content, { flag: "w", mode: 0o644 });
  return true;
}
