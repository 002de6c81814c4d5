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
    // the Service endpoints of face's upstreams must be programmed before the first cell is asked for
    await eventually(
      "a healthy cell through the GUI",
      async () => {
        const c = await getCell(gui, "/center/?row=1&col=1");
        if (c.errors?.length) throw new Error(c.errors.join("; "));
      },
      { timeoutMs: 60_000, intervalMs: 500 },
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

  it("answers every centre and edge cell grinning on blue (plain kube-proxy, no routes)", async () => {
    const paths = [
      "/center/?row=1&col=1",
      "/center/?row=2&col=2",
      "/edge/?row=0&col=0",
      "/edge/?row=3&col=2",
    ];
    const cells: FaceCell[] = [];
    // 5 rounds × 4 cells × 2 users; each round in parallel (a call can take 1.5 s by DELAY_BUCKETS)
    for (let round = 0; round < 5; round++) {
      cells.push(...(await Promise.all(paths.flatMap((p) => [getCell(gui, p), getCell(gui, p, "heart")]))));
    }
    expect(cells).toHaveLength(40);
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
