import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCniArgs, podArgs, readCniEnv } from "./cni-env.ts";

const BASE = {
  CNI_CONTAINERID: "c1",
  CNI_NETNS: "/var/run/netns/p",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
};

describe("CNI_ARGS", () => {
  it("reads the pod identity kubelet passes", () => {
    expect(
      podArgs(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1",
      ),
    ).toEqual({ podNamespace: "shop", podName: "web-0", podInfraContainerId: "abc", podUid: "u-1" });
  });

  it("keeps '=' inside values and skips malformed segments", () => {
    const a = parseCniArgs("A=b=c;;junk;=x;K8S_POD_NAME=p");
    expect([...a]).toEqual([
      ["A", "b=c"],
      ["K8S_POD_NAME", "p"],
    ]);
  });

  it("missing keys read as empty strings", () => {
    expect(podArgs("")).toEqual({ podNamespace: "", podName: "", podInfraContainerId: "", podUid: "" });
  });

  it("parses any list of well-formed pairs back to the same map (last one wins)", () => {
    const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,15}$/);
    const value = fc.string({ maxLength: 20 }).filter((s) => !s.includes(";"));
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value), { maxLength: 8 }), (pairs) => {
        const raw = pairs.map(([k, v]) => `${k}=${v}`).join(";");
        expect(parseCniArgs(raw)).toEqual(new Map(pairs));
      }),
    );
  });
});

describe("readCniEnv", () => {
  it("accepts ADD with the required variables", () => {
    const r = readCniEnv({ ...BASE, CNI_COMMAND: "ADD", CNI_ARGS: "K8S_POD_NAMESPACE=n;K8S_POD_NAME=p" });
    expect(r).toEqual({
      ok: true,
      env: {
        command: "ADD",
        containerId: "c1",
        netns: "/var/run/netns/p",
        ifName: "eth0",
        path: "/opt/cni/bin",
        pod: { podNamespace: "n", podName: "p", podInfraContainerId: "", podUid: "" },
      },
    });
  });

  it("names what is missing", () => {
    expect(readCniEnv({ CNI_COMMAND: "ADD", CNI_IFNAME: "eth0" })).toEqual({
      ok: false,
      msg: "CNI_CONTAINERID, CNI_NETNS required for ADD",
    });
  });

  it("DEL does not need a netns (the runtime may have removed it already)", () => {
    expect(readCniEnv({ CNI_COMMAND: "DEL", CNI_CONTAINERID: "c", CNI_IFNAME: "eth0" }).ok).toBe(true);
  });

  it("VERSION needs nothing else", () => {
    expect(readCniEnv({ CNI_COMMAND: "VERSION" }).ok).toBe(true);
  });

  it("rejects unknown and absent commands", () => {
    expect(readCniEnv({ ...BASE, CNI_COMMAND: "add" })).toEqual({
      ok: false,
      msg: 'unknown CNI_COMMAND "add"',
    });
    expect(readCniEnv(BASE)).toEqual({ ok: false, msg: "CNI_COMMAND is not set" });
  });
});
