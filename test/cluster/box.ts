// up / down / status of the cluster-in-a-box: a real control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler from kubebox),
// simulated nodes in network namespaces, each with real kube-proxy (nftables
// mode) and the TypeScript node simulator playing kubelet.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import {
  API_PORT,
  type BoxPaths,
  boxPaths,
  CLUSTER_CIDR,
  CLUSTER_DOMAIN,
  ETCD_CLIENT_URL,
  ETCD_PEER_URL,
  GATEWAY_API_VERSION,
  KUBERNETES_SERVICE_IP,
  KUBERNETES_VERSION,
  type NodeLayout,
  nodeLayout,
  SERVICE_CIDR,
  TOOLS_BIN,
  TRELLIS_ROOT,
  UNDERLAY_CIDR,
  UNDERLAY_HOST_IP,
} from "./layout.ts";
import { createNodeNetwork, createUnderlay, listBoxNetns, removeBoxNetwork } from "./network.ts";
import { createCA, issueCert, kubeconfigFor } from "./pki.ts";
import { boxProcesses, type Daemon, isAlive, startDaemon, stopPids } from "./processes.ts";

export interface BoxState {
  boxId: string;
  nodes: string[];
  daemons: Daemon[];
  startedAt: string;
}

export interface UpOptions {
  nodes?: number;
  log?: (msg: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bin = (name: string) => path.join(TOOLS_BIN, name);

export function paths(): BoxPaths {
  return boxPaths(TRELLIS_ROOT);
}

export function readState(p = paths()): BoxState | undefined {
  try {
    return JSON.parse(readFileSync(p.stateFile, "utf8")) as BoxState;
  } catch {
    return undefined;
  }
}

export function kubectl(args: string[], opts: { input?: string; kubeconfig?: string } = {}): string {
  return execFileSync(bin("kubectl"), ["--kubeconfig", opts.kubeconfig ?? paths().adminKubeconfig, ...args], {
    encoding: "utf8",
    input: opts.input,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

function writePki(p: BoxPaths, nodes: readonly NodeLayout[]): void {
  createCA(p.pki);
  issueCert(p.pki, {
    name: "apiserver",
    cn: "kube-apiserver",
    server: {
      dns: [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        `kubernetes.default.svc.${CLUSTER_DOMAIN}`,
      ],
      ips: ["127.0.0.1", UNDERLAY_HOST_IP, KUBERNETES_SERVICE_IP],
    },
  });
  issueCert(p.pki, { name: "admin", cn: "trellis-box-admin", org: "system:masters" });
  issueCert(p.pki, { name: "controller-manager", cn: "system:kube-controller-manager" });
  issueCert(p.pki, { name: "scheduler", cn: "system:kube-scheduler" });
  issueCert(p.pki, { name: "kube-proxy", cn: "system:kube-proxy" });
  for (const n of nodes)
    issueCert(p.pki, { name: `node-${n.name}`, cn: `system:node:${n.name}`, org: "system:nodes" });
  const local = `https://127.0.0.1:${API_PORT}`;
  writeFileSync(p.adminKubeconfig, kubeconfigFor(p.pki, "admin", local));
  writeFileSync(
    path.join(p.state, "controller-manager.kubeconfig"),
    kubeconfigFor(p.pki, "controller-manager", local),
  );
  writeFileSync(path.join(p.state, "scheduler.kubeconfig"), kubeconfigFor(p.pki, "scheduler", local));
}

async function waitFor(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
  logs: string[],
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; see ${logs.join(", ")}`);
}

function apiReady(p: BoxPaths): Promise<boolean> {
  return new Promise((resolve) => {
    const req = https.get(
      {
        host: "127.0.0.1",
        port: API_PORT,
        path: "/readyz",
        ca: readFileSync(path.join(p.pki, "ca.crt")),
        cert: readFileSync(path.join(p.pki, "admin.crt")),
        key: readFileSync(path.join(p.pki, "admin.key")),
        timeout: 2000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
  });
}

function kubeProxyConfig(p: BoxPaths, node: NodeLayout): string {
  const dir = p.nodeDir(node.name);
  const kubeconfig = path.join(dir, "kube-proxy.kubeconfig");
  writeFileSync(kubeconfig, kubeconfigFor(p.pki, "kube-proxy", `https://${UNDERLAY_HOST_IP}:${API_PORT}`));
  const config = path.join(dir, "kube-proxy.yaml");
  writeFileSync(
    config,
    [
      "apiVersion: kubeproxy.config.k8s.io/v1alpha1",
      "kind: KubeProxyConfiguration",
      "mode: nftables",
      `hostnameOverride: ${node.name}`,
      `clusterCIDR: ${CLUSTER_CIDR}`,
      "clientConnection:",
      `  kubeconfig: ${kubeconfig}`,
      // Conntrack sysctls are per-host; a node netns must not try to set them.
      "conntrack:",
      "  maxPerCore: 0",
      "  min: 0",
      "  tcpEstablishedTimeout: 0s",
      "  tcpCloseWaitTimeout: 0s",
      "metricsBindAddress: 127.0.0.1:10249",
      "healthzBindAddress: 127.0.0.1:10256",
      "",
    ].join("\n"),
  );
  return config;
}

function writeNodeConfig(p: BoxPaths, node: NodeLayout, boxId: string): string {
  const dir = p.nodeDir(node.name);
  writeFileSync(
    path.join(dir, "kubeconfig"),
    kubeconfigFor(p.pki, `node-${node.name}`, `https://127.0.0.1:${API_PORT}`),
  );
  const file = path.join(dir, "node.json");
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        name: node.name,
        netns: node.netns,
        underlayIP: node.underlayIP,
        podCIDR: node.podCIDR,
        podGateway: node.podGateway,
        clusterCIDR: CLUSTER_CIDR,
        serviceCIDR: SERVICE_CIDR,
        underlayCIDR: UNDERLAY_CIDR,
        apiServer: `https://${UNDERLAY_HOST_IP}:${API_PORT}`,
        kubeconfig: path.join(dir, "kubeconfig"),
        stateDir: dir,
        boxId,
        clusterDomain: CLUSTER_DOMAIN,
        kubernetesVersion: KUBERNETES_VERSION,
        trellisRoot: TRELLIS_ROOT,
      },
      null,
      2,
    )}\n`,
  );
  return file;
}

function saveState(p: BoxPaths, state: BoxState): void {
  writeFileSync(p.stateFile, `${JSON.stringify(state, null, 2)}\n`);
}

export async function up(opts: UpOptions = {}): Promise<BoxState> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const t0 = Date.now();
  const step = (m: string) => log(`[box ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${m}`);
  const count = opts.nodes ?? Number(process.env.NODES ?? 2);
  const nodes = Array.from({ length: count }, (_, i) => nodeLayout(i + 1));
  const p = paths();
  if (!existsSync(bin("kubebox")))
    throw new Error(`${bin("kubebox")} missing: run scripts/bootstrap.sh first`);
  const crds =
    process.env.TRELLIS_GATEWAY_CRDS ??
    path.join(TRELLIS_ROOT, ".tools", `gateway-api-${GATEWAY_API_VERSION}`);
  if (!existsSync(crds)) throw new Error(`${crds} missing: run scripts/bootstrap.sh first`);

  await down({ log: () => {}, quiet: true });
  step(`state dir ${p.state}`);
  mkdirSync(p.logs, { recursive: true });
  for (const n of nodes) mkdirSync(p.nodeDir(n.name), { recursive: true });
  const boxId = randomBytes(6).toString("hex");
  const state: BoxState = {
    boxId,
    nodes: nodes.map((n) => n.name),
    daemons: [],
    startedAt: new Date().toISOString(),
  };
  saveState(p, state);
  const start = (name: string, cmd: string, args: string[]) => {
    const d = startDaemon(name, cmd, args, { logDir: p.logs, boxId, cwd: TRELLIS_ROOT });
    state.daemons.push(d);
    saveState(p, state);
    return d;
  };

  step("certificates");
  writePki(p, nodes);
  step(`network: underlay ${UNDERLAY_CIDR}, ${nodes.length} node namespaces`);
  createUnderlay();
  for (const n of nodes) createNodeNetwork(n, nodes);

  step("etcd + kube-apiserver");
  start("etcd", bin("etcd"), [
    "--data-dir",
    path.join(p.state, "etcd"),
    "--listen-client-url",
    ETCD_CLIENT_URL,
    "--listen-peer-url",
    ETCD_PEER_URL,
  ]);
  const pki = (f: string) => path.join(p.pki, f);
  const apiserver = start("kube-apiserver", bin("kube-apiserver"), [
    `--etcd-servers=${ETCD_CLIENT_URL}`,
    "--bind-address=0.0.0.0",
    `--secure-port=${API_PORT}`,
    `--advertise-address=${UNDERLAY_HOST_IP}`,
    `--tls-cert-file=${pki("apiserver.crt")}`,
    `--tls-private-key-file=${pki("apiserver.key")}`,
    `--client-ca-file=${pki("ca.crt")}`,
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    // Node names are not in any DNS: never resolve them (the lookup would go to the
    // machine's resolver); the simulated kubelets have no port 10250 anyway.
    "--kubelet-preferred-address-types=InternalIP",
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--service-account-issuer=https://kubernetes.default.svc.${CLUSTER_DOMAIN}`,
    `--service-account-key-file=${pki("sa.pub")}`,
    `--service-account-signing-key-file=${pki("sa.key")}`,
    `--api-audiences=https://kubernetes.default.svc.${CLUSTER_DOMAIN}`,
    "--allow-privileged=true",
    "--profiling=false",
    `--cert-dir=${path.join(p.state, "apiserver")}`,
    "--event-ttl=1h",
  ]);
  await waitFor("kube-apiserver /readyz", 90_000, () => apiReady(p), [
    apiserver.log,
    path.join(p.logs, "etcd.log"),
  ]);

  step("kube-controller-manager + kube-scheduler");
  const kcmKubeconfig = path.join(p.state, "controller-manager.kubeconfig");
  start("kube-controller-manager", bin("kube-controller-manager"), [
    `--kubeconfig=${kcmKubeconfig}`,
    `--authentication-kubeconfig=${kcmKubeconfig}`,
    `--authorization-kubeconfig=${kcmKubeconfig}`,
    "--bind-address=127.0.0.1",
    `--service-account-private-key-file=${pki("sa.key")}`,
    `--root-ca-file=${pki("ca.crt")}`,
    "--use-service-account-credentials=true",
    `--cluster-cidr=${CLUSTER_CIDR}`,
    `--service-cluster-ip-range=${SERVICE_CIDR}`,
    `--cluster-signing-cert-file=${pki("ca.crt")}`,
    `--cluster-signing-key-file=${pki("ca.key")}`,
    "--leader-elect=false",
  ]);
  const schedKubeconfig = path.join(p.state, "scheduler.kubeconfig");
  start("kube-scheduler", bin("kube-scheduler"), [
    `--kubeconfig=${schedKubeconfig}`,
    `--authentication-kubeconfig=${schedKubeconfig}`,
    `--authorization-kubeconfig=${schedKubeconfig}`,
    "--bind-address=127.0.0.1",
    "--leader-elect=false",
  ]);

  step(`Gateway API CRDs (experimental) from ${path.basename(crds)}`);
  kubectl(["apply", "--server-side", "-f", crds]);
  kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/httproutes.gateway.networking.k8s.io",
    "crd/grpcroutes.gateway.networking.k8s.io",
    "crd/referencegrants.gateway.networking.k8s.io",
  ]);

  step("nodes: simulator + kube-proxy (nftables) per node");
  for (const n of nodes) {
    const cfg = writeNodeConfig(p, n, boxId);
    start(`sim-${n.name}`, process.execPath, [
      path.join(TRELLIS_ROOT, "test/cluster/sim/main.ts"),
      "--config",
      cfg,
    ]);
    start(`kube-proxy-${n.name}`, "ip", [
      "netns",
      "exec",
      n.netns,
      bin("kube-proxy"),
      `--config=${kubeProxyConfig(p, n)}`,
    ]);
  }
  await waitFor(`${nodes.length} Ready nodes`, 60_000, () => readyNodes() >= nodes.length, [
    path.join(p.logs, "sim-n1.log"),
  ]);
  await waitFor(
    "default ServiceAccount",
    60_000,
    () => kubectl(["get", "sa", "default", "-o", "name"]).includes("default"),
    [path.join(p.logs, "kube-controller-manager.log")],
  );
  step(`up: ${nodes.length} nodes Ready; KUBECONFIG=${p.adminKubeconfig}`);
  return state;
}

