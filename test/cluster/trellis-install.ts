// Installs Trellis from source into the cluster-in-a-box, as a chart would:
// the controller as a Deployment, the agent as a host-network DaemonSet whose
// init container chains the CNI shim into each node's CNI configuration.
// Images map to this checkout (images.ts). Uninstall removes everything,
// including each node's nft table, shim binary and conflist entry.
//
//   node test/cluster/trellis-install.ts install | uninstall
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { kubectl } from "./box.ts";

/** Trellis's own CRDs (Canary), applied before the controller starts so it watches them. */
const CRD_FILES = ["charts/trellis/crds/trellis.dev_canaries.yaml"].map(
  (f) => new URL(`../../${f}`, import.meta.url),
);

export const TRELLIS_NAMESPACE = "trellis-system";
const AGENT_PORT = 9443;

export interface InstallOptions {
  /** Agents add x-trellis-route / x-trellis-backend to responses (the faces GUI shows them). */
  debugHeaders?: boolean;
  log?: (line: string) => void;
  timeoutMs?: number;
}

const controllerManifests = () => `
apiVersion: v1
kind: Namespace
metadata: { name: ${TRELLIS_NAMESPACE} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: trellis-controller, namespace: ${TRELLIS_NAMESPACE} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: trellis-agent, namespace: ${TRELLIS_NAMESPACE} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: trellis-controller }
rules:
- apiGroups: [""]
  resources: [namespaces, services, pods, nodes]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods]
  verbs: [patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes, grpcroutes, referencegrants]
  verbs: [list, watch]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes/status, grpcroutes/status]
  verbs: [patch, update]
- apiGroups: [authentication.k8s.io]
  resources: [tokenreviews]
  verbs: [create]
- apiGroups: [trellis.dev]
  resources: [canaries]
  verbs: [get, list, watch]
- apiGroups: [trellis.dev]
  resources: [canaries/status]
  verbs: [update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: trellis-controller }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: trellis-controller }
subjects: [{ kind: ServiceAccount, name: trellis-controller, namespace: ${TRELLIS_NAMESPACE} }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: trellis-controller, namespace: ${TRELLIS_NAMESPACE} }
rules:
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, create]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, update]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: trellis-controller, namespace: ${TRELLIS_NAMESPACE} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: trellis-controller }
subjects: [{ kind: ServiceAccount, name: trellis-controller, namespace: ${TRELLIS_NAMESPACE} }]
---
apiVersion: v1
kind: Service
metadata: { name: trellis-controller, namespace: ${TRELLIS_NAMESPACE} }
spec:
  selector: { app: trellis-controller }
  ports:
  - { name: grpc-agents, port: ${AGENT_PORT}, targetPort: ${AGENT_PORT} }
  - { name: http-admin, port: 9090, targetPort: 9090 }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: trellis-controller, namespace: ${TRELLIS_NAMESPACE} }
spec:
  replicas: 1
  selector: { matchLabels: { app: trellis-controller } }
  template:
    metadata: { labels: { app: trellis-controller } }
    spec:
      serviceAccountName: trellis-controller
      terminationGracePeriodSeconds: 5
      containers:
      - name: controller
        image: trellis.local/controller
        imagePullPolicy: Never
        args: ["--lease-duration", "5"]
        ports: [{ containerPort: ${AGENT_PORT} }, { containerPort: 9090 }]
        readinessProbe: { httpGet: { path: /readyz, port: 9090 }, periodSeconds: 1 }
`;

