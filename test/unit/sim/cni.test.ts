import { describe, expect, it } from "vitest";
import {
  addNetworkList,
  CniAddError,
  type CniConfList,
  CniPluginError,
  type CniResult,
  cachedConfList,
  cacheRecord,
  checkNetworkList,
  cniVersionAtLeast,
  defaultConfList,
  delNetworkList,
  type PluginInvocation,
  parseNetworkConfig,
  pluginEnv,
  pluginStdin,
  podCniArgs,
  podPortMappings,
  type RuntimeConf,
  resultIPs,
} from "../../cluster/sim/cni.ts";
import type { Pod } from "../../cluster/sim/k8s-types.ts";

const list: CniConfList = {
  cniVersion: "1.0.0",
  name: "trellis-box",
  plugins: [
    { type: "bridge", bridge: "cni0" },
    { type: "portmap", capabilities: { portMappings: true, bandwidth: false } },
    { type: "trellis-cni", capabilities: {} },
  ],
};

const rt: RuntimeConf = {
  containerId: "abc123",
  netns: "/run/netns/tbx-n1-0a1b2c3d",
  ifName: "eth0",
  args: [
    ["IgnoreUnknown", "1"],
    ["K8S_POD_NAME", "web"],
  ],
  capabilityArgs: {
    portMappings: [{ hostPort: 80, containerPort: 8080, protocol: "tcp" }],
    bandwidth: { x: 1 },
  },
};

function bridgeResult(): CniResult {
  return {
    cniVersion: "1.0.0",
    interfaces: [{ name: "cni0" }, { name: "veth1" }, { name: "eth0", sandbox: rt.netns }],
    ips: [{ interface: 2, address: "10.244.1.7/24", gateway: "10.244.1.1" }],
  };
}

/** Records invocations; plugins echo prevResult, bridge creates the first result. */
function recorder(failOn?: string) {
  const calls: {
    command: string;
    type: string;
    conf: Record<string, unknown>;
    env: Record<string, string>;
  }[] = [];
  const invoke = async (inv: PluginInvocation) => {
    const conf = JSON.parse(inv.stdin) as Record<string, unknown>;
    calls.push({ command: inv.command, type: inv.plugin.type, conf, env: inv.env });
    if (inv.plugin.type === failOn)
      throw new CniPluginError(inv.plugin.type, inv.command, 11, "agent not ready");
    if (inv.command !== "ADD") return undefined;
    if (inv.plugin.type === "bridge") return bridgeResult();
    return { ...(conf.prevResult as CniResult), touchedBy: inv.plugin.type };
  };
  return { calls, invoke };
}

describe("pluginStdin", () => {
  it("injects name, cniVersion, prevResult and only declared capabilities", () => {
    const conf = JSON.parse(pluginStdin(list, list.plugins[1]!, bridgeResult(), rt)) as Record<
      string,
      unknown
    >;
    expect(conf.name).toBe("trellis-box");
    expect(conf.cniVersion).toBe("1.0.0");
    expect(conf.type).toBe("portmap");
    expect(conf.prevResult).toEqual(bridgeResult());
    expect(conf.runtimeConfig).toEqual({ portMappings: rt.capabilityArgs.portMappings });
  });

  it("adds neither prevResult nor runtimeConfig when there is nothing to add", () => {
    const conf = JSON.parse(pluginStdin(list, list.plugins[0]!, undefined, rt)) as Record<string, unknown>;
    expect(conf).toEqual({ type: "bridge", bridge: "cni0", name: "trellis-box", cniVersion: "1.0.0" });
  });
});

describe("pluginEnv", () => {
  it("sets the CNI_* variables", () => {
    expect(pluginEnv("DEL", rt, "/a:/b")).toEqual({
      CNI_COMMAND: "DEL",
      CNI_CONTAINERID: "abc123",
      CNI_NETNS: "/run/netns/tbx-n1-0a1b2c3d",
      CNI_IFNAME: "eth0",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=web",
      CNI_PATH: "/a:/b",
    });
  });
});