function readyNodes(): number {
  const out = kubectl([
    "get",
    "nodes",
    "-o",
    'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
  ]);
  return out.split("\n").filter((s) => s === "True").length;
}

export interface DownOptions {
  log?: (msg: string) => void;
  quiet?: boolean;
}

/** Stops everything the box started and removes everything it created. Safe to run any time. */
export async function down(opts: DownOptions = {}): Promise<void> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const p = paths();
  const state = readState(p);
  // Simulators first, so pods get their CNI DEL while the plugins' state is intact.
  const sims = (state?.daemons ?? [])
    .filter((d) => d.name.startsWith("sim-") && isAlive(d.pid))
    .map((d) => d.pid);
  if (sims.length) await stopPids(sims, 20_000);
  await stopPids(boxProcesses(), 10_000);
  removeBoxNetwork();
  removeEmptyMountPoints();
  if (existsSync(p.state)) {
    // Keep the last run's logs for post-mortems; drop the rest (etcd data, keys).
    const last = path.join(path.dirname(p.state), "box-last-logs");
    rmSync(last, { recursive: true, force: true });
    if (existsSync(p.logs)) renameSync(p.logs, last);
    rmSync(p.state, { recursive: true, force: true });
  }
  if (!opts.quiet) log("box down: no box processes, namespaces or routes left");
}

