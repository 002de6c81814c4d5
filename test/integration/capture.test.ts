// Capture on the cluster-in-a-box, kube-proxy running: Trellis installed from
// source (controller pod, agent DaemonSet, CNI shim chained by its init
// container), pods calling Services from labelled and unlabelled namespaces,
// the agent taken away and restarted, and an uninstall that must leave no
// trace on the nodes.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl, paths } from "../cluster/box.ts";
import { nodeLayout } from "../cluster/layout.ts";
import { installTrellis, TRELLIS_NAMESPACE, uninstallTrellis } from "../cluster/trellis-install.ts";
import { echoWorkload } from "../support/echo-workload.ts";
import { eventually } from "../support/eventually.ts";

const suffix = randomBytes(3).toString("hex");
const meshed = `it-cap-${suffix}`;
const plain = `it-plain-${suffix}`;
const late = `it-late-${suffix}`;
const N1 = nodeLayout(1);
const N2 = nodeLayout(2);

const netexecPod = (namespace: string, name: string, node: string, labels = "") => `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: ${namespace}, labels: { app: ${name} ${labels} } }
spec:
  nodeName: ${node}
  terminationGracePeriodSeconds: 1
  containers:
  - name: netexec
    image: trellis.local/netexec
    env: [{ name: PORT, value: "8080" }]
    readinessProbe: { httpGet: { path: /healthz, port: 8080 }, periodSeconds: 1 }
`;

const manifests = `
apiVersion: v1
kind: Namespace
metadata: { name: ${meshed}, labels: { trellis.dev/capture: enabled } }
---
apiVersion: v1
kind: Namespace
metadata: { name: ${plain} }
---
apiVersion: v1
kind: Namespace
metadata: { name: ${late} }
---${echoWorkload(meshed, "echo")}---${echoWorkload(meshed, "echo2")}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: echo-to-echo2, namespace: ${meshed} }
spec:
  parentRefs: [{ group: "", kind: Service, name: echo, port: 80 }]
  rules: [{ backendRefs: [{ name: echo2, port: 80 }] }]
---${netexecPod(meshed, "client", N1.name)}---${netexecPod(meshed, "optout", N1.name, ", trellis.dev/capture: disabled")}---${netexecPod(plain, "client", N1.name)}---${netexecPod(late, "client", N2.name)}`;

interface Dial {
  status: number;
  headers?: Record<string, string>;
  error?: string;
}

function podIP(namespace: string, name: string): string {
  const ip = kubectl(["-n", namespace, "get", "pod", name, "-o", "jsonpath={.status.podIP}"]).trim();
  if (!ip) throw new Error(`${namespace}/${name} has no IP yet`);
  return ip;
}

/** Requests from inside a pod (one new connection each). */
async function dial(namespace: string, pod: string, url: string, count = 10): Promise<Dial[]> {
  const res = await fetch(
    `http://${podIP(namespace, pod)}:8080/dial?count=${count}&url=${encodeURIComponent(url)}`,
    {
      signal: AbortSignal.timeout(30_000),
    },
  );
  return (await res.json()) as Dial[];
}

/** Which echo pods answered and whether the mesh stamped the route. */
async function servedBy(
  namespace: string,
  pod: string,
  url: string,
): Promise<{ pods: Set<string>; routed: boolean }> {
  const results = await dial(namespace, pod, url);
  const bad = results.filter((r) => r.status !== 200);
  if (bad.length) throw new Error(`failed dials: ${JSON.stringify(bad.slice(0, 2))}`);
  return {
    pods: new Set(results.map((r) => (r.headers?.["x-echo-pod"] ?? "").replace(/-[a-z0-9]+-[a-z0-9]+$/, ""))),
    routed: results.every((r) => r.headers?.["x-trellis-route"] === `${meshed}/echo-to-echo2#0`),
  };
}

