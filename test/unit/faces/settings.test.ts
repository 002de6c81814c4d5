import { describe, expect, it } from "vitest";
import { COLORS, colorNameOf, SMILEYS, smileyNameOf } from "../../faces/lib/catalog.ts";
import { parseDelayBuckets, pickDelay } from "../../faces/lib/delay.ts";
import { parseErrorFraction, shouldFail } from "../../faces/lib/error-fraction.ts";
import { parseHostPort } from "../../faces/lib/host-port.ts";
import { readWorkloadConfig } from "../../faces/lib/workload-config.ts";

describe("DELAY_BUCKETS", () => {
  it("parses a comma list of milliseconds; unset or empty means no delay", () => {
    expect(parseDelayBuckets("0,5,10,15,20,50,200,500,1500")).toEqual([0, 5, 10, 15, 20, 50, 200, 500, 1500]);
    expect(parseDelayBuckets(" 100 ")).toEqual([100]);
    expect(parseDelayBuckets(undefined)).toEqual([0]);
    expect(parseDelayBuckets("")).toEqual([0]);
  });

  it("refuses what is not a non-negative number", () => {
    expect(() => parseDelayBuckets("10,abc")).toThrow(/DELAY_BUCKETS/);
    expect(() => parseDelayBuckets("10,,20")).toThrow(/DELAY_BUCKETS/);
    expect(() => parseDelayBuckets("-5")).toThrow(/DELAY_BUCKETS/);
  });

  it("picks every bucket with equal chance", () => {
    const buckets = [0, 200, 500, 1500];
    expect([0, 0.25, 0.5, 0.999].map((r) => pickDelay(buckets, () => r))).toEqual([0, 200, 500, 1500]);
  });
});

describe("ERROR_FRACTION", () => {
  it("is a percentage", () => {
    expect(parseErrorFraction("50")).toBe(50);
    expect(parseErrorFraction("12.5%")).toBe(12.5);
    expect(parseErrorFraction(undefined)).toBe(0);
    expect(() => parseErrorFraction("101")).toThrow(/ERROR_FRACTION/);
    expect(() => parseErrorFraction("half")).toThrow(/ERROR_FRACTION/);
  });

  it("never fails at 0 and always fails at 100", () => {
    expect(shouldFail(0, () => 0)).toBe(false);
    expect(shouldFail(100, () => 0.9999999)).toBe(true);
    expect(shouldFail(50, () => 0.49)).toBe(true);
    expect(shouldFail(50, () => 0.5)).toBe(false);
  });
});

describe("workload settings", () => {
  it("defaults to port 8000, metrics on 9090, POD_NAME as the pod", () => {
    const c = readWorkloadConfig({ POD_NAME: "smiley-abc" });
    expect(c).toMatchObject({
      host: "0.0.0.0",
      port: 8000,
      metricsPort: 9090,
      pod: "smiley-abc",
      errorFraction: 0,
    });
    expect(readWorkloadConfig({ PORT: "1234", METRICS_PORT: "0" })).toMatchObject({
      port: 1234,
      metricsPort: 0,
    });
    expect(() => readWorkloadConfig({ PORT: "http" })).toThrow(/PORT/);
  });

  it("parses service addresses", () => {
    expect(parseHostPort("smiley", 80)).toEqual({ host: "smiley", port: 80 });
    expect(parseHostPort("color:8000", 80)).toEqual({ host: "color", port: 8000 });
    expect(parseHostPort("[::1]:9", 80)).toEqual({ host: "::1", port: 9 });
  });
});

describe("catalog", () => {
  it("has the FACES.md smileys and palette, and names them back", () => {
    expect(SMILEYS).toEqual({
      Grinning: "&#x1F603;",
      HeartEyes: "&#x1F60D;",
      RollingEyes: "&#x1F644;",
      Sleeping: "&#x1F634;",
      Cursing: "&#x1F92C;",
    });
    expect(COLORS).toMatchObject({ blue: "#66CCEE", green: "#228833", darkblue: "#4477AA", grey: "#BBBBBB" });
    expect(smileyNameOf("&#x1f60d;")).toBe("HeartEyes");
    expect(colorNameOf("#4477aa")).toBe("darkblue");
    expect(smileyNameOf("&#x1F600;")).toBeUndefined();
  });
});
