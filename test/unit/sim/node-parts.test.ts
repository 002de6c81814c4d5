import { describe, expect, it } from "vitest";
import { Backoff } from "../../cluster/sim/backoff.ts";
import { parseNodeConfig } from "../../cluster/sim/config.ts";
import { microTime, rfc3339 } from "../../cluster/sim/k8s-time.ts";
import { isPodNetnsOf, podNetnsName } from "../../cluster/sim/netns.ts";
import { newNode, nodeConditions, withOurStatus } from "../../cluster/sim/node-registration.ts";
import { ProbeState, resolvePort } from "../../cluster/sim/probes.ts";
import { parseEnviron } from "../../cluster/sim/processes.ts";
import { safeVolumePath, tokenRefreshAt } from "../../cluster/sim/volumes.ts";

const cfgJson = {
  name: "n1",
  netns: "tbx-n1",
  underlayIP: "10.240.0.11",
  podCIDR: "10.244.1.0/24",
  podGateway: "10.244.1.1",
  clusterCIDR: "10.244.0.0/16",
  serviceCIDR: "10.96.0.0/16",
  underlayCIDR: "10.240.0.0/24",
  apiServer: "https://10.240.0.1:6443",
  kubeconfig: "/s/nodes/n1/kubeconfig",
  stateDir: "/s/nodes/n1",
  boxId: "b0x",
  clusterDomain: "cluster.local",
  kubernetesVersion: "v1.36.3",
  trellisRoot: "/work/main",
};

describe("config", () => {
  it("parses node.json and rejects bad values", () => {
    expect(parseNodeConfig(cfgJson).podCIDR).toBe("10.244.1.0/24");
    expect(() => parseNodeConfig({ ...cfgJson, podCIDR: "nope" })).toThrow(/podCIDR/);
    expect(() => parseNodeConfig({ ...cfgJson, boxId: "" })).toThrow(/boxId/);
  });
});

describe("node registration", () => {
  const cfg = parseNodeConfig(cfgJson);
  const t0 = new Date("2026-01-01T00:00:00Z");
  const t1 = new Date("2026-01-01T00:00:30Z");

  it("creates a Ready node with the expected identity", () => {
    const node = newNode(cfg, t0);
    expect(node.metadata.labels).toMatchObject({
      "kubernetes.io/hostname": "n1",
      "kubernetes.io/os": "linux",
      "kubernetes.io/arch": "amd64",
    });
    expect(node.spec).toEqual({ podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"] });
    expect(node.status?.addresses).toEqual([
      { type: "InternalIP", address: "10.240.0.11" },
      { type: "Hostname", address: "n1" },
    ]);
    expect(node.status?.capacity).toMatchObject({ cpu: "8", memory: "16Gi", pods: "110" });
    expect(node.status?.nodeInfo).toMatchObject({ kubeletVersion: "v1.36.3", kubeProxyVersion: "v1.36.3" });
    expect(node.status?.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual([
      "MemoryPressure=False",
      "DiskPressure=False",
      "PIDPressure=False",
      "Ready=True",
    ]);
  });

  it("refreshes heartbeats, keeps transition times and others' conditions", () => {
    const first = nodeConditions([], t0);
    const second = nodeConditions(first, t1);
    const ready = second.find((c) => c.type === "Ready");
    expect(ready?.lastHeartbeatTime).toBe("2026-01-01T00:00:30Z");
    expect(ready?.lastTransitionTime).toBe("2026-01-01T00:00:00Z");
    const notReady = nodeConditions([{ type: "Ready", status: "False", lastTransitionTime: "x" }], t1);
    expect(notReady.find((c) => c.type === "Ready")?.lastTransitionTime).toBe("2026-01-01T00:00:30Z");
    const merged = withOurStatus(
      cfg,
      { conditions: [{ type: "NetworkUnavailable", status: "False" }, ...first] },
      t1,
    );
    expect(merged.conditions?.map((c) => c.type)).toEqual([
      "NetworkUnavailable",
      "MemoryPressure",
      "DiskPressure",
      "PIDPressure",
      "Ready",
    ]);
  });
});

describe("small helpers", () => {
  it("formats Kubernetes times", () => {
    const d = new Date("2026-03-04T05:06:07.891Z");
    expect(rfc3339(d)).toBe("2026-03-04T05:06:07Z");
    expect(microTime(d)).toBe("2026-03-04T05:06:07.891000Z");
  });

  it("names pod namespaces so that node netns and other nodes do not match", () => {
    const name = podNetnsName("n1", "0a1b2c3d-4e5f-6789-abcd-ef0123456789");
    expect(name).toBe("tbx-n1-0a1b2c3d");
    expect(isPodNetnsOf("n1", name)).toBe(true);
    expect(isPodNetnsOf("n1", "tbx-n1")).toBe(false);
    expect(isPodNetnsOf("n1", "tbx-n1-a-0a1b2c3d")).toBe(false);
    expect(isPodNetnsOf("n2", name)).toBe(false);
  });

  it("backs off exponentially with a cap and resets after a long run", () => {
    const b = new Backoff({ initialMs: 1000, maxMs: 5000, resetAfterMs: 60_000 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([1000, 2000, 4000, 5000, 5000]);
    b.ranFor(1000);
    expect(b.next()).toBe(5000);
    b.ranFor(60_000);
    expect(b.next()).toBe(1000);
  });

  it("refreshes tokens at 80 % of their lifetime, at most daily", () => {
    const exp = new Date("2026-01-01T01:00:00Z");
    expect(tokenRefreshAt(exp, 3600).toISOString()).toBe("2026-01-01T00:48:00.000Z");
    const yearLong = new Date(Date.UTC(2027, 0, 1));
    const issued = yearLong.getTime() - 365 * 86400_000;
    expect(tokenRefreshAt(yearLong, 365 * 86400).getTime()).toBe(issued + 86400_000);
  });

  it("keeps volume paths inside the volume", () => {
    expect(safeVolumePath("a/b")).toBe("a/b");
    expect(() => safeVolumePath("../etc/passwd")).toThrow();
    expect(() => safeVolumePath("/abs")).toThrow();
    expect(() => safeVolumePath("a/../../b")).toThrow();
  });

  it("applies probe thresholds", () => {
    const r = new ProbeState("readiness", { successThreshold: 2, failureThreshold: 2 });
    expect(r.result).toBe(false);
    expect(r.record(true)).toBe(false);
    expect(r.record(true)).toBe(true);
    expect(r.record(false)).toBe(false);
    expect(r.result).toBe(true);
    expect(r.record(false)).toBe(true);
    expect(r.result).toBe(false);
    const l = new ProbeState("liveness", {});
    expect(l.result).toBe(true);
    l.record(false);
    l.record(false);
    expect(l.record(false)).toBe(true);
    expect(l.result).toBe(false);
  });

  it("resolves named ports", () => {
    expect(resolvePort("http", [{ name: "http", containerPort: 8080 }])).toBe(8080);
    expect(resolvePort(9090, [])).toBe(9090);
    expect(resolvePort("9091", [])).toBe(9091);
    expect(() => resolvePort("grpc", [])).toThrow();
  });

  it("parses /proc environ", () => {
    const env = parseEnviron(Buffer.from("A=1\0TRELLIS_POD_UID=u=x\0\0"));
    expect(env.get("A")).toBe("1");
    expect(env.get("TRELLIS_POD_UID")).toBe("u=x");
  });
});