const agentManifests = (controllerIP: string, debugHeaders: boolean) => `
apiVersion: apps/v1
kind: DaemonSet
metadata: { name: trellis-agent, namespace: ${TRELLIS_NAMESPACE} }
spec:
  selector: { matchLabels: { app: trellis-agent } }
  # As the chart: the new agent is Ready beside the old one before the old one drains.
  updateStrategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }
  template:
    metadata: { labels: { app: trellis-agent } }
    spec:
      hostNetwork: true
      serviceAccountName: trellis-agent
      terminationGracePeriodSeconds: 5
      initContainers:
      - name: install-cni
        image: trellis.local/cni
        imagePullPolicy: Never
        args: ["install", "--cni-bin-dir", "/host/opt/cni/bin", "--cni-net-dir", "/host/etc/cni/net.d"]
        volumeMounts:
        - { name: cni-bin, mountPath: /host/opt/cni/bin }
        - { name: cni-net, mountPath: /host/etc/cni/net.d }
      containers:
      - name: agent
        image: trellis.local/agent
        imagePullPolicy: Never
        args: ["--controller", "${controllerIP}:${AGENT_PORT}", "--capture", "--admin-port", "15090", "--drain-ms", "2500", "--ready-file", "/run/trellis-agent/ready"${debugHeaders ? ', "--debug-headers"' : ""}]
        env:
        - { name: NODE_NAME, valueFrom: { fieldRef: { fieldPath: spec.nodeName } } }
        readinessProbe: { exec: { command: [test, -e, /run/trellis-agent/ready] }, periodSeconds: 1 }
        volumeMounts:
        - { name: run, mountPath: /var/run/trellis }
        - { name: pod-run, mountPath: /run/trellis-agent }
        - { name: ca, mountPath: /var/run/trellis/ca, readOnly: true }
        - { name: state, mountPath: /var/lib/trellis }
        - { name: token, mountPath: /var/run/secrets/trellis, readOnly: true }
      volumes:
      - { name: cni-bin, hostPath: { path: /opt/cni/bin, type: DirectoryOrCreate } }
      - { name: cni-net, hostPath: { path: /etc/cni/net.d, type: DirectoryOrCreate } }
      - { name: run, hostPath: { path: /var/run/trellis, type: DirectoryOrCreate } }
      - { name: state, hostPath: { path: /var/lib/trellis, type: DirectoryOrCreate } }
      - { name: pod-run, emptyDir: {} }
      - { name: ca, configMap: { name: trellis-ca-bundle } }
      - name: token
        projected:
          sources:
          - serviceAccountToken: { audience: trellis, expirationSeconds: 3600, path: token }
`;

/** A pod that undoes the agent's node state: nft table, shim binary and conflist entry. */
const cleanupPod = (node: string) => `
apiVersion: v1
kind: Pod
metadata: { name: trellis-cleanup-${node}, namespace: ${TRELLIS_NAMESPACE}, labels: { app: trellis-cleanup } }
spec:
  nodeName: ${node}
  hostNetwork: true
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: uninstall-cni
    image: trellis.local/cni
    imagePullPolicy: Never
    args: ["uninstall", "--cni-bin-dir", "/host/opt/cni/bin", "--cni-net-dir", "/host/etc/cni/net.d",
           "--cni-cache-dir", "/host/var/lib/cni/results"]
    volumeMounts:
    - { name: cni-bin, mountPath: /host/opt/cni/bin }
    - { name: cni-net, mountPath: /host/etc/cni/net.d }
    - { name: cni-cache, mountPath: /host/var/lib/cni, readOnly: true }
  containers:
  - name: remove-capture
    image: trellis.local/agent
    imagePullPolicy: Never
    args: ["cleanup"]
    volumeMounts: [{ name: run, mountPath: /var/run/trellis }]
  volumes:
  - { name: cni-bin, hostPath: { path: /opt/cni/bin, type: DirectoryOrCreate } }
  - { name: cni-net, hostPath: { path: /etc/cni/net.d, type: DirectoryOrCreate } }
  - { name: run, hostPath: { path: /var/run/trellis, type: DirectoryOrCreate } }
  - { name: cni-cache, hostPath: { path: /var/lib/cni, type: DirectoryOrCreate } }
`;

