// The service-port map (service VIP . port → listener port) that is programmed
// in this node's nftables right now. A starting agent adopts it, so that
// while it overlaps with the agent it replaces (rolling update with surge),
// both listen on the same port for the same service port.
import type { NftProgram } from "./nft.ts";

export interface ProgrammedPort {
  serviceIp: string;
  port: number;
  listenerPort: number;
}

/** Map elements of `nft -j list table`: [{ concat: [ip, port] }, listenerPort]. */
export function parseProgrammedPorts(listing: unknown): ProgrammedPort[] {
  const items = (listing as { nftables?: unknown } | null)?.nftables;
  if (!Array.isArray(items)) return [];
  const out: ProgrammedPort[] = [];
  for (const item of items) {
    const map = (item as { map?: { name?: unknown; elem?: unknown } }).map;
    if (map?.name !== "svcports" || !Array.isArray(map.elem)) continue;
    for (const e of map.elem) {
      if (!Array.isArray(e) || e.length !== 2) continue;
      const [key, listenerPort] = e as [unknown, unknown];
      const concat = (key as { concat?: unknown }).concat;
      if (!Array.isArray(concat) || concat.length !== 2) continue;
      const [serviceIp, port] = concat as [unknown, unknown];
      if (typeof serviceIp !== "string" || !Number.isInteger(port) || !Number.isInteger(listenerPort))
        continue;
      out.push({ serviceIp, port: port as number, listenerPort: listenerPort as number });
    }
  }
  return out;
}

/** Both families; an absent table adds nothing. */
export async function readProgrammedPorts(nft: NftProgram): Promise<ProgrammedPort[]> {
  const [v4, v6] = await Promise.all([nft.list("ip"), nft.list("ip6")]);
  return [...parseProgrammedPorts(v4), ...parseProgrammedPorts(v6)];
}
