import { describe, expect, it } from "vitest";
import { passThroughResult, versionResult } from "./cni-result.ts";
import { DEFAULT_SETTINGS, parseNetConf } from "./net-conf.ts";

const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.0.0", name: "k8s-pod-network", type: "trellis-cni", ...extra });

describe("parseNetConf", () => {
  it("fills in defaults", () => {
    expect(parseNetConf(conf())).toEqual({
      ok: true,
      conf: {
        cniVersion: "1.0.0",
        name: "k8s-pod-network",
        prevResult: undefined,
        settings: DEFAULT_SETTINGS,
      },
    });
    expect(DEFAULT_SETTINGS.socketPath).toBe("/var/run/trellis/cni.sock");
    expect(DEFAULT_SETTINGS.timeoutSeconds).toBe(30);
  });

  it("reads the plugin's keys", () => {
    const r = parseNetConf(
      conf({
        socketPath: "/s.sock",
        capturedNamespacesFile: "/c.json",
        timeoutSeconds: 5,
        uncapturedTimeoutSeconds: 0.5,
        logLevel: "debug",
        logFile: "/var/log/trellis-cni.log",
        prevResult: { ips: [] },
      }),
    );
    expect(r.ok && r.conf).toEqual({
      cniVersion: "1.0.0",
      name: "k8s-pod-network",
      prevResult: { ips: [] },
      settings: {
        socketPath: "/s.sock",
        capturedNamespacesFile: "/c.json",
        timeoutSeconds: 5,
        uncapturedTimeoutSeconds: 0.5,
        logLevel: "debug",
        logFile: "/var/log/trellis-cni.log",
      },
    });
  });

  it.each([
    ["{", 6, "not JSON"],
    ["[]", 6, "JSON object"],
    [JSON.stringify({ cniVersion: "0.2.0" }), 1, 'unsupported cniVersion "0.2.0"'],
    [JSON.stringify({}), 1, "unsupported cniVersion undefined"],
    [conf({ timeoutSeconds: 0 }), 7, "timeoutSeconds"],
    [conf({ timeoutSeconds: 1000 }), 7, "timeoutSeconds"],
    [conf({ timeoutSeconds: "30" }), 7, "timeoutSeconds"],
    [conf({ socketPath: "" }), 7, "socketPath"],
    [conf({ logLevel: "loud" }), 7, "logLevel"],
    [conf({ prevResult: [] }), 7, "prevResult must be an object"],
  ])("refuses %s with code %i", (text, code, msg) => {
    const r = parseNetConf(text);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe(code);
      expect(r.msg).toContain(msg);
    }
  });
});

describe("results", () => {
  it("VERSION echoes a supported requested version, else answers 1.0.0", () => {
    expect(versionResult("0.4.0")).toEqual({
      cniVersion: "0.4.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
    expect(versionResult("9.9.9").cniVersion).toBe("1.0.0");
  });

  it("pass-through keeps prevResult's key order and stamps the config's version", () => {
    const prev = { cniVersion: "0.4.0", interfaces: [], ips: [{ address: "10.0.0.2/24" }], dns: {} };
    expect(JSON.stringify(passThroughResult(prev, "1.0.0"))).toBe(
      '{"cniVersion":"1.0.0","interfaces":[],"ips":[{"address":"10.0.0.2/24"}],"dns":{}}',
    );
  });
});
