import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CaptureInputError, nftScript } from "./nft-script.ts";

const redirect = { serviceIp: "10.96.0.10", port: 80, listenerPort: 15001 };

describe("nftScript", () => {
  it("replaces the table in one transaction and fills the set and map", () => {
    const s = nftScript({ capturedIps: ["10.244.1.7", "10.244.1.5"], servicePorts: [redirect] });
    expect(s.split("\n").slice(0, 2)).toEqual(["add table ip trellis", "delete table ip trellis"]);
    expect(s).toContain("set captured { type ipv4_addr; elements = { 10.244.1.5, 10.244.1.7 }; }");
    expect(s).toContain("elements = { 10.96.0.10 . 80 : 15001 };");
    expect(s).toContain("priority dstnat - 10;");
    // No IPv6 state: the ip6 table is removed, not created.
    expect(s).toContain("delete table ip6 trellis");
    expect(s).not.toContain("table ip6 trellis {");
  });

  it("prints the same script for the same state in any order (restart reconciles to equal state)", () => {
    const a = nftScript({
      capturedIps: ["10.244.1.9", "10.244.1.5"],
      servicePorts: [redirect, { serviceIp: "10.96.0.11", port: 8080, listenerPort: 15002 }],
    });
    const b = nftScript({
      capturedIps: ["10.244.1.5", "10.244.1.9", "10.244.1.5"],
      servicePorts: [{ serviceIp: "10.96.0.11", port: 8080, listenerPort: 15002 }, redirect],
    });
    expect(a).toBe(b);
  });

  it("programs IPv6 pods and services in an ip6 table", () => {
    const s = nftScript({
      capturedIps: ["fd00::5"],
      servicePorts: [{ serviceIp: "fd00:96::a", port: 80, listenerPort: 15001 }],
    });
    expect(s).toContain("table ip6 trellis {");
    expect(s).toContain("elements = { fd00:0:0:0:0:0:0:5 }");
    expect(s).toContain(
      "ip6 saddr @captured meta l4proto tcp redirect to : ip6 daddr . tcp dport map @svcports",
    );
  });

  it("refuses anything that is not an address or port, so no input can add nft statements", () => {
    for (const bad of ["10.0.0.1 }; flush ruleset; {", "10.0.0.1\nflush ruleset", "fe80::1%eth0", "", "*"]) {
      expect(() => nftScript({ capturedIps: [bad], servicePorts: [] })).toThrow(CaptureInputError);
      expect(() => nftScript({ capturedIps: [], servicePorts: [{ ...redirect, serviceIp: bad }] })).toThrow(
        CaptureInputError,
      );
    }
    expect(() => nftScript({ capturedIps: [], servicePorts: [{ ...redirect, port: 0 }] })).toThrow(
      CaptureInputError,
    );
    expect(() =>
      nftScript({ capturedIps: [], servicePorts: [{ ...redirect, listenerPort: 70000 }] }),
    ).toThrow(CaptureInputError);
  });

  it("never lets an input string reach the script unless it is an address (property)", () => {
    const allowed = /^[0-9a-f.:]+$/;
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.ipV4(), fc.ipV6()), { maxLength: 6 }), (inputs) => {
        let script: string;
        try {
          script = nftScript({ capturedIps: inputs, servicePorts: [] });
        } catch (err) {
          expect(err).toBeInstanceOf(CaptureInputError);
          return;
        }
        for (const m of script.matchAll(/elements = \{ ([^}]*) \}/g))
          for (const e of (m[1] ?? "").split(", ")) expect(e).toMatch(allowed);
        expect(script.split("\n").filter((l) => l.includes("flush")).length).toBe(0);
      }),
    );
  });
});
