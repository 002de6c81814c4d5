// Network namespaces, veths, bridge and routes of the cluster-in-a-box.
// Everything created here is named with NAME_PREFIX so teardown can find it
// even after a crash, without any record of what was made.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import {
  NAME_PREFIX,
  type NodeLayout,
  SERVICE_CIDR,
  UNDERLAY_BRIDGE,
  UNDERLAY_HOST_IP,
  UNREACHABLE_CIDRS,
} from "./layout.ts";

function ip(args: string[], netns?: string): string {
  const full = netns ? ["netns", "exec", netns, "ip", ...args] : args;
  return execFileSync("ip", full, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function sysctl(netns: string, key: string, value: string): void {
  execFileSync("ip", ["netns", "exec", netns, "sysctl", "-q", "-w", `${key}=${value}`], { stdio: "ignore" });
}

function ipv4ToInt(ip: string): number {
  return ip.split(".").reduce((acc, octet) => (acc << 8) + Number(octet), 0) >>> 0;
}

export function cidrContains(cidr: string, ip: string): boolean {
  const [base = "", bits = "32"] = cidr.split("/");
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (ipv4ToInt(base) & mask) >>> 0 === (ipv4ToInt(ip) & mask) >>> 0;
}

/**
 * The box's unreachable routes must not shadow anything the machine already
 * uses (its DNS server, its own networks): refuse to start instead.
 */
export function checkNoOverlap(): void {
  const used: Array<{ what: string; ip: string }> = [];
  const resolv = existsSync("/etc/resolv.conf") ? readFileSync("/etc/resolv.conf", "utf8") : "";
  for (const m of resolv.matchAll(/^nameserver\s+(\d+\.\d+\.\d+\.\d+)/gm))
    used.push({ what: "nameserver", ip: m[1]! });
  for (const line of ip(["-4", "route", "show", "table", "main"]).split("\n")) {
    const dst = line.split(" ")[0] ?? "";
    if (
      /^\d+\.\d+\.\d+\.\d+/.test(dst) &&
      !line.includes(UNDERLAY_BRIDGE) &&
      !line.startsWith("unreachable")
    ) {
      used.push({ what: `route ${line.trim()}`, ip: dst.split("/")[0]! });
    }
  }
  for (const u of used) {
    const hit = UNREACHABLE_CIDRS.find((c) => cidrContains(c, u.ip));
    if (hit)
      throw new Error(
        `the box's range ${hit} overlaps this machine's ${u.what} (${u.ip}); change test/cluster/layout.ts`,
      );
  }
}

export function createUnderlay(): void {
  checkNoOverlap();
  ip(["link", "add", UNDERLAY_BRIDGE, "type", "bridge"]);
  ip(["addr", "add", `${UNDERLAY_HOST_IP}/24`, "dev", UNDERLAY_BRIDGE]);
  ip(["link", "set", UNDERLAY_BRIDGE, "up"]);
  // Anything in these ranges that no specific route claims must die here,
  // not follow the machine's default route out.
  for (const cidr of UNREACHABLE_CIDRS) ip(["route", "replace", "unreachable", cidr]);
}

export function createNodeNetwork(node: NodeLayout, all: readonly NodeLayout[]): void {
  ip(["netns", "add", node.netns]);
  ip(["link", "add", node.hostVeth, "type", "veth", "peer", "name", "eth0", "netns", node.netns]);
  ip(["link", "set", node.hostVeth, "master", UNDERLAY_BRIDGE, "up"]);
  ip(["link", "set", "lo", "up"], node.netns);
  ip(["addr", "add", `${node.underlayIP}/24`, "dev", "eth0"], node.netns);
  ip(["link", "set", "eth0", "up"], node.netns);
  // No default route in a node: only the cluster's own ranges are reachable.
  for (const other of all) {
    if (other.name !== node.name) ip(["route", "add", other.podCIDR, "via", other.underlayIP], node.netns);
  }
  // Host-network clients need a route to service VIPs for connect() to reach
  // kube-proxy's OUTPUT DNAT; unhandled VIPs then die on the root's unreachable route.
  ip(["route", "add", SERVICE_CIDR, "via", UNDERLAY_HOST_IP], node.netns);
  ip(["route", "replace", node.podCIDR, "via", node.underlayIP]);
  sysctl(node.netns, "net.ipv4.ip_forward", "1");
  // Pod → service → pod on the same bridge needs bridged frames to see
  // conntrack, or replies skip the un-DNAT (the usual br_netfilter setting).
  sysctl(node.netns, "net.bridge.bridge-nf-call-iptables", "1");
}

export function listBoxNetns(): string[] {
  let out = "";
  try {
    out = ip(["netns", "list"]);
  } catch {
    return [];
  }
  return out
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(NAME_PREFIX));
}

function tryIp(args: string[]): void {
  try {
    ip(args);
  } catch {
    // Already gone: teardown is best-effort and idempotent by design.
  }
}

/** Removes every namespace, link and route the box may have made, whether or not `up` finished. */
export function removeBoxNetwork(): void {
  for (const ns of listBoxNetns()) tryIp(["netns", "del", ns]);
  const links = ip(["-o", "link", "show"])
    .split("\n")
    .map((l) => (l.split(": ")[1] ?? "").split("@")[0] ?? "")
    .filter((n) => n.startsWith(NAME_PREFIX) || n === UNDERLAY_BRIDGE);
  for (const link of links) tryIp(["link", "del", link]);
  for (const cidr of UNREACHABLE_CIDRS) tryIp(["route", "del", "unreachable", cidr]);
  // Pod CIDR routes went with the bridge; a leftover one would point nowhere.
  const routes = ip(["route", "show"]).split("\n");
  for (const r of routes) {
    if (r.startsWith("10.244.") && r.includes(" via 10.240.0."))
      tryIp(["route", "del", r.split(" ")[0] ?? ""]);
  }
  // `ip netns exec` bind-mounts /etc/netns/<ns>/*; the simulator writes them per pod.
  const etcNetns = "/etc/netns";
  if (existsSync(etcNetns)) {
    for (const d of readdirSync(etcNetns)) {
      if (d.startsWith(NAME_PREFIX)) rmSync(path.join(etcNetns, d), { recursive: true, force: true });
    }
  }
}
