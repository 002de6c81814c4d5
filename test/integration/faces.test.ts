// The faces demo (examples/faces/app) on the cluster-in-a-box with no routes:
// plain kube-proxy, every cell grinning on blue, and the GUI reachable from
// the host through the faces-gui pod's hostPort (portmap) on its node's
// underlay address. The namespace is fixed (`faces`), so this suite owns it
// while it runs.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl } from "../cluster/box.ts";
import { TRELLIS_ROOT } from "../cluster/layout.ts";
import type { FaceCell } from "../faces/lib/face-cell.ts";
import { eventually } from "../support/eventually.ts";

const NS = "faces";
const APP = join(TRELLIS_ROOT, "examples/faces/app");
const GUI_HOST_PORT = 30080;
/** The 4×4 grid: rows and columns 1–2 are the centre. */
const CELLS = Array.from({ length: 16 }, (_, i) => {
  const row = Math.floor(i / 4);
  const col = i % 4;
  const kind = row >= 1 && row <= 2 && col >= 1 && col <= 2 ? "center" : "edge";
  return `/${kind}/?row=${row}&col=${col}`;
});
const WORKLOADS = ["faces-gui", "face", "smiley", "smiley2", "smiley3", "color", "color2", "color3"];

function namespaceExists(): boolean {
  return kubectl(["get", "namespace", NS, "--ignore-not-found", "-o", "name"]).trim() !== "";
}

async function waitNamespaceGone(timeoutMs: number): Promise<void> {
  await eventually(
    `namespace ${NS} gone`,
    () => {
      if (namespaceExists()) throw new Error(`namespace ${NS} still exists`);
    },
    { timeoutMs, intervalMs: 1000 },
  );
}

/** The underlay address of the node running faces-gui: where its hostPort listens. */
function guiAddress(): string {
  const node = kubectl([
    "get",
    "pods",
    "-n",
    NS,
    "-l",
    "app=faces-gui",
    "-o",
    "jsonpath={.items[0].spec.nodeName}",
  ]);
  if (!node) throw new Error("faces-gui has no node yet");
  const ip = kubectl([
    "get",
    "node",
    node,
    "-o",
    'jsonpath={.status.addresses[?(@.type=="InternalIP")].address}',
  ]);
  if (!ip) throw new Error(`node ${node} has no InternalIP`);
  return `http://${ip}:${GUI_HOST_PORT}`;
}

async function getCell(base: string, path: string, user?: string): Promise<FaceCell> {
  const res = await fetch(`${base}/face${path}`, { headers: user ? { "x-faces-user": user } : {} });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`GET /face${path}: ${res.status} ${body}`);
  return JSON.parse(body) as FaceCell;
}

let gui = "";

describe("faces demo without routes", () => {
  beforeAll(async () => {
    // a namespace left terminating by an earlier run must finish first
    if (namespaceExists()) await waitNamespaceGone(120_000);
    kubectl(["apply", "-f", APP]);
    try {
      kubectl(["wait", "-n", NS, "--for=condition=Available", "deployment", "--all", "--timeout=240s"]);
    } catch (err) {
      const pods = kubectl(["get", "pods", "-n", NS, "-o", "wide"]);
      throw new Error(`faces Deployments not available:\n${pods}\n${String(err)}`);
    }
    gui = guiAddress();
    // Wait until the whole grid answers healthy twice in a row: kube-proxy (and, when Trellis is
    // installed on the shared box, its agents) must have programmed every Service first. How long
    // that takes is not what this suite checks; what the grid shows once settled is.
    let healthyRounds = 0;
    await eventually(
      "two consecutive healthy rounds of the 16 cells",
      async () => {
        const cells = await Promise.allSettled(CELLS.map((p) => getCell(gui, p)));
        const bad = cells.flatMap((c) =>
          c.status === "rejected" ? [String(c.reason)] : c.value.errors?.length ? c.value.errors : [],
        );
        healthyRounds = bad.length ? 0 : healthyRounds + 1;
        if (healthyRounds < 2) throw new Error(bad[0] ?? "one healthy round so far");
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  });

  afterAll(async () => {
    kubectl(["delete", "namespace", NS, "--ignore-not-found", "--wait=false"]);
    await waitNamespaceGone(180_000);
  });

  it("runs the eight workloads, one replica each, behind port-80 Services with named ports", () => {
    const deployments = JSON.parse(kubectl(["get", "deployments", "-n", NS, "-o", "json"])) as {
      items: Array<{ metadata: { name: string }; status: { readyReplicas?: number } }>;
    };
    expect(deployments.items.map((d) => d.metadata.name).sort()).toEqual([...WORKLOADS].sort());
    for (const d of deployments.items) expect(d.status.readyReplicas).toBe(1);

    const services = JSON.parse(kubectl(["get", "services", "-n", NS, "-o", "json"])) as {
      items: Array<{
        metadata: { name: string };
        spec: { ports: Array<{ name: string; port: number; appProtocol?: string }> };
      }>;
    };
    for (const s of services.items) {
      const [port] = s.spec.ports;
      expect(port?.port).toBe(80);
      if (s.metadata.name.startsWith("color")) {
        expect(port).toMatchObject({ name: "grpc", appProtocol: "kubernetes.io/h2c" });
      } else {
        expect(port?.name).toBe("http");
      }
    }
    expect(kubectl(["get", "namespace", NS, "-o", "jsonpath={.metadata.labels.trellis\\.dev/capture}"])).toBe(
      "enabled",
    );
  });

  it("reaches the GUI page from the host through the hostPort", async () => {
    const page = await fetch(`${gui}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("x-faces-pod")).toMatch(/^faces-gui-/);
    const html = await page.text();
    expect(html).toContain('id="grid"');
    const script = await fetch(`${gui}/faces.js`);
    expect(script.status).toBe(200);
    expect(await script.text()).toContain("data-ready");
  });

  it("answers every cell grinning on blue, for any user, while no route exists", async () => {
    const cells: FaceCell[] = [];
    // 3 rounds × 16 cells × 2 users, each round in parallel (a call can take 1.5 s by DELAY_BUCKETS)
    for (let round = 0; round < 3; round++) {
      cells.push(...(await Promise.all(CELLS.flatMap((p) => [getCell(gui, p), getCell(gui, p, "heart")]))));
    }
    expect(cells).toHaveLength(96);
    for (const c of cells) {
      expect(c.errors).toBeUndefined();
      expect(c).toMatchObject({
        smiley: "&#x1F603;",
        smileyName: "Grinning",
        color: "#66CCEE",
        colorName: "blue",
      });
      expect(c.served.smiley.pod).toMatch(/^smiley-[a-z0-9]+-[a-z0-9]+$/);
      expect(c.served.color.pod).toMatch(/^color-[a-z0-9]+-[a-z0-9]+$/);
      expect(c.pod).toMatch(/^face-/);
    }
  });
});