const nftTable = (node: { netns: string }): string => {
  try {
    return execFileSync("ip", ["netns", "exec", node.netns, "nft", "list", "table", "ip", "trellis"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch {
    return "";
  }
};

const capturedSet = (node: { netns: string }): string[] => {
  const m = /elements = \{([^}]*)\}/.exec(nftTable(node).split("map svcports")[0] ?? "");
  return (m?.[1] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
};

const ready = (namespace: string, name: string) =>
  eventually(`${namespace}/${name} ready`, () => {
    const r = kubectl([
      "-n",
      namespace,
      "get",
      "pod",
      name,
      "-o",
      "jsonpath={.status.containerStatuses[0].ready}",
    ]);
    if (r !== "true") throw new Error(`ready=${r}`);
  });

const annotation = (namespace: string, name: string) =>
  kubectl([
    "-n",
    namespace,
    "get",
    "pod",
    name,
    "-o",
    "jsonpath={.metadata.annotations.trellis\\.dev/capture-status}",
  ]);

const agentMetric = async (node: { underlayIP: string }, name: string): Promise<string> => {
  const text = await (await fetch(`http://${node.underlayIP}:15090/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name))
    .join("\n");
};

/** One CNI request on a node's agent socket, as the shim sends it. */
function cniRequest(node: string, body: unknown): Promise<{ status: number; body: string }> {
  const socketPath = join(paths().nodeDir(node), "run", "trellis", "cni.sock");
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: "/v1/cni", method: "POST" }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => {
        text += c.toString();
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const agentPodOn = (node: string): string =>
  kubectl([
    "-n",
    TRELLIS_NAMESPACE,
    "get",
    "pods",
    "-l",
    "app=trellis-agent",
    "--field-selector",
    `spec.nodeName=${node}`,
    "-o",
    "jsonpath={.items[*].metadata.name}",
  ]).trim();

describe("capture", () => {
  beforeAll(async () => {
    await installTrellis({ debugHeaders: true });
    kubectl(["apply", "-f", "-"], { input: manifests });
    for (const [ns, pod] of [
      [meshed, "client"],
      [meshed, "optout"],
      [plain, "client"],
      [late, "client"],
    ] as const)
      await ready(ns, pod);
  });

  afterAll(async () => {
    kubectl(["delete", "namespace", meshed, plain, late, "--ignore-not-found", "--wait=false"]);
    await uninstallTrellis().catch(() => {});
  });

  it("routes a labelled namespace's pod by the HTTPRoute, counts it in the agent, and marks the pod enabled", async () => {
    const seen = await eventually(
      "route applied to the captured client",
      async () => {
        const r = await servedBy(meshed, "client", "http://echo/");
        if (!r.routed || r.pods.size !== 1 || !r.pods.has("echo2"))
          throw new Error(JSON.stringify([...r.pods]));
        return r;
      },
      { timeoutMs: 30_000 },
    );
    expect([...seen.pods]).toEqual(["echo2"]);
    expect(await agentMetric(N1, "trellis_requests_total")).toMatch(
      new RegExp(
        `source_namespace="${meshed}",destination_service="${meshed}/echo:80",route="${meshed}/echo-to-echo2"`,
      ),
    );
    await eventually("capture-status enabled", () => {
      if (annotation(meshed, "client") !== "enabled") throw new Error(annotation(meshed, "client"));
    });
  });

  it("leaves an unlabelled namespace's pod and an opt-out pod to kube-proxy: the route does not apply", async () => {
    for (const [ns, pod] of [
      [plain, "client"],
      [meshed, "optout"],
    ] as const) {
      const r = await servedBy(ns, pod, `http://echo.${meshed}/`);
      expect(r.routed, `${ns}/${pod} went through the mesh`).toBe(false);
      expect([...r.pods]).toEqual(["echo"]);
      expect(capturedSet(N1)).not.toContain(podIP(ns, pod));
    }
    expect(annotation(meshed, "optout")).toBe("");
  });

  it("captures a running namespace's pods within seconds of labelling it, and releases them when unlabelled", async () => {
    const url = `http://echo.${meshed}/`;
    expect((await servedBy(late, "client", url)).routed).toBe(false);
    kubectl(["label", "namespace", late, "trellis.dev/capture=enabled"]);
    const t0 = Date.now();
    await eventually("late client captured", async () => {
      if (!(await servedBy(late, "client", url)).routed) throw new Error("not routed yet");
    });
    const captureMs = Date.now() - t0;
    console.log(`capture: namespace label → first routed request ${captureMs} ms`);
    expect(captureMs).toBeLessThan(10_000);
    expect(capturedSet(N2)).toContain(podIP(late, "client"));
    kubectl(["label", "namespace", late, "trellis.dev/capture-"]);
    await eventually("late client released", async () => {
      if ((await servedBy(late, "client", url)).routed) throw new Error("still routed");
    });
    expect(capturedSet(N2)).not.toContain(podIP(late, "client"));
  });

  it("holds a captured pod created while its node's agent is down until the agent is back; other pods start", async () => {
    // Keep the agent off n2 by node affinity, as a drain of the DaemonSet would.
    const avoidN2 = JSON.stringify({
      spec: {
        template: {
          spec: {
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [
                    { matchFields: [{ key: "metadata.name", operator: "NotIn", values: [N2.name] }] },
                  ],
                },
              },
            },
          },
        },
      },
    });
    const patchAgents = (patch: string) =>
      kubectl([
        "-n",
        TRELLIS_NAMESPACE,
        "patch",
        "daemonset",
        "trellis-agent",
        "--type",
        "merge",
        "-p",
        patch,
      ]);
    patchAgents(avoidN2);
    await eventually("no agent on n2", () => {
      if (agentPodOn(N2.name) !== "") throw new Error("agent still on n2");
    });
    kubectl(["apply", "-f", "-"], {
      input: `${netexecPod(meshed, "waiter", N2.name)}---${netexecPod(plain, "starter", N2.name)}`,
    });
    await ready(plain, "starter");
    const phase = kubectl([
      "-n",
      meshed,
      "get",
      "pod",
      "waiter",
      "-o",
      "jsonpath={.status.containerStatuses[0].ready}",
    ]);
    expect(phase).not.toBe("true");
    expect(kubectl(["-n", meshed, "get", "pod", "waiter", "-o", "jsonpath={.status.podIP}"])).toBe("");
    patchAgents(JSON.stringify({ spec: { template: { spec: { affinity: null } } } }));
    await eventually("waiter ready once the agent is back", () => ready(meshed, "waiter"), {
      timeoutMs: 90_000,
    });
    expect(capturedSet(N2)).toContain(podIP(meshed, "waiter"));
    await eventually("waiter routed", async () => {
      if (!(await servedBy(meshed, "waiter", "http://echo/")).routed) throw new Error("not routed");
    });
  });

  it("restarts an agent: captured pods' new connections work again within seconds and the nft state is the same", async () => {
    const before = nftTable(N1);
    expect(before).toContain("10.96.");
    const old = agentPodOn(N1.name);
    kubectl(["-n", TRELLIS_NAMESPACE, "delete", "pod", old, "--wait=false"]);
    const t0 = Date.now();
    await eventually(
      "routed through the new agent",
      async () => {
        const now = agentPodOn(N1.name);
        if (now === old || now === "") throw new Error("old agent still there");
        if (!(await servedBy(meshed, "client", "http://echo/")).routed) throw new Error("not routed");
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const recoveredMs = Date.now() - t0;
    console.log(`capture: agent pod deleted → routed again through its replacement ${recoveredMs} ms`);
    expect(recoveredMs).toBeLessThan(30_000);
    expect(nftTable(N1)).toBe(before);
  });

  it("removes a deleted pod's address from the captured set (CNI DEL)", async () => {
    const ip = podIP(meshed, "waiter");
    expect(capturedSet(N2)).toContain(ip);
    kubectl(["-n", meshed, "delete", "pod", "waiter", "--wait=true"]);
    await eventually("address released", () => {
      if (capturedSet(N2).includes(ip)) throw new Error(`${ip} still captured`);
    });
  });

  it("refuses CNI requests whose fields would be nft syntax, and the node's table stays intact", async () => {
    const before = nftTable(N1);
    const evil = "x } ; flush ruleset ; add table ip evil { }";
    const r = await cniRequest(N1.name, {
      command: "ADD",
      containerId: evil,
      netns: "/proc/1/ns/net",
      ifName: "eth0",
      podNamespace: meshed,
      podName: evil,
      podUid: evil,
      ips: [`10.244.1.250 } ; flush ruleset ; {`],
    });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.body).toMatch(/not an IP address/);
    expect(nftTable(N1)).toBe(before);
    expect(
      execFileSync("ip", ["netns", "exec", N1.netns, "nft", "list", "tables"], { encoding: "utf8" }),
    ).not.toMatch(/evil/);
  });

  it("uninstall leaves no nft table, no shim binary and no conflist entry on any node", async () => {
    // Pods set up through the shim keep its binary until they are gone (their teardown runs it).
    kubectl(["delete", "namespace", meshed, plain, late, "--wait=true", "--timeout=120s"]);
    await uninstallTrellis();
    for (const node of [N1, N2]) {
      expect(nftTable(node)).toBe("");
      const dir = join(paths().nodeDir(node.name), "cni");
      expect(readdirSync(join(dir, "bin"))).not.toContain("trellis-cni");
      for (const f of readdirSync(join(dir, "net.d")))
        expect(readFileSync(join(dir, "net.d", f), "utf8")).not.toContain("trellis-cni");
    }
  });
});
