import { describe, expect, it } from "vitest";
import { parseProgrammedPorts } from "./programmed-ports.ts";

// As `nft -j list table ip trellis` (nftables 1.0.6) prints it.
const LISTING = {
  nftables: [
    { metainfo: { version: "1.0.6", json_schema_version: 1 } },
    { table: { family: "ip", name: "trellis", handle: 1 } },
    { set: { family: "ip", name: "captured", table: "trellis", type: "ipv4_addr", elem: ["10.244.1.5"] } },
    {
      map: {
        family: "ip",
        name: "svcports",
        table: "trellis",
        type: ["ipv4_addr", "inet_service"],
        map: "inet_service",
        elem: [
          [{ concat: ["10.96.0.10", 80] }, 15100],
          [{ concat: ["10.96.0.11", 8080] }, 15101],
        ],
      },
    },
  ],
};

describe("programmed service ports", () => {
  it("reads VIP . port → listener port from the svcports map", () => {
    expect(parseProgrammedPorts(LISTING)).toEqual([
      { serviceIp: "10.96.0.10", port: 80, listenerPort: 15100 },
      { serviceIp: "10.96.0.11", port: 8080, listenerPort: 15101 },
    ]);
  });

  it("reads nothing from an absent table or an unexpected shape", () => {
    expect(parseProgrammedPorts(null)).toEqual([]);
    expect(
      parseProgrammedPorts({
        nftables: [
          {
            map: {
              name: "svcports",
              elem: [
                ["x", "y"],
                [{ concat: [1, 2] }, 3],
              ],
            },
          },
        ],
      }),
    ).toEqual([]);
  });
});
