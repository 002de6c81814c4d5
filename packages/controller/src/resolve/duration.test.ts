import { describe, expect, it } from "vitest";
import { parseGatewayDuration } from "./duration.ts";

describe("parseGatewayDuration", () => {
  it.each([
    ["0s", 0],
    ["300ms", 300],
    ["1h2m3s4ms", 3_723_004],
    ["1m30s", 90_000],
    ["01h", 3_600_000],
    ["00060m", 3_600_000],
    ["1s1s", 2000],
    ["500ms1s", 1500],
    ["99999h", 99_999 * 3_600_000],
  ])("reads %s as %i ms", (text, ms) => {
    expect(parseGatewayDuration(text)).toEqual({ ok: true, ms });
  });

  it.each(["", "1", "1.5s", "-1s", "1d", "1us", "100000ms", "1h1m1s1ms1h", " 1s", "1S", "1 s"])(
    "rejects %j",
    (text) => {
      const result = parseGatewayDuration(text);
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.message).toContain("e.g. 300ms");
    },
  );
});