/**
 * Containers share the machine's root filesystem, so the simulator creates a
 * missing mount point there (an empty directory). Trellis's pods mount at
 * these; remove them again when they are empty (never anything with content).
 */
const MOUNT_POINTS = [
  "/run/trellis/ca",
  "/run/trellis",
  "/var/lib/trellis",
  "/host/etc/cni/net.d",
  "/host/etc/cni",
  "/host/etc",
  "/host/opt/cni/bin",
  "/host/opt/cni",
  "/host/opt",
  "/host/var/lib/cni",
  "/host/var/lib",
  "/host/var",
  "/host",
];

function removeEmptyMountPoints(): void {
  for (const dir of MOUNT_POINTS) {
    try {
      rmdirSync(dir);
    } catch {
      // absent, not empty, or still a mount point: leave it
    }
  }
}

export async function status(): Promise<{ up: boolean; lines: string[] }> {
  const p = paths();
  const state = readState(p);
  if (!state) return { up: false, lines: ["box is down"] };
  const lines = state.daemons.map(
    (d) => `${isAlive(d.pid) ? "running" : "DEAD   "}  ${d.name} (pid ${d.pid}) log ${d.log}`,
  );
  const ready = await apiReady(p);
  lines.push(`kube-apiserver ${ready ? "ready" : "NOT ready"} at https://127.0.0.1:${API_PORT}`);
  lines.push(`network namespaces: ${listBoxNetns().join(" ") || "(none)"}`);
  lines.push(`KUBECONFIG=${p.adminKubeconfig}`);
  return { up: ready && state.daemons.every((d) => isAlive(d.pid)), lines };
}
