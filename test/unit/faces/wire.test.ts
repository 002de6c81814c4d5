// The hand-written protobuf codec against bytes produced by buf (a reference
// protobuf implementation) from test/faces/proto/color.proto:
//   buf convert color.proto --type ColorRequest --from req.json --to -#format=binpb
import { describe, expect, it } from "vitest";
import {
  decodeColorRequest,
  decodeColorResponse,
  encodeColorRequest,
  encodeColorResponse,
} from "../../faces/lib/color-messages.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("ColorRequest / ColorResponse wire format", () => {
  it("matches buf's encoding of ColorRequest {row: -1, column: 3}", () => {
    const golden = "08ffffffffffffffffff011003";
    expect(hex(encodeColorRequest({ row: -1, column: 3 }))).toBe(golden);
    expect(decodeColorRequest(Buffer.from(golden, "hex"))).toEqual({ row: -1, column: 3 });
  });

  it('matches buf\'s encoding of ColorResponse {color: "#66CCEE", rate: "1.5", errors: ["a", "", "é"]}', () => {
    const golden = "0a07233636434345451203312e351a01611a001a02c3a9";
    const message = { color: "#66CCEE", rate: "1.5", errors: ["a", "", "é"] };
    expect(hex(encodeColorResponse(message))).toBe(golden);
    expect(decodeColorResponse(Buffer.from(golden, "hex"))).toEqual(message);
  });

  it("writes nothing for default values and reads an empty message as defaults", () => {
    expect(encodeColorRequest({ row: 0, column: 0 }).length).toBe(0);
    expect(decodeColorRequest(Buffer.alloc(0))).toEqual({ row: 0, column: 0 });
    expect(decodeColorResponse(Buffer.alloc(0))).toEqual({ color: "", rate: "", errors: [] });
  });

  it("round-trips int32 extremes", () => {
    for (const row of [1, 127, 128, 300, 2 ** 31 - 1, -(2 ** 31), -2]) {
      expect(decodeColorRequest(encodeColorRequest({ row, column: row }))).toEqual({ row, column: row });
    }
  });

  it("skips unknown fields of every wire type", () => {
    const unknown = Buffer.from(
      [
        "2005", // field 4 varint 5
        "290102030405060708", // field 5 fixed64
        "32026869", // field 6 length-delimited "hi"
        "3d01020304", // field 7 fixed32
      ].join(""),
      "hex",
    );
    const known = encodeColorRequest({ row: 2, column: 3 });
    expect(decodeColorRequest(Buffer.concat([unknown, known]))).toEqual({ row: 2, column: 3 });
  });

  it("rejects truncated input", () => {
    expect(() => decodeColorResponse(Buffer.from("0a0523", "hex"))).toThrow(/length beyond/);
    expect(() => decodeColorRequest(Buffer.from("08ff", "hex"))).toThrow(/truncated/);
  });
});
