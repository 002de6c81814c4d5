import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  renderHosts,
  renderResolvConf,
  serviceClusterIPs,
  writeInPlace,
} from "../../cluster/sim/hosts-file.ts";
import type { Service } from "../../cluster/sim/k8s-types.ts";

const svc = (namespace: string, name: string, spec: Service["spec"]): Service => ({
  metadata: { namespace, name },
  spec,
});

describe("renderHosts", () => {
  const services = [
    svc("shop", "cart", { clusterIP: "10.96.0.20", clusterIPs: ["10.96.0.20"] }),
    svc("default", "kubernetes", { clusterIP: "10.96.0.1" }),
    svc("shop", "headless", { clusterIP: "None" }),
    svc("shop", "ext", { type: "ExternalName", clusterIP: "" }),
    svc("other", "cart", { clusterIP: "10.96.0.30" }),
  ];
  const hosts = renderHosts({
    namespace: "shop",
    hostname: "web-1",
    podIPs: ["10.244.1.5"],
    services,
    clusterDomain: "cluster.local",
    hostAliases: [{ ip: "10.240.0.1", hostnames: ["apiserver", "api"] }],
  });
  const lines = hosts.split("\n");

  it("has localhost and the pod's own name", () => {
    expect(lines).toContain("127.0.0.1\tlocalhost");
    expect(lines).toContain("10.244.1.5\tweb-1");
    expect(lines).toContain("10.240.0.1\tapiserver\tapi");
  });

  it("gives own-namespace services a short name, others only qualified names", () => {
    expect(lines).toContain("10.96.0.20\tcart cart.shop cart.shop.svc cart.shop.svc.cluster.local");
    expect(lines).toContain("10.96.0.30\tcart.other cart.other.svc cart.other.svc.cluster.local");
    expect(lines).toContain(
      "10.96.0.1\tkubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local",
    );
  });

  it("skips headless and ExternalName services", () => {
    expect(hosts).not.toContain("headless");
    expect(hosts).not.toContain("ext.shop");
  });

  it("is stable regardless of service order", () => {
    const again = renderHosts({
      namespace: "shop",
      hostname: "web-1",
      podIPs: ["10.244.1.5"],
      services: [...services].reverse(),
      clusterDomain: "cluster.local",
      hostAliases: [{ ip: "10.240.0.1", hostnames: ["apiserver", "api"] }],
    });
    expect(again).toBe(hosts);
  });

  it("writes the subdomain FQDN first", () => {
    const h = renderHosts({
      namespace: "ns",
      hostname: "db-0",
      subdomain: "db",
      podIPs: ["10.244.2.9"],
      services: [],
      clusterDomain: "cluster.local",
    });
    expect(h).toContain("10.244.2.9\tdb-0.db.ns.svc.cluster.local\tdb-0");
  });

  it("uses all cluster IPs of dual-stack services", () => {
    expect(
      serviceClusterIPs(svc("a", "b", { clusterIP: "10.96.0.9", clusterIPs: ["10.96.0.9", "fd00::9"] })),
    ).toEqual(["10.96.0.9", "fd00::9"]);
  });
});

describe("renderResolvConf", () => {
  it("points at the pod's loopback with the Kubernetes search list", () => {
    const r = renderResolvConf("shop", "cluster.local");
    expect(r).toContain("nameserver 127.0.0.1\n");
    expect(r).toContain("search shop.svc.cluster.local svc.cluster.local cluster.local\n");
  });
});

describe("writeInPlace", () => {
  it("keeps the inode and skips identical content", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tbxsim-hosts-"));
    try {
      const f = join(dir, "hosts");
      await writeFile(f, "a very long first version of the file\n");
      const ino = (await stat(f)).ino;
      expect(await writeInPlace(f, "short\n")).toBe(true);
      expect(await readFile(f, "utf8")).toBe("short\n");
      expect((await stat(f)).ino).toBe(ino);
      expect(await writeInPlace(f, "short\n")).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