describe("addNetworkList", () => {
  it("chains each result into the next plugin as prevResult and returns the last", async () => {
    const { calls, invoke } = recorder();
    const result = await addNetworkList(list, rt, "/p", invoke);
    expect(calls.map((c) => `${c.command} ${c.type}`)).toEqual([
      "ADD bridge",
      "ADD portmap",
      "ADD trellis-cni",
    ]);
    expect(calls[0]!.conf.prevResult).toBeUndefined();
    expect(calls[1]!.conf.prevResult).toEqual(bridgeResult());
    expect(calls[2]!.conf.prevResult).toEqual({ ...bridgeResult(), touchedBy: "portmap" });
    expect(result).toEqual({ ...bridgeResult(), touchedBy: "trellis-cni" });
  });

  it("reports how many plugins ran when one fails", async () => {
    const { invoke } = recorder("trellis-cni");
    const err = await addNetworkList(list, rt, "/p", invoke).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CniAddError);
    expect((err as CniAddError).invoked).toBe(3);
    expect((err as CniAddError).message).toContain('plugin type="trellis-cni" failed (add): agent not ready');
  });
});

describe("delNetworkList", () => {
  it("runs plugins in reverse order with the cached result as prevResult", async () => {
    const { calls, invoke } = recorder();
    await delNetworkList(list, rt, bridgeResult(), "/p", invoke);
    expect(calls.map((c) => `${c.command} ${c.type}`)).toEqual([
      "DEL trellis-cni",
      "DEL portmap",
      "DEL bridge",
    ]);
    for (const c of calls) expect(c.conf.prevResult).toEqual(bridgeResult());
    expect(calls[0]!.env.CNI_COMMAND).toBe("DEL");
  });

  it("omits prevResult without a cached result and for old versions", async () => {
    const a = recorder();
    await delNetworkList(list, rt, undefined, "/p", a.invoke);
    expect(a.calls.every((c) => !("prevResult" in c.conf))).toBe(true);
    const b = recorder();
    await delNetworkList({ ...list, cniVersion: "0.3.1" }, rt, bridgeResult(), "/p", b.invoke);
    expect(b.calls.every((c) => !("prevResult" in c.conf))).toBe(true);
  });

  it("stops at the first failing plugin, as libcni does", async () => {
    const { calls, invoke } = recorder("portmap");
    await expect(delNetworkList(list, rt, bridgeResult(), "/p", invoke)).rejects.toThrow(/portmap/);
    expect(calls.map((c) => c.type)).toEqual(["trellis-cni", "portmap"]);
  });
});

describe("checkNetworkList", () => {
  it("runs in order with the cached result", async () => {
    const { calls, invoke } = recorder();
    await checkNetworkList(list, rt, bridgeResult(), "/p", invoke);
    expect(calls.map((c) => `${c.command} ${c.type}`)).toEqual([
      "CHECK bridge",
      "CHECK portmap",
      "CHECK trellis-cni",
    ]);
    expect(calls.every((c) => JSON.stringify(c.conf.prevResult) === JSON.stringify(bridgeResult()))).toBe(
      true,
    );
  });

  it("is skipped with disableCheck and refused before 0.4.0", async () => {
    const { calls, invoke } = recorder();
    await checkNetworkList({ ...list, disableCheck: true }, rt, bridgeResult(), "/p", invoke);
    expect(calls).toHaveLength(0);
    await expect(
      checkNetworkList({ ...list, cniVersion: "0.3.1" }, rt, bridgeResult(), "/p", invoke),
    ).rejects.toThrow(/does not support the CHECK/);
  });
});

