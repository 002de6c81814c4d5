// charts/trellis installed for real into the cluster-in-a-box with helm: the
// controller (2 replicas) and an agent on every node, the faces workshop's step 2
// routed by the mesh, `trellis check` passing, then naming a node whose agent
// is taken away, and `helm uninstall` leaving no shim and no nft table behind.
// The box maps the chart's image names to this checkout (test/cluster/images.ts).
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl, paths } from "../cluster/box.ts";
import { nodeLayout, TRELLIS_ROOT } from "../cluster/layout.ts";
import { eventually } from "../support/eventually.ts";
import {
  type Cell,
  deployFaces,
  FACES_NAMESPACE,
  FACES_ROUTES_DIR,
  fetchCell,
  fetchGrid,
  guiAddress,
} from "../support/faces-cluster.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const NS = "trellis-system";
const RELEASE = "trellis";
const HELM = join(TRELLIS_ROOT, ".tools/bin/helm");
const CLI = join(TRELLIS_ROOT, "packages/controller/src/cli/trellis.ts");
const N1 = nodeLayout(1);
const N2 = nodeLayout(2);

const AGENT_DRAIN_MS = 5_000;

/** Box values: images run from source (imagePullPolicy Never), the hook's kubectl from .tools. */
const BOX_VALUES = [
  "controller.image.pullPolicy=Never",
  "agent.image.pullPolicy=Never",
  "cni.image.pullPolicy=Never",
  "controller.leaseDurationSeconds=5",
  "agent.debugHeaders=true",
  // The node simulator caps a pod's grace period at 10 s (test/cluster/sim/pod-worker.ts).
  `agent.drainMs=${AGENT_DRAIN_MS}`,
  "agent.terminationGracePeriodSeconds=8",
  "cleanupOnUninstall.image.repository=trellis.local/shell",
  "cleanupOnUninstall.image.pullPolicy=Never",
  `cleanupOnUninstall.kubectl=${join(TRELLIS_ROOT, ".tools/bin/kubectl")}`,
].join(",");

function helm(args: string[]): string {
  return execFileSync(HELM, ["--kubeconfig", paths().adminKubeconfig, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 16 * 1024 * 1024,
  });
}

const execFileAsync = promisify(execFile);
async function helmAsync(args: string[]): Promise<void> {
  await execFileAsync(HELM, ["--kubeconfig", paths().adminKubeconfig, ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
}

function trellisCheck(): { status: number; out: string } {
  const r = spawnSync(process.execPath, [CLI, "check", "--kubeconfig", paths().adminKubeconfig], {
    encoding: "utf8",
    env: { ...process.env, TRELLIS_CONTROLLER: "" },
  });
  return { status: r.status ?? -1, out: r.stdout + r.stderr };
}

function podsOf(component: string): { name: string; node: string; phase: string; ready: string }[] {
  const out = kubectl([
    "-n",
    NS,
    "get",
    "pods",
    "-l",
    `app.kubernetes.io/component=${component}`,
    "-o",
    'jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.phase} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
  ]);
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [name = "", node = "", phase = "", ready = ""] = l.split(" ");
      return { name, node, phase, ready };
    });
}

interface AgentRow {
  node: string;
  connected: boolean;
  desired: string;
  applied: string;
}
/** /debug/agents of every controller replica, merged: each knows only the agents connected to it. */
function agentRows(): AgentRow[] {
  const byNode = new Map<string, AgentRow>();
  for (const pod of podsOf("controller").filter((p) => p.ready === "True")) {
    const rows = JSON.parse(
      kubectl(["get", "--raw", `/api/v1/namespaces/${NS}/pods/${pod.name}:9090/proxy/debug/agents`]),
    ) as AgentRow[];
    for (const r of rows) if (!byNode.get(r.node)?.connected) byNode.set(r.node, r);
  }
  return [...byNode.values()];
}

