// The cluster-in-a-box itself: real control plane, simulated nodes, real
// kube-proxy in nftables mode, real EndpointSlice controller, real CRD
// validation. Every later suite stands on these behaviours.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl } from "../cluster/box.ts";
import { listBoxNetns } from "../cluster/network.ts";
import { eventually } from "../support/eventually.ts";

const ns = `it-box-${randomBytes(3).toString("hex")}`;

interface PodInfo {
  name: string;
  uid: string;
  node: string;
  ip: string;
  ready: boolean;
}

function pods(selector: string): PodInfo[] {
  const list = JSON.parse(kubectl(["get", "pods", "-n", ns, "-l", selector, "-o", "json"])) as {
    items: Array<{
      metadata: { name: string; uid: string };
      spec: { nodeName?: string };
      status: { podIP?: string; conditions?: Array<{ type: string; status: string }> };
    }>;
  };
  return list.items.map((p) => ({
    name: p.metadata.name,
    uid: p.metadata.uid,
    node: p.spec.nodeName ?? "",
    ip: p.status.podIP ?? "",
    ready: p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
  }));
}

function processesOfPod(uid: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`, "latin1").split("\0").includes(`TRELLIS_POD_UID=${uid}`))
        found.push(Number(e));
    } catch {
      // process exited while scanning
    }
  }
  return found;
}

const manifests = `
apiVersion: v1
kind: Namespace
metadata: { name: ${ns} }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: echo, namespace: ${ns} }
spec:
  replicas: 2
  selector: { matchLabels: { app: echo } }
  template:
    metadata: { labels: { app: echo } }
    spec:
      topologySpreadConstraints:
      - { maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: { matchLabels: { app: echo } } }
      containers:
      - name: echo
        image: trellis.local/echo
        env: [{ name: PORT, value: "8080" }]
        ports: [{ name: http, containerPort: 8080 }]
        readinessProbe: { httpGet: { path: /healthz, port: 8080 }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: ${ns} }
spec:
  selector: { app: echo }
  ports: [{ name: http, port: 80, targetPort: http }]
---
apiVersion: v1
kind: Pod
metadata: { name: client, namespace: ${ns}, labels: { app: client } }
spec:
  containers:
  - name: netexec
    image: trellis.local/netexec
    env: [{ name: PORT, value: "8080" }]
    readinessProbe: { httpGet: { path: /healthz, port: 8080 }, periodSeconds: 1 }
`;

describe("cluster-in-a-box", () => {
  beforeAll(() => {
    kubectl(["apply", "-f", "-"], { input: manifests });
  });
  afterAll(() => {
    try {
      kubectl(["delete", "namespace", ns, "--ignore-not-found", "--wait=false"]);
    } catch {
      // the deletion test may have removed it already
    }
  });

  it("has Ready nodes and the Gateway API route kinds", () => {
    const nodes = kubectl(["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]).split(" ");
    expect(nodes.length).toBeGreaterThanOrEqual(2);
    const resources = kubectl(["api-resources", "--api-group=gateway.networking.k8s.io", "-o", "name"]);
    expect(resources).toContain("httproutes.gateway.networking.k8s.io");
    expect(resources).toContain("grpcroutes.gateway.networking.k8s.io");
  });

  it("runs a Deployment's replicas on both nodes and fills the EndpointSlice", async () => {
    const echo = await eventually("2 ready echo pods", () => {
      const p = pods("app=echo");
      if (p.length !== 2 || !p.every((x) => x.ready)) throw new Error(JSON.stringify(p));
      return p;
    });
    expect(new Set(echo.map((p) => p.node)).size).toBe(2);
    const slices = await eventually("slice with 2 ready endpoints", () => {
      const s = JSON.parse(
        kubectl(["get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=echo", "-o", "json"]),
      ) as { items: Array<{ endpoints?: Array<{ addresses: string[]; conditions?: { ready?: boolean } }> }> };
      const ready = s.items.flatMap((i) => i.endpoints ?? []).filter((e) => e.conditions?.ready);
      if (ready.length !== 2) throw new Error(`ready endpoints: ${ready.length}`);
      return ready.flatMap((e) => e.addresses);
    });
    expect(slices.sort()).toEqual(echo.map((p) => p.ip).sort());
  });

  it("routes GET http://echo/ from a third pod through kube-proxy to both replicas", async () => {
    const client = await eventually("client ready", () => {
      const c = pods("app=client")[0];
      if (!c?.ready) throw new Error("client not ready");
      return c;
    });
    const echoPods = new Set(pods("app=echo").map((p) => p.name));
    const seen = await eventually(
      "responses from both replicas",
      async () => {
        const res = await fetch(
          `http://${client.ip}:8080/dial?count=40&url=${encodeURIComponent("http://echo/")}`,
        );
        const results = (await res.json()) as Array<{
          status: number;
          headers?: Record<string, string>;
          error?: string;
        }>;
        const bad = results.filter((r) => r.status !== 200);
        if (bad.length) throw new Error(`failed dials: ${JSON.stringify(bad.slice(0, 3))}`);
        const from = new Set(results.map((r) => r.headers?.["x-echo-pod"] ?? ""));
        if (from.size < 2) throw new Error(`only reached ${[...from].join(",")}`);
        return from;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    expect(seen).toEqual(echoPods);
  });

  it("accepts an HTTPRoute with a Service parent and rejects an invalid duration by CRD validation", () => {
    const route = (name: string, timeout: string) => `
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ${name}, namespace: ${ns} }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 80 }]
  rules:
  - backendRefs: [{ name: echo, port: 80 }]
    timeouts: { request: ${timeout} }
`;
    expect(kubectl(["apply", "-f", "-"], { input: route("good", "300ms") })).toContain("created");
    expect(kubectl(["get", "httproute", "-n", ns, "good", "-o", "jsonpath={.spec.parentRefs[0].kind}"])).toBe(
      "Service",
    );
    let rejection = "";
    try {
      kubectl(["apply", "-f", "-"], { input: route("bad", "10xyz") });
    } catch (err) {
      rejection = String((err as { stderr?: string }).stderr ?? err);
    }
    expect(rejection).toMatch(/spec\.rules\[0\]\.timeouts\.request/);
    expect(() => kubectl(["get", "httproute", "-n", ns, "bad"])).toThrow();
  });

  it("deleting everything stops the pods' processes and removes their network namespaces", async () => {
    const all = pods("app in (echo,client)");
    expect(all.length).toBe(3);
    for (const p of all) expect(processesOfPod(p.uid).length).toBeGreaterThan(0);
    const netnsBefore = listBoxNetns().filter((n) => all.some((p) => n.endsWith(p.uid.slice(0, 8))));
    expect(netnsBefore.length).toBe(3);
    kubectl(["delete", "namespace", ns, "--wait=true", "--timeout=90s"]);
    await eventually("pod processes and netns gone", () => {
      const left = all.flatMap((p) => processesOfPod(p.uid));
      const netns = listBoxNetns().filter((n) => all.some((p) => n.endsWith(p.uid.slice(0, 8))));
      if (left.length || netns.length) throw new Error(`processes ${left} netns ${netns}`);
      return true;
    });
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toMatch(
      new RegExp(all[0]!.uid.slice(0, 8)),
    );
  });
});