describe("configuration", () => {
  it("turns a single-plugin .conf into a list", () => {
    const l = parseNetworkConfig('{"cniVersion":"0.4.0","name":"n","type":"bridge"}', "10-x.conf");
    expect(l).toEqual({
      cniVersion: "0.4.0",
      name: "n",
      plugins: [{ cniVersion: "0.4.0", name: "n", type: "bridge" }],
    });
  });

  it("rejects a conflist without plugins", () => {
    expect(() => parseNetworkConfig('{"name":"n","plugins":[]}', "a.conflist")).toThrow();
  });

  it("compares versions", () => {
    expect(cniVersionAtLeast("1.0.0", "0.4.0")).toBe(true);
    expect(cniVersionAtLeast("0.3.1", "0.4.0")).toBe(false);
    expect(cniVersionAtLeast("0.4.0", "0.4.0")).toBe(true);
  });

  it("default network routes only the cluster's CIDRs (no default route)", () => {
    const l = defaultConfList({
      podCIDR: "10.244.1.0/24",
      podGateway: "10.244.1.1",
      clusterCIDR: "10.244.0.0/16",
      serviceCIDR: "10.96.0.0/16",
      underlayCIDR: "10.240.0.0/24",
      ipamDataDir: "/state/cni/ipam",
    });
    expect(l.cniVersion).toBe("1.0.0");
    expect(l.plugins.map((p) => p.type)).toEqual(["bridge", "portmap"]);
    const bridge = l.plugins[0]!;
    expect(bridge).toMatchObject({ bridge: "cni0", isGateway: true, ipMasq: false, hairpinMode: true });
    const ipam = bridge.ipam as { routes: { dst: string; gw: string }[]; ranges: unknown; dataDir: string };
    expect(ipam.routes).toEqual([
      { dst: "10.244.0.0/16", gw: "10.244.1.1" },
      { dst: "10.96.0.0/16", gw: "10.244.1.1" },
      { dst: "10.240.0.0/24", gw: "10.244.1.1" },
    ]);
    expect(JSON.stringify(l)).not.toContain("0.0.0.0/0");
    expect(bridge.isDefaultGateway).toBeUndefined();
    expect(ipam.dataDir).toBe("/state/cni/ipam");
    expect(l.plugins[1]!.capabilities).toEqual({ portMappings: true });
  });

  it("round-trips the cached configuration", () => {
    const rec = cacheRecord(list, rt, bridgeResult());
    expect(rec.kind).toBe("cniCacheV1");
    expect(cachedConfList(rec)).toEqual(list);
  });
});

describe("pod arguments", () => {
  const pod: Pod = {
    metadata: { name: "web", namespace: "shop", uid: "u-1", annotations: { a: "b" } },
    spec: {
      initContainers: [
        { name: "side", restartPolicy: "Always", ports: [{ containerPort: 9000, hostPort: 19000 }] },
      ],
      containers: [
        {
          name: "app",
          ports: [
            { containerPort: 8080, hostPort: 18080, protocol: "TCP" },
            { containerPort: 8081 },
            { containerPort: 53, hostPort: 5353, protocol: "UDP", hostIP: "10.240.0.11" },
          ],
        },
      ],
    },
  };

  it("passes CNI_ARGS like containerd", () => {
    expect(podCniArgs(pod, "sb1")).toEqual([
      ["IgnoreUnknown", "1"],
      ["K8S_POD_NAMESPACE", "shop"],
      ["K8S_POD_NAME", "web"],
      ["K8S_POD_INFRA_CONTAINER_ID", "sb1"],
      ["K8S_POD_UID", "u-1"],
    ]);
  });

  it("maps hostPorts of containers and sidecars", () => {
    expect(podPortMappings(pod)).toEqual([
      { hostPort: 19000, containerPort: 9000, protocol: "tcp" },
      { hostPort: 18080, containerPort: 8080, protocol: "tcp" },
      { hostPort: 5353, containerPort: 53, protocol: "udp", hostIP: "10.240.0.11" },
    ]);
  });

  it("reads the sandbox IPs from a result", () => {
    expect(resultIPs(bridgeResult())).toEqual(["10.244.1.7"]);
    expect(resultIPs({ ips: [{ address: "10.0.0.2/8" }] })).toEqual(["10.0.0.2"]);
  });
});