const nftTable = (node: { netns: string }): string => {
  try {
    return execFileSync("ip", ["netns", "exec", node.netns, "nft", "list", "table", "ip", "trellis"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch {
    return "";
  }
};

const namespaceExists = (ns: string) =>
  kubectl(["get", "namespace", ns, "--ignore-not-found", "-o", "name"]).trim() !== "";

/** Every container log of this install's controllers or agents (kubectl logs needs a kubelet API the box has not). */
function componentLogs(component: "controller" | "agent"): string {
  let all = "";
  const nodesDir = join(paths().state, "nodes");
  for (const node of existsSync(nodesDir) ? readdirSync(nodesDir) : []) {
    const podsDir = join(nodesDir, node, "pods");
    if (!existsSync(podsDir)) continue;
    for (const d of readdirSync(podsDir).filter((x) => x.startsWith(`${NS}_trellis-${component}-`))) {
      const f = join(podsDir, d, `${component}.log`);
      if (existsSync(f)) all += readFileSync(f, "utf8");
    }
  }
  return all;
}
const controllerLogs = () => componentLogs("controller");

const captureStatus = (pod: string) =>
  kubectl([
    "-n",
    FACES_NAMESPACE,
    "get",
    "pod",
    pod,
    "-o",
    "jsonpath={.metadata.annotations.trellis\\.dev/capture-status}",
  ]);

function newestPod(app: string): string {
  return kubectl([
    "-n",
    FACES_NAMESPACE,
    "get",
    "pods",
    "-l",
    `app=${app}`,
    "--sort-by=.metadata.creationTimestamp",
    "-o",
    "jsonpath={.items[-1:].metadata.name}",
  ]).trim();
}

let installed = false;

describe.skipIf(!existsSync(HELM))("helm chart on the cluster-in-a-box", () => {
  beforeAll(async () => {
    if (namespaceExists(NS))
      throw new Error(
        `namespace ${NS} already exists (a from-source install or an earlier run?): remove it first (node test/cluster/trellis-install.ts uninstall)`,
      );
    if (namespaceExists(FACES_NAMESPACE))
      await eventually(
        "an earlier faces namespace to go",
        () => {
          if (namespaceExists(FACES_NAMESPACE)) throw new Error("still there");
        },
        { timeoutMs: 120_000, intervalMs: 1000 },
      );
    const t0 = Date.now();
    installed = true;
    helm([
      "install",
      RELEASE,
      join(TRELLIS_ROOT, "charts/trellis"),
      "-n",
      NS,
      "--create-namespace",
      "--set",
      BOX_VALUES,
      "--wait",
      "--timeout",
      "4m",
    ]);
    console.log(`helm install --wait: ${Date.now() - t0} ms`);
  });

  afterAll(async () => {
    if (namespaceExists(FACES_NAMESPACE))
      kubectl(["delete", "namespace", FACES_NAMESPACE, "--wait=true", "--timeout=120s"]);
    if (installed) {
      try {
        helm(["uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "4m"]);
      } catch {
        // uninstalled by the last test, or its hook failed (the failure is that test's)
      }
    }
    if (namespaceExists(NS)) kubectl(["delete", "namespace", NS, "--wait=true", "--timeout=120s"]);
  });

  it("runs two controller replicas and a Running, connected agent on every node", async () => {
    const nodes = kubectl(["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"])
      .split(/\s+/)
      .filter(Boolean);
    const controllers = podsOf("controller");
    expect(controllers).toHaveLength(2);
    expect(controllers.every((p) => p.phase === "Running")).toBe(true);
    const agents = podsOf("agent");
    expect(agents.map((p) => p.node).sort()).toEqual([...nodes].sort());
    expect(agents.every((p) => p.phase === "Running" && p.ready === "True")).toBe(true);
    await eventually("every agent connected and in sync", () => {
      const rows = agentRows();
      const bad = nodes.filter((n) => {
        const r = rows.find((x) => x.node === n);
        return !r?.connected || r.desired !== r.applied;
      });
      if (bad.length) throw new Error(`not in sync: ${bad.join(", ")} ${JSON.stringify(rows)}`);
    });
  });

  it("routes faces step 2 (smiley → smiley2): every cell heart-eyes", async () => {
    await deployFaces(180_000);
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "02-smiley-route.yaml")]);
    const gui = await eventually("the faces GUI", () => guiAddress(), { timeoutMs: 30_000 });
    const cells = await eventually(
      "every cell heart-eyes",
      async () => {
        const grid = await fetchGrid(gui);
        const bad = grid.filter((c) => c.status !== 200 || c.smiley !== "HeartEyes");
        if (bad.length) throw new Error(`${bad.length} cells: ${JSON.stringify(bad[0])}`);
        return grid;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(cells).toHaveLength(16);
    expect(cells.every((c) => c.smileyRoute?.startsWith("faces/smiley"))).toBe(true);
  });

  it("trellis check passes on the healthy install", async () => {
    const r = await eventually(
      "trellis check to pass",
      () => {
        const c = trellisCheck();
        if (c.status !== 0) throw new Error(c.out);
        return c;
      },
      { timeoutMs: 30_000, intervalMs: 1000 },
    );
    console.log(r.out);
    expect(r.out).toContain("all checks passed");
    expect(r.out).toMatch(/Gateway API CRDs present, bundle version v\d/);
    expect(r.out).toContain(`node ${N1.name}: CNI shim installed`);
    expect(r.out).toContain(`namespace ${FACES_NAMESPACE}:`);
  });

  it("trellis status shows every node's agent, merged from both controller replicas", () => {
    const nodes = [N1.name, N2.name];
    // What each replica alone knows: only the agents connected to it.
    const perReplica = podsOf("controller").map((p) => {
      const rows = JSON.parse(
        kubectl(["get", "--raw", `/api/v1/namespaces/${NS}/pods/${p.name}:9090/proxy/debug/agents`]),
      ) as AgentRow[];
      return `${p.name}: ${
        rows
          .filter((r) => r.connected)
          .map((r) => r.node)
          .join(",") || "none"
      }`;
    });
    const r = spawnSync(
      process.execPath,
      [CLI, "status", "-o", "json", "--kubeconfig", paths().adminKubeconfig],
      { encoding: "utf8", env: { ...process.env, TRELLIS_CONTROLLER: "" } },
    );
    console.log(`agents connected per replica: ${perReplica.join("; ")}`);
    expect(r.status, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as AgentRow[];
    for (const n of nodes) {
      const row = rows.find((x) => x.node === n);
      expect(row?.connected, `${n}: ${JSON.stringify(rows)}`).toBe(true);
      expect(row?.applied).toBe(row?.desired);
    }
    const table = spawnSync(process.execPath, [CLI, "status", "--kubeconfig", paths().adminKubeconfig], {
      encoding: "utf8",
      env: { ...process.env, TRELLIS_CONTROLLER: "" },
    });
    for (const n of nodes)
      expect(table.stdout).toMatch(new RegExp(`^${n}\\s.*connected \\(${NS}/trellis-agent-`, "m"));
  });

  it("trellis check names the node whose agent is stopped, and passes again once it is back", async () => {
    const patch = (affinity: unknown) =>
      kubectl([
        "-n",
        NS,
        "patch",
        "daemonset",
        "trellis-agent",
        "--type",
        "merge",
        "-p",
        JSON.stringify({ spec: { template: { spec: { affinity } } } }),
      ]);
    patch({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchFields: [{ key: "metadata.name", operator: "NotIn", values: [N2.name] }] },
          ],
        },
      },
    });
    try {
      await eventually(
        "no agent on n2",
        () => {
          if (podsOf("agent").some((p) => p.node === N2.name)) throw new Error("agent still on n2");
        },
        { timeoutMs: 60_000 },
      );
      const r = await eventually(
        "trellis check to see it",
        () => {
          const c = trellisCheck();
          // The affinity patch rolls n1's agent too: wait until it is back and only n2 is missing.
          if (
            !c.out.includes(`node ${N2.name}: no agent connected`) ||
            new RegExp(`node ${N1.name}: (no agent|agent pod .* not ready)`).test(c.out)
          )
            throw new Error(c.out);
          return c;
        },
        { timeoutMs: 60_000, intervalMs: 1000 },
      );
      console.log(r.out);
      expect(r.status).toBe(1);
      expect(r.out).toContain(`node ${N2.name}: no agent pod`);
      expect(r.out).toMatch(/fix: .*daemonset trellis-agent/);
      expect(r.out).not.toContain(`node ${N1.name}: no agent`);
    } finally {
      patch(null);
    }
    await eventually(
      "trellis check to pass again",
      () => {
        const c = trellisCheck();
        if (c.status !== 0) throw new Error(c.out);
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
  });

  it("the controller logs no Forbidden under the chart's RBAC during the scenario", () => {
    const logs = controllerLogs();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toMatch(/forbidden|HTTP-Code: 403|"code":\s*403/i);
  });

  it("removing one verb (patch pods) from the ClusterRole makes the capture-status write fail with a 403 naming it; helm upgrade restores it and rolls the agents", async () => {
    const rules = JSON.parse(
      kubectl(["get", "clusterrole", "trellis-controller", "-o", "jsonpath={.rules}"]),
    ) as {
      resources: string[];
      verbs: string[];
    }[];
    const i = rules.findIndex((r) => r.resources.includes("pods") && r.verbs.includes("patch"));
    expect(i).toBeGreaterThanOrEqual(0);
    kubectl([
      "patch",
      "clusterrole",
      "trellis-controller",
      "--type",
      "json",
      "-p",
      JSON.stringify([{ op: "remove", path: `/rules/${i}` }]),
    ]);
    kubectl(["-n", FACES_NAMESPACE, "delete", "pod", newestPod("smiley2"), "--wait=false"]);
    const forbidden = await eventually(
      "a 403 for patch pods in the controller's log",
      () => {
        const m = controllerLogs()
          .match(/.*cannot write capture status.*/g)
          ?.find((l) => /cannot patch resource[^a-z]*pods/.test(l));
        if (!m) throw new Error("not yet");
        return m;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    console.log(`403 as logged: ${forbidden.slice(0, 400)}`);
    expect(forbidden).toMatch(/403|forbidden/i);

    // helm upgrade with a changed agent value: the ClusterRole is restored and the agents roll,
    // under a steady stream of faces cells. Each cell is three captured requests on both nodes:
    // faces-gui → face (through the GUI node's agent), face → smiley and face → color (through
    // face's node's agent). face degrades instead of failing, so a cell counts as failed unless
    // it is 200, heart-eyes (smiley answered) and not grey (color answered).
    const before = podsOf("agent").map((p) => p.name);
    const gui = guiAddress();
    // The smiley2 pod deleted above is its only replica: wait for its replacement, so the stream
    // measures the roll and not that (it answers 503 "no healthy endpoint" in between).
    await eventually(
      "smiley2 replaced, Ready, and every cell heart-eyes",
      async () => {
        const pods = kubectl([
          "-n",
          FACES_NAMESPACE,
          "get",
          "pods",
          "-l",
          "app=smiley2",
          "-o",
          'jsonpath={range .items[*]}{.metadata.name} {.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
        ])
          .trim()
          .split("\n")
          .filter(Boolean);
        if (pods.length !== 1 || !pods[0]?.endsWith(" True")) throw new Error(pods.join(", "));
        const grid = await fetchGrid(gui);
        if (grid.some((c) => c.status !== 200 || c.smiley !== "HeartEyes"))
          throw new Error(JSON.stringify(grid[0]));
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    let streaming = true;
    const cells: { at: number; ok: boolean; what: string }[] = [];
    const stream = async (): Promise<void> => {
      for (let i = 0; streaming; i++) {
        const row = i % 4;
        const col = Math.floor(i / 4) % 4;
        const c = await fetchCell(gui, row, col).catch(
          (err: unknown): Cell => ({ status: 0, smiley: "", color: "", errors: String(err) }),
        );
        const ok = c.status === 200 && c.smiley === "HeartEyes" && c.color !== "grey";
        cells.push({ at: Date.now(), ok, what: `${c.status} ${c.smiley} ${c.color} ${c.errors ?? ""}` });
      }
    };
    // 8 concurrent clients, about 25 cells/s (smiley and color sleep 0–1500 ms per request).
    const streams = Array.from({ length: 8 }, () => stream());
    await sleep(2_000);
    const t0 = Date.now();
    // Asynchronously, so the stream keeps running while helm waits for the roll.
    await helmAsync([
      "upgrade",
      RELEASE,
      join(TRELLIS_ROOT, "charts/trellis"),
      "-n",
      NS,
      "--reuse-values",
      "--set",
      "agent.logLevel=debug",
      "--wait",
      "--timeout",
      "4m",
    ]);
    await eventually(
      "every agent replaced and connected",
      () => {
        const now = podsOf("agent");
        if (now.some((p) => before.includes(p.name) || p.ready !== "True"))
          throw new Error(JSON.stringify(now));
        if (agentRows().some((r) => !r.connected || r.desired !== r.applied)) throw new Error("not in sync");
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    );
    const rollMs = Date.now() - t0;
    // Past the last old agent's drain: it closes the connections it still holds at the deadline.
    await sleep(AGENT_DRAIN_MS + 2_000);
    streaming = false;
    await Promise.all(streams);
    const during = cells.filter((c) => c.at >= t0);
    const failed = during.filter((c) => !c.ok);
    console.log(
      `helm upgrade rolled ${before.length} agents (surge) in ${rollMs} ms; ${during.length} faces cells ` +
        `(${during.length * 3} captured requests) from the roll's start until the old agents' drain was over, ${failed.length} failed` +
        (failed.length ? `: ${[...new Set(failed.map((c) => c.what))].slice(0, 5).join("; ")}` : ""),
    );
    // Stated bound: zero. Per node, the new agent binds the old one's listener ports
    // (SO_REUSEPORT) and is Ready before the old one gets SIGTERM; the old one then stops
    // accepting (connections queued on it migrate: tcp_migrate_req), finishes requests in flight,
    // answers `connection: close` / GOAWAY on the connections it still holds, and closes the ones
    // left idle for the whole drain at its deadline (docs/agent.md, Upgrades).
    if (failed.length > 0)
      console.log(
        `agents' warnings and drain records:\n${componentLogs("agent")
          .split("\n")
          .filter((l) => /"level":(40|50)|"msg":"(stopping|stopped|ready|adopted listener ports)"/.test(l))
          .slice(-40)
          .join("\n")}`,
      );
    expect(during.length).toBeGreaterThan(100);
    expect(failed).toEqual([]);
    expect(kubectl(["get", "clusterrole", "trellis-controller", "-o", "jsonpath={.rules}"])).toMatch(
      /"patch"\]/,
    );
    kubectl(["-n", FACES_NAMESPACE, "delete", "pod", newestPod("smiley2"), "--wait=false"]);
    await eventually(
      "the new smiley2 pod's capture status written again",
      () => {
        const pod = newestPod("smiley2");
        if (captureStatus(pod) !== "enabled") throw new Error(`${pod}: ${captureStatus(pod)}`);
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    const grid = await eventually("grid heart-eyes after the upgrade", async () => {
      const g = await fetchGrid(gui);
      if (g.some((c) => c.smiley !== "HeartEyes")) throw new Error(JSON.stringify(g[0]));
      return g;
    });
    expect(grid).toHaveLength(16);
  }, 300_000);

  it("helm uninstall removes the shim from every conflist and the nft tables from every node", async () => {
    // Pods set up through the shim keep its binary until they are gone (their teardown runs it).
    kubectl(["delete", "namespace", FACES_NAMESPACE, "--wait=true", "--timeout=120s"]);
    const t0 = Date.now();
    helm(["uninstall", RELEASE, "-n", NS, "--wait", "--timeout", "4m"]);
    console.log(`helm uninstall (with the cleanup hook): ${Date.now() - t0} ms`);
    for (const node of [N1, N2]) {
      expect(nftTable(node), node.name).toBe("");
      const dir = join(paths().nodeDir(node.name), "cni");
      for (const f of readdirSync(join(dir, "net.d")))
        expect(readFileSync(join(dir, "net.d", f), "utf8"), `${node.name} ${f}`).not.toContain("trellis-cni");
      expect(existsSync(join(paths().nodeDir(node.name), "run/trellis/captured-namespaces.json"))).toBe(
        false,
      );
    }
    // The hook's own objects go, and so do the controller's runtime objects (CA, bundle, Lease).
    await eventually("no Trellis object left in the namespace", () => {
      const left = kubectl(["-n", NS, "get", "jobs,pods,configmaps,secrets,leases", "-o", "name"]).match(
        /\S*trellis-(cleanup|ca|agent|controller)\S*/g,
      );
      if (left) throw new Error(left.join(", "));
    });
    expect(kubectl(["get", "clusterrole", "-o", "name"])).not.toMatch(/trellis-(controller|cleanup)/);
  });
});
