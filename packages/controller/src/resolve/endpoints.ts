// Endpoints of one Service port, from its EndpointSlices. The slice's ports
// carry the resolved target port under the Service port's name, which is how
// a named targetPort (different numbers on different pods) is honoured.
import type { Endpoint } from "@trellis/api";
import type { EndpointSliceObject, ServicePortObject } from "../snapshot/snapshot.ts";
import { compareStrings } from "../sort-order.ts";

export function endpointsOf(port: ServicePortObject, slices: readonly EndpointSliceObject[]): Endpoint[] {
  const byAddress = new Map<string, Endpoint>();
  for (const slice of slices) {
    if (slice.addressType !== "IPv4" && slice.addressType !== "IPv6") continue;
    const slicePort = slice.ports.find((p) => p.name === port.name && p.protocol === port.protocol);
    // Without a matching slice port only a numeric targetPort is usable.
    const number = slicePort?.port ?? (typeof port.targetPort === "number" ? port.targetPort : undefined);
    if (number === undefined || (slice.ports.length > 0 && !slicePort)) continue;
    for (const ep of slice.endpoints) {
      if (!ep.ready && !ep.serving) continue;
      const key = `${ep.address} ${number}`;
      const seen = byAddress.get(key);
      // During slice churn an address can sit in two slices: the most
      // optimistic view wins, like kube-proxy's.
      byAddress.set(key, {
        ip: ep.address,
        port: number,
        node: seen?.node || ep.nodeName,
        pod: seen?.pod || ep.pod,
        ready: (seen?.ready ?? false) || ep.ready,
        serving: (seen?.serving ?? false) || ep.serving,
        terminating: (seen?.terminating ?? true) && ep.terminating,
      });
    }
  }
  return [...byAddress.values()].sort((a, b) => compareStrings(a.ip, b.ip) || a.port - b.port);
}
