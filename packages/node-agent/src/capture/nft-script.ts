// The agent's whole nftables state as one `nft -f` transaction: the table is
// deleted and re-created with its set and map filled in, so packets see either
// the old state or the new one, never a mix, and a restarted agent converges
// to exactly what it computes (stale entries cannot survive a reconcile).
//
// Only addresses and port numbers reach the script, and each is re-derived
// from a validated parse, never copied from its input string: pod and
// namespace names, which the CNI socket and the API carry, never do.
import { isIPv4, isIPv6 } from "node:net";

export const NFT_TABLE = "trellis";

/** Everything the agent programs: who is captured and where service ports go. */
export interface CaptureState {
  /** Pod addresses (IPv4 or IPv6) whose TCP traffic to meshed service ports is captured. */
  capturedIps: readonly string[];
  /** Meshed service port → the agent listener that serves it. */
  servicePorts: readonly ServicePortRedirect[];
}

export interface ServicePortRedirect {
  serviceIp: string;
  port: number;
  listenerPort: number;
}

export class CaptureInputError extends Error {}

type Family = "ip" | "ip6";

/** The nft input that makes the kernel's state equal `state`. Throws CaptureInputError on an invalid address or port. */
export function nftScript(state: CaptureState): string {
  const ips: Record<Family, Set<string>> = { ip: new Set(), ip6: new Set() };
  for (const raw of state.capturedIps) {
    const { family, text } = address(raw, "captured pod address");
    ips[family].add(text);
  }
  const redirects: Record<Family, Map<string, string>> = { ip: new Map(), ip6: new Map() };
  for (const r of state.servicePorts) {
    const { family, text } = address(r.serviceIp, "service address");
    const key = `${text} . ${port(r.port, `port of ${text}`)}`;
    redirects[family].set(key, `${key} : ${port(r.listenerPort, `listener port for ${key}`)}`);
  }
  const lines: string[] = [];
  for (const family of ["ip", "ip6"] as const) {
    // "add" then "delete" removes the table whether or not it existed, in the same transaction.
    lines.push(`add table ${family} ${NFT_TABLE}`, `delete table ${family} ${NFT_TABLE}`);
    if (ips[family].size === 0 && family === "ip6") continue;
    lines.push(
      ...tableLines(
        family,
        [...ips[family]].sort(),
        [...redirects[family]].sort().map(([, v]) => v),
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** The nft input that removes everything the agent ever programmed. */
export function nftRemoveScript(): string {
  const lines = ["ip", "ip6"].flatMap((f) => [
    `add table ${f} ${NFT_TABLE}`,
    `delete table ${f} ${NFT_TABLE}`,
  ]);
  return `${lines.join("\n")}\n`;
}

function tableLines(family: Family, captured: string[], redirects: string[]): string[] {
  const addrType = family === "ip" ? "ipv4_addr" : "ipv6_addr";
  const elements = (items: string[]) => (items.length === 0 ? "" : ` elements = { ${items.join(", ")} };`);
  return [
    `table ${family} ${NFT_TABLE} {`,
    `  set captured { type ${addrType};${elements(captured)} }`,
    `  map svcports { type ${addrType} . inet_service : inet_service;${elements(redirects)} }`,
    "  chain prerouting {",
    // Before kube-proxy's dstnat (-100), so a captured connection to a meshed
    // port never gets its DNAT; a map miss leaves the packet to kube-proxy.
    "    type nat hook prerouting priority dstnat - 10; policy accept;",
    `    ${family} saddr @captured meta l4proto tcp redirect to : ${family} daddr . tcp dport map @svcports`,
    "  }",
    "}",
  ];
}

function address(raw: string, what: string): { family: Family; text: string } {
  if (isIPv4(raw)) {
    // Rebuilt from numbers: no character of the input is reused.
    return {
      family: "ip",
      text: raw
        .split(".")
        .map((o) => String(Number(o)))
        .join("."),
    };
  }
  if (isIPv6(raw) && !raw.includes("%")) return { family: "ip6", text: canonicalIPv6(raw) };
  throw new CaptureInputError(`${what} ${JSON.stringify(raw)} is not an IP address`);
}

function port(n: number, what: string): string {
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new CaptureInputError(`${what} ${n} is not a TCP port`);
  return String(n);
}

/** Expands and re-prints an IPv6 address from its 16-bit groups (hex digits only). */
function canonicalIPv6(raw: string): string {
  let text = raw.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const o = v4[1].split(".").map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1].length)}${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return groups.map((g) => Number.parseInt(g, 16).toString(16)).join(":");
}
