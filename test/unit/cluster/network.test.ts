import { describe, expect, it } from "vitest";
import { UNREACHABLE_CIDRS } from "../../cluster/layout.ts";
import { cidrContains } from "../../cluster/network.ts";

describe("cluster-in-a-box addressing", () => {
  it("cidrContains honours the prefix length", () => {
    expect(cidrContains("10.240.0.0/16", "10.240.255.1")).toBe(true);
    expect(cidrContains("10.240.0.0/16", "10.241.0.1")).toBe(false);
    expect(cidrContains("0.0.0.0/0", "192.0.2.1")).toBe(true);
    expect(cidrContains("10.96.0.1/32", "10.96.0.1")).toBe(true);
  });

  it("never blackholes the machine's DNS server range (10.255.255.53 here)", () => {
    // A /12 once covered it and broke every registry lookup while the box was up.
    expect(UNREACHABLE_CIDRS.some((c) => cidrContains(c, "10.255.255.53"))).toBe(false);
  });
});
