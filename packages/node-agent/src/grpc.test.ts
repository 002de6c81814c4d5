import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeGrpcMessage, encodeGrpcMessage, formatGrpcTimeout, parseGrpcTimeout } from "./grpc.ts";

describe("grpc-timeout", () => {
  it("parses every unit", () => {
    expect(parseGrpcTimeout("2H")).toBe(7_200_000);
    expect(parseGrpcTimeout("3M")).toBe(180_000);
    expect(parseGrpcTimeout("5S")).toBe(5_000);
    expect(parseGrpcTimeout("250m")).toBe(250);
    expect(parseGrpcTimeout("1500u")).toBeCloseTo(1.5);
    expect(parseGrpcTimeout("2000000n")).toBeCloseTo(2);
    expect(parseGrpcTimeout("0m")).toBe(0);
  });

  it("ignores malformed values", () => {
    for (const v of ["", "5", "m", "123456789m", "1.5S", "-1S", "5s", " 5S", "5S ", "5X"]) {
      expect(parseGrpcTimeout(v)).toBeUndefined();
    }
    expect(parseGrpcTimeout(undefined)).toBeUndefined();
  });

  it("round-trips through formatGrpcTimeout within a millisecond", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 99_999_999 }), (ms) => {
        const back = parseGrpcTimeout(formatGrpcTimeout(ms));
        expect(back).toBe(ms);
      }),
    );
  });

  it("always formats a header the parser accepts", () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e12, noNaN: true }), (ms) => {
        expect(parseGrpcTimeout(formatGrpcTimeout(ms))).toBeDefined();
      }),
    );
  });
});

describe("grpc-message encoding", () => {
  it("encodes per the gRPC spec, not like encodeURIComponent", () => {
    expect(encodeGrpcMessage("no route matched")).toBe("no route matched");
    expect(encodeGrpcMessage("50% done")).toBe("50%25 done");
    expect(encodeGrpcMessage("line\nbreak")).toBe("line%0Abreak");
    expect(encodeGrpcMessage("héllo")).toBe("h%C3%A9llo");
    expect(encodeGrpcMessage("a/b?c=d&e")).toBe("a/b?c=d&e");
  });

  it("output has only printable ASCII and decodes back", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        const enc = encodeGrpcMessage(s);
        expect(/^[\x20-\x7e]*$/.test(enc)).toBe(true);
        // Lone surrogates are not representable in UTF-8; compare on the well-formed string.
        expect(decodeGrpcMessage(enc)).toBe(Buffer.from(s, "utf8").toString("utf8"));
      }),
    );
  });

  it("leaves printable ASCII other than % untouched", () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[\x20-\x24\x26-\x7e]*$/), (s) => {
        expect(encodeGrpcMessage(s)).toBe(s);
      }),
    );
  });
});
