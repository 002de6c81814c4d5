// charts/trellis rendered by the real helm (built by the bootstrap into .tools/bin):
// `helm lint`, `helm template` with default and non-default values, and what the
// rendered objects must say (RBAC verbs, the agent's privileges, probes, hooks).
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1DaemonSet,
  V1Deployment,
  V1Job,
  V1Pod,
  V1PodDisruptionBudget,
  V1PolicyRule,
  V1Role,
  V1Service,
} from "@kubernetes/client-node";
import { afterAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { TRELLIS_ROOT } from "../../cluster/layout.ts";

const CHART = join(TRELLIS_ROOT, "charts/trellis");
const HELM = join(TRELLIS_ROOT, ".tools/bin/helm");
const haveHelm = existsSync(HELM);
if (!haveHelm) console.warn(`chart tests skipped: ${HELM} is missing (run scripts/bootstrap.sh)`);

type Obj = {
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
};

function template(args: string[] = [], chart = CHART): Obj[] {
  const out = execFileSync(HELM, ["template", "trellis", chart, "-n", "trellis-system", ...args], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  return parseAllDocuments(out)
    .map((d) => d.toJSON() as Obj | null)
    .filter((o): o is Obj => o !== null);
}

function find<T>(objs: Obj[], kind: string, name: string): T {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not rendered`);
  return o as unknown as T;
}

/** "group resource: verbs" per rule, sorted, for exact comparison. */
function ruleLines(rules: V1PolicyRule[]) {
  return rules
    .flatMap((r) =>
      (r.apiGroups ?? []).flatMap((g) =>
        (r.resources ?? []).map(
          (res) =>
            `${g || "core"} ${res}${r.resourceNames ? `(${r.resourceNames.join(",")})` : ""}: ${[...r.verbs].sort().join(",")}`,
        ),
      ),
    )
    .sort();
}

const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!haveHelm)("charts/trellis", () => {
  it("passes helm lint --strict with default and non-default values", () => {
    for (const extra of [[], ["--set", "agent.debugHeaders=true,cleanupOnUninstall.enabled=false"]]) {
      const r = spawnSync(HELM, ["lint", "--strict", CHART, "-n", "trellis-system", ...extra], {
        encoding: "utf8",
      });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain("0 chart(s) failed");
    }
  });

  const objs = haveHelm ? template() : [];

  it("renders the expected objects", () => {
    const names = objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
    expect(names).toEqual(
      [
        "ClusterRole/trellis-cleanup",
        "ClusterRole/trellis-controller",
        "ClusterRoleBinding/trellis-cleanup",
        "ClusterRoleBinding/trellis-controller",
        "ConfigMap/trellis-cleanup",
        "DaemonSet/trellis-agent",
        "Deployment/trellis-controller",
        "Job/trellis-cleanup",
        "PodDisruptionBudget/trellis-controller",
        "Role/trellis-cleanup",
        "Role/trellis-controller",
        "RoleBinding/trellis-cleanup",
        "RoleBinding/trellis-controller",
        "Service/trellis-controller",
        "ServiceAccount/trellis-agent",
        "ServiceAccount/trellis-cleanup",
        "ServiceAccount/trellis-controller",
      ].sort(),
    );
    for (const o of objs)
      if (!o.kind.startsWith("Cluster")) expect(o.metadata.namespace).toBe("trellis-system");
  });

  it("gives the controller only the verbs its code uses", () => {
    expect(ruleLines(find<V1Role>(objs, "ClusterRole", "trellis-controller").rules ?? [])).toEqual(
      [
        "core namespaces: get,list,watch",
        "core services: get,list,watch",
        "core pods: get,list,watch",
        "core nodes: get,list,watch",
        "core pods: patch",
        "core events: create,patch",
        "discovery.k8s.io endpointslices: list,watch",
        "gateway.networking.k8s.io httproutes: list,watch",
        "gateway.networking.k8s.io grpcroutes: list,watch",
        "gateway.networking.k8s.io referencegrants: list,watch",
        "gateway.networking.k8s.io httproutes/status: patch,update",
        "gateway.networking.k8s.io grpcroutes/status: patch,update",
        "trellis.dev canaries: get,list,watch",
        "trellis.dev canaries/status: patch,update",
        "authentication.k8s.io tokenreviews: create",
      ].sort(),
    );
    expect(ruleLines(find<V1Role>(objs, "Role", "trellis-controller").rules ?? [])).toEqual(
      [
        "coordination.k8s.io leases: create,get,update",
        "core secrets: create,get",
        "core configmaps: create,get,update",
      ].sort(),
    );
    // The agent has no RBAC at all; the uninstall hook only what it deletes.
    const bindings = objs.filter((o) => o.kind.endsWith("Binding")) as unknown as V1ClusterRoleBinding[];
    const subjects = bindings.flatMap((b) => (b.subjects ?? []).map((x) => x.name));
    expect(subjects).not.toContain("trellis-agent");
    expect(ruleLines(find<V1Role>(objs, "Role", "trellis-cleanup").rules ?? [])).toEqual(
      [
        "apps daemonsets(trellis-agent): delete,get",
        "apps deployments(trellis-controller): delete,get",
        "core pods: create,delete,get,list,watch",
        "core secrets(trellis-ca): delete",
        "core configmaps(trellis-ca-bundle): delete",
        "coordination.k8s.io leases(trellis-controller): delete",
      ].sort(),
    );
  });

  it("runs the agent in the host network with NET_ADMIN, not privileged, on every node", () => {
    const ds = find<V1DaemonSet>(objs, "DaemonSet", "trellis-agent").spec!;
    const pod = ds.template.spec!;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.serviceAccountName).toBe("trellis-agent");
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.tolerations).toEqual([{ operator: "Exists" }]);
    // Surge roll: the new agent is Ready beside the old one before the old one stops.
    expect(ds.updateStrategy).toEqual({
      type: "RollingUpdate",
      rollingUpdate: { maxSurge: 1, maxUnavailable: 0 },
    });
    expect(pod.terminationGracePeriodSeconds).toBe(15);
    const agent = pod.containers[0]!;
    expect(agent.image).toBe("trellis.local/agent:0.1.0");
    expect(agent.securityContext?.privileged).toBeUndefined();
    expect(agent.securityContext?.capabilities).toEqual({ drop: ["ALL"], add: ["NET_ADMIN"] });
    expect(agent.args).toContain("--capture");
    expect(agent.args).toContain("--server-name=trellis-controller.trellis-system.svc");
    expect(agent.args).not.toContain("--debug-headers");
    expect(agent.args).toEqual(
      expect.arrayContaining(["--drain-ms=10000", "--ready-file=/run/trellis-agent/ready", "--workers=1"]),
    );
    // Both agents of a roll share the node's ports: no host port (it would block the surge pod),
    // and readiness from a pod-private file rather than the shared admin port.
    expect(agent.ports).toBeUndefined();
    expect(agent.readinessProbe?.exec?.command).toEqual(["test", "-e", "/run/trellis-agent/ready"]);
    expect((agent.volumeMounts ?? []).map((m) => m.mountPath).sort()).toEqual(
      [
        "/run/trellis-agent",
        "/var/lib/trellis",
        "/var/run/secrets/trellis",
        "/var/run/trellis",
        "/var/run/trellis/ca",
      ].sort(),
    );
    expect(pod.volumes?.find((v) => v.name === "pod-run")?.emptyDir).toBeDefined();
    const vol = (name: string) => pod.volumes?.find((v) => v.name === name);
    expect(vol("ca")?.configMap?.name).toBe("trellis-ca-bundle");
    expect(vol("token")?.projected?.sources?.[0]?.serviceAccountToken?.audience).toBe("trellis");
    expect(vol("run")?.hostPath?.path).toBe("/var/run/trellis");
    expect(vol("state")?.hostPath?.path).toBe("/var/lib/trellis");
    expect(vol("cni-bin")?.hostPath?.path).toBe("/opt/cni/bin");
    expect(vol("cni-net")?.hostPath?.path).toBe("/etc/cni/net.d");
    const init = pod.initContainers![0]!;
    expect(init.name).toBe("install-cni");
    expect(init.image).toBe("trellis.local/cni:0.1.0");
    expect(init.args).toEqual([
      "install",
      "--cni-bin-dir",
      "/host/opt/cni/bin",
      "--cni-net-dir",
      "/host/etc/cni/net.d",
    ]);
    const env = Object.fromEntries((agent.env ?? []).map((e) => [e.name, e.value]));
    expect(env.TRELLIS_CONTROLLER_ADDRESS).toBe(
      "$(TRELLIS_CONTROLLER_SERVICE_HOST):$(TRELLIS_CONTROLLER_SERVICE_PORT_GRPC_AGENTS)",
    );
    expect(ds.template.metadata?.annotations).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "15090",
    });
  });

  it("runs two controller replicas with leader election, a PDB and readiness on /readyz", () => {
    const d = find<V1Deployment>(objs, "Deployment", "trellis-controller").spec!;
    expect(d.replicas).toBe(2);
    const c = d.template.spec!.containers[0]!;
    expect(c.image).toBe("trellis.local/controller:0.1.0");
    expect(c.args).toEqual(
      expect.arrayContaining([
        "--lease-name=trellis-controller",
        "--lease-duration=15",
        "--agent-service-accounts=trellis-system/trellis-agent",
        "--listener-ports=15100-15999",
        "--log-level=info",
      ]),
    );
    expect((c.env ?? []).map((e) => e.name)).toEqual(["POD_NAMESPACE", "POD_NAME"]);
    expect(c.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "http-admin" });
    expect(c.ports).toEqual([
      { name: "grpc-agents", containerPort: 9443 },
      { name: "http-admin", containerPort: 9090 },
    ]);
    expect(d.template.spec!.securityContext?.runAsNonRoot).toBe(true);
    expect(c.securityContext?.capabilities).toEqual({ drop: ["ALL"] });
    expect(d.template.metadata?.annotations).toMatchObject({
      "prometheus.io/scrape": "true",
      "prometheus.io/port": "9090",
      "prometheus.io/path": "/metrics",
    });
    expect(
      find<V1PodDisruptionBudget>(objs, "PodDisruptionBudget", "trellis-controller").spec?.minAvailable,
    ).toBe(1);
    const svc = find<V1Service>(objs, "Service", "trellis-controller").spec!;
    expect((svc.ports ?? []).map((p) => `${p.name}:${p.port}`)).toEqual([
      "grpc-agents:9443",
      "http-admin:9090",
    ]);
  });

  it("cleans node state in a pre-delete hook: one pod per node with the chart's images", () => {
    const job = find<V1Job>(objs, "Job", "trellis-cleanup");
    expect(job.metadata?.annotations?.["helm.sh/hook"]).toBe("pre-delete");
    for (const o of objs.filter((x) => x.metadata.name === "trellis-cleanup"))
      expect(o.metadata.annotations?.["helm.sh/hook"], o.kind).toBe("pre-delete");
    const cm = find<V1ConfigMap>(objs, "ConfigMap", "trellis-cleanup");
    const pod = (parse(cm.data?.["pod.yaml"] ?? "") as V1Pod).spec!;
    expect(pod.nodeName).toBe("__NODE__");
    expect(pod.hostNetwork).toBe(true);
    expect(pod.initContainers?.[0]?.image).toBe("trellis.local/cni:0.1.0");
    expect(pod.initContainers?.[0]?.args?.[0]).toBe("uninstall");
    expect(pod.containers[0]?.image).toBe("trellis.local/agent:0.1.0");
    expect(pod.containers[0]?.args).toEqual(["cleanup"]);
    const sh = spawnSync("sh", ["-n"], { input: cm.data?.["cleanup.sh"] ?? "", encoding: "utf8" });
    expect(sh.status, sh.stderr).toBe(0);
  });

  it("applies non-default values", () => {
    const o = template([
      "--set",
      [
        "controller.replicas=3",
        "controller.logLevel=debug",
        "controller.podDisruptionBudget.enabled=false",
        "agent.debugHeaders=true",
        "agent.workers=2",
        "agent.capture=false",
        "agent.listenerPorts=20000-20099",
        "agent.controllerAddress=10.0.0.1:9443",
        "agent.image.pullPolicy=Never",
        "agent.tolerations=null",
        "global.imageTag=dev",
        "cni.image.tag=cni-1",
        "cni.binDir=/usr/libexec/cni",
        "cleanupOnUninstall.enabled=false",
        "metrics.annotations=false",
      ].join(","),
    ]);
    expect(o.some((x) => x.kind === "PodDisruptionBudget" || x.kind === "Job")).toBe(false);
    const d = find<V1Deployment>(o, "Deployment", "trellis-controller").spec!;
    expect(d.replicas).toBe(3);
    expect(d.template.spec!.containers[0]!.args).toEqual(
      expect.arrayContaining(["--log-level=debug", "--listener-ports=20000-20099"]),
    );
    expect(d.template.spec!.containers[0]!.image).toBe("trellis.local/controller:dev");
    expect(d.template.metadata?.annotations ?? {}).toEqual({});
    const pod = find<V1DaemonSet>(o, "DaemonSet", "trellis-agent").spec!.template.spec!;
    const agent = pod.containers[0]!;
    expect(agent.args).toContain("--debug-headers");
    expect(agent.args).toContain("--workers=2");
    expect(agent.args).not.toContain("--capture");
    expect(agent.imagePullPolicy).toBe("Never");
    expect(agent.image).toBe("trellis.local/agent:dev");
    expect(pod.initContainers?.[0]?.image).toBe("trellis.local/cni:cni-1");
    expect(pod.tolerations).toBeUndefined();
    expect(pod.volumes?.find((v) => v.name === "cni-bin")?.hostPath?.path).toBe("/usr/libexec/cni");
    expect(agent.env?.find((e) => e.name === "TRELLIS_CONTROLLER_ADDRESS")?.value).toBe("10.0.0.1:9443");
  });

  it("takes the agents' drain and roll settings, and refuses a drain as long as the grace period", () => {
    const o = template([
      "--set",
      "agent.drainMs=25000,agent.terminationGracePeriodSeconds=30,agent.updateStrategy.maxSurge=0,agent.updateStrategy.maxUnavailable=1",
    ]);
    const ds = find<V1DaemonSet>(o, "DaemonSet", "trellis-agent").spec!;
    expect(ds.updateStrategy?.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: 1 });
    expect(ds.template.spec?.terminationGracePeriodSeconds).toBe(30);
    expect(ds.template.spec?.containers[0]?.args).toContain("--drain-ms=25000");
    expect(() => template(["--set", "agent.drainMs=15000"])).toThrow(/drainMs must be below/);
  });

  it("carries Trellis's own CRDs in crds/ (installed by helm install, not templated)", () => {
    const crds = template(["--include-crds"]).filter((x) => x.kind === "CustomResourceDefinition");
    expect(crds.map((c) => c.metadata.name)).toEqual(["canaries.trellis.dev"]);
  });

  it("installs the Gateway API CRDs only when asked, kept on uninstall", () => {
    expect(objs.some((x) => x.kind === "CustomResourceDefinition")).toBe(false);
    const r = spawnSync(HELM, ["template", "t", CHART, "--set", "gatewayAPI.installCRDs=true"], {
      encoding: "utf8",
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("files/gateway-api/");
    const crdDir = readdirSync(join(TRELLIS_ROOT, ".tools")).find((d) => d.startsWith("gateway-api-v"));
    if (!crdDir) return;
    const copy = mkdtempSync(join(tmpdir(), "trellis-chart-"));
    tmp.push(copy);
    cpSync(CHART, copy, { recursive: true });
    cpSync(join(TRELLIS_ROOT, ".tools", crdDir), join(copy, "files/gateway-api"), {
      recursive: true,
      filter: (src) => !src.endsWith(".complete"),
    });
    const crds = template(["--set", "gatewayAPI.installCRDs=true"], copy).filter(
      (x) => x.kind === "CustomResourceDefinition",
    );
    expect(crds.map((c) => c.metadata.name)).toEqual(
      expect.arrayContaining([
        "httproutes.gateway.networking.k8s.io",
        "grpcroutes.gateway.networking.k8s.io",
      ]),
    );
    for (const c of crds) expect(c.metadata.annotations?.["helm.sh/resource-policy"]).toBe("keep");
  });
});
