// The pod's addresses, as the primary plugin reported them in prevResult.ips
// (CIDR notation, e.g. "10.244.1.5/24" or "fd00::5/64").

import { isIP, SocketAddress } from "node:net";

export type PodIpsResult = { ok: true; ips: string[] } | { ok: false; problem: string };

/**
 * Canonical text form (lower case, zeros compressed) so the agent can compare
 * it with the IPs Kubernetes reports in pod status.
 */
function canonical(ip: string): string {
  return new SocketAddress({ address: ip, family: isIP(ip) === 6 ? "ipv6" : "ipv4" }).address;
}

export function podIps(prevResult: Record<string, unknown>): PodIpsResult {
  const list = prevResult.ips;
  // A primary plugin may legitimately assign no address (e.g. L2-only setups).
  if (list === undefined) return { ok: true, ips: [] };
  if (!Array.isArray(list)) return { ok: false, problem: "prevResult.ips must be an array" };
  const out: string[] = [];
  for (const [i, entry] of list.entries()) {
    const address: unknown = typeof entry === "object" && entry !== null ? entry.address : undefined;
    if (typeof address !== "string")
      return { ok: false, problem: `prevResult.ips[${i}].address must be a string` };
    const slash = address.indexOf("/");
    const ip = slash < 0 ? address : address.slice(0, slash);
    const prefix = slash < 0 ? "" : address.slice(slash + 1);
    if (isIP(ip) === 0 || (slash >= 0 && !/^\d{1,3}$/.test(prefix)))
      return {
        ok: false,
        problem: `prevResult.ips[${i}].address ${JSON.stringify(address)} is not an IP in CIDR form`,
      };
    const c = canonical(ip);
    if (!out.includes(c)) out.push(c);
  }
  return { ok: true, ips: out };
}
