import { SocketAddress } from "node:net";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { podIps } from "./prev-result.ts";

describe("podIps", () => {
  it("strips the prefix length from IPv4 and IPv6 addresses", () => {
    const prev = {
      cniVersion: "1.0.0",
      interfaces: [{ name: "eth0", sandbox: "/var/run/netns/p" }],
      ips: [
        { address: "10.244.1.5/24", gateway: "10.244.1.1", interface: 0 },
        { address: "fd00:10:244:1::5/64", interface: 0 },
      ],
    };
    expect(podIps(prev)).toEqual({ ok: true, ips: ["10.244.1.5", "fd00:10:244:1::5"] });
  });

  it("writes IPv6 in canonical form and drops duplicates", () => {
    const prev = {
      ips: [{ address: "FD00:0:0:0::0005/64" }, { address: "fd00::5/128" }, { address: "10.0.0.1" }],
    };
    expect(podIps(prev)).toEqual({ ok: true, ips: ["fd00::5", "10.0.0.1"] });
  });

  it("0.3.x results (with a version field per IP) read the same", () => {
    expect(podIps({ ips: [{ version: "4", address: "10.1.2.3/16" }] })).toEqual({
      ok: true,
      ips: ["10.1.2.3"],
    });
  });

  it("no ips at all is an empty list, not an error", () => {
    expect(podIps({ cniVersion: "1.0.0" })).toEqual({ ok: true, ips: [] });
  });

  it.each([
    [{ ips: "10.0.0.1/24" }, "prevResult.ips must be an array"],
    [{ ips: [{}] }, "prevResult.ips[0].address must be a string"],
    [{ ips: [null] }, "prevResult.ips[0].address must be a string"],
    [
      { ips: [{ address: "10.0.0.1/24" }, { address: "banana/24" }] },
      'prevResult.ips[1].address "banana/24"',
    ],
    [{ ips: [{ address: "10.0.0.1/abc" }] }, 'prevResult.ips[0].address "10.0.0.1/abc"'],
  ])("refuses malformed %j", (prev, problem) => {
    const r = podIps(prev);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problem).toContain(problem);
  });

  it("any IPv4 or IPv6 CIDR yields its canonical address", () => {
    const addr = fc.oneof(
      fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.constant("ipv4" as const)),
      fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.constant("ipv6" as const)),
    );
    fc.assert(
      fc.property(addr, ([ip, len, family]) => {
        const r = podIps({ ips: [{ address: `${ip}/${len}` }] });
        expect(r).toEqual({ ok: true, ips: [new SocketAddress({ address: ip, family }).address] });
      }),
    );
  });
});