async function until(what: string, timeoutMs: number, check: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

/** Phases of the namespace's pods matching a label selector ("" = all), space-separated. */
function podPhases(selector: string): string {
  const args = ["-n", TRELLIS_NAMESPACE, "get", "pods", "-o", "jsonpath={.items[*].status.phase}"];
  return kubectl(selector ? [...args, "-l", selector] : args).trim();
}

function nodeNames(): string[] {
  return kubectl(["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]).split(/\s+/).filter(Boolean);
}

export async function installTrellis(opts: InstallOptions = {}): Promise<void> {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 120_000;
  for (const crd of CRD_FILES) kubectl(["apply", "-f", "-"], { input: readFileSync(crd, "utf8") });
  kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd/canaries.trellis.dev"]);
  kubectl(["apply", "-f", "-"], { input: controllerManifests() });
  const controllerIP = kubectl([
    "-n",
    TRELLIS_NAMESPACE,
    "get",
    "service",
    "trellis-controller",
    "-o",
    "jsonpath={.spec.clusterIP}",
  ]).trim();
  log(`controller Service at ${controllerIP}:${AGENT_PORT}`);
  await until("the controller to be ready (it writes the trellis-ca-bundle ConfigMap)", timeoutMs, () => {
    kubectl(["-n", TRELLIS_NAMESPACE, "get", "configmap", "trellis-ca-bundle"]);
    return (
      kubectl([
        "-n",
        TRELLIS_NAMESPACE,
        "get",
        "deployment",
        "trellis-controller",
        "-o",
        "jsonpath={.status.readyReplicas}",
      ]) === "1"
    );
  });
  log("controller ready");
  kubectl(["apply", "-f", "-"], { input: agentManifests(controllerIP, opts.debugHeaders ?? false) });
  const nodes = nodeNames().length;
  await until(`an agent ready on each of ${nodes} nodes`, timeoutMs, () => {
    const ready = kubectl([
      "-n",
      TRELLIS_NAMESPACE,
      "get",
      "daemonset",
      "trellis-agent",
      "-o",
      "jsonpath={.status.numberReady}",
    ]);
    return Number(ready) === nodes;
  });
  log(`agents ready on ${nodes} nodes`);
}

export async function uninstallTrellis(opts: Pick<InstallOptions, "log" | "timeoutMs"> = {}): Promise<void> {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const exists = kubectl(["get", "namespace", TRELLIS_NAMESPACE, "--ignore-not-found", "-o", "name"]).trim();
  if (exists === "") return;
  kubectl([
    "-n",
    TRELLIS_NAMESPACE,
    "delete",
    "daemonset,deployment",
    "--all",
    "--wait=true",
    "--timeout=60s",
  ]);
  // Every pod gone, the controller's too: its sandbox's CNI DEL still runs the shim.
  await until("Trellis's pods to stop", timeoutMs, () => podPhases("") === "");
  const nodes = nodeNames();
  for (const node of nodes) kubectl(["apply", "-f", "-"], { input: cleanupPod(node) });
  await until("the cleanup pods to finish", timeoutMs, () => {
    const list = podPhases("app=trellis-cleanup").split(/\s+/).filter(Boolean);
    return list.length === nodes.length && list.every((p) => p === "Succeeded" || p === "Failed");
  });
  const phases = podPhases("app=trellis-cleanup");
  // Container logs need the kubelet API, which simulated nodes do not serve: the box's log dir has them.
  if (phases.includes("Failed")) throw new Error(`a cleanup pod failed (${phases}); see the simulator logs`);
  log("node state removed (nft tables, CNI shim config)");
  kubectl(["delete", "namespace", TRELLIS_NAMESPACE, "--wait=true", "--timeout=120s"]);
  kubectl(["delete", "clusterrole,clusterrolebinding", "trellis-controller", "--ignore-not-found"]);
  log("trellis uninstalled");
}

if (import.meta.main) {
  const command = process.argv[2];
  const log = (line: string) => console.log(line);
  if (command === "install")
    await installTrellis({ log, debugHeaders: process.argv.includes("--debug-headers") });
  else if (command === "uninstall") await uninstallTrellis({ log });
  else {
    console.error("usage: node test/cluster/trellis-install.ts install [--debug-headers] | uninstall");
    process.exit(2);
  }
}
