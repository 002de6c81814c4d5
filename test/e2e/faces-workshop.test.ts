// The faces workshop (FACES.md), step by step, on the cluster-in-a-box with
// Trellis installed from source: each step applies the walkthrough's YAML with
// kubectl, waits until every agent has applied the resulting table, and then
// checks what face returns through faces-gui, as the browser would.
//
// Exact expectations are checked on every cell. Weighted ones are sampled
// (SAMPLES requests) and must fall within ±5 standard deviations of the
// weight (binomial): a correct mesh fails that about once in 1.7 million runs,
// while a mesh that ignores the weight, or flips it, fails every time.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl } from "../cluster/box.ts";
import { installTrellis, TRELLIS_NAMESPACE, uninstallTrellis } from "../cluster/trellis-install.ts";
import { eventually } from "../support/eventually.ts";
import {
  type Cell,
  deployFaces,
  FACES_NAMESPACE,
  FACES_ROUTES_DIR,
  fetchCell,
  guiAddress,
  isCenter,
} from "../support/faces-cluster.ts";

const SAMPLES = 400;
const CONCURRENCY = 32;
let gui = "";

const route = (file: string) => join(FACES_ROUTES_DIR, file);

function controllerAdmin(): string {
  const ip = kubectl([
    "-n",
    TRELLIS_NAMESPACE,
    "get",
    "pods",
    "-l",
    "app=trellis-controller",
    "-o",
    "jsonpath={.items[0].status.podIP}",
  ]).trim();
  return `http://${ip}:9090`;
}

async function tableVersions(): Promise<string> {
  const res = await fetch(`${controllerAdmin()}/debug/tables`);
  const body = (await res.json()) as {
    tables: { node: string; version: { epoch: number; number: number } }[];
  };
  return JSON.stringify(body.tables.map((t) => [t.node, t.version]));
}

/** Runs a kubectl change and waits until it produced new tables and every agent ACKed them. */
async function meshApplies(...kubectlArgs: string[][]): Promise<void> {
  const before = await tableVersions();
  for (const args of kubectlArgs) kubectl(args);
  await eventually(
    "new tables applied by every agent",
    async () => {
      if ((await tableVersions()) === before) throw new Error("no new table version yet");
      const rows = (await (await fetch(`${controllerAdmin()}/debug/agents`)).json()) as {
        node: string;
        desired: string;
        applied: string;
        connected: boolean;
      }[];
      const behind = rows.filter((r) => !r.connected || r.desired !== r.applied);
      if (rows.length < 2 || behind.length > 0) throw new Error(JSON.stringify(rows));
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}

const apply = (file: string) => meshApplies(["apply", "-f", route(file)]);
const remove = (...kinds: string[]) =>
  meshApplies(...kinds.map((k) => ["-n", FACES_NAMESPACE, "delete", k, "--ignore-not-found"]));

/** `n` cells drawn round-robin from the given positions, CONCURRENCY in flight. */
async function sample(positions: [number, number][], n = SAMPLES, user = ""): Promise<Cell[]> {
  const out: Cell[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const [row, col] = positions[i % positions.length] ?? [0, 0];
      out.push(await fetchCell(gui, row, col, user, 15_000));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return out;
}

const ALL: [number, number][] = [];
for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) ALL.push([r, c]);
const CENTER = ALL.filter(([r, c]) => isCenter(r, c));
const EDGE = ALL.filter(([r, c]) => !isCenter(r, c));

function share(cells: Cell[], pred: (c: Cell) => boolean): number {
  return cells.filter(pred).length / cells.length;
}

/** Asserts a binomial share within ±5 standard deviations of p. */
function expectShare(cells: Cell[], pred: (c: Cell) => boolean, p: number, what: string): void {
  const sd = Math.sqrt((p * (1 - p)) / cells.length);
  const got = share(cells, pred);
  expect(
    got,
    `${what}: ${(got * 100).toFixed(1)} % of ${cells.length}, expected ${p * 100} % ± ${(5 * sd * 100).toFixed(1)}`,
  ).toBeGreaterThanOrEqual(p - 5 * sd);
  expect(got, `${what}: ${(got * 100).toFixed(1)} % of ${cells.length}`).toBeLessThanOrEqual(p + 5 * sd);
}

const tally = (cells: Cell[]) =>
  JSON.stringify(
    cells.reduce<Record<string, number>>((acc, c) => {
      const k = c.status === 200 ? `${c.smiley}/${c.color}` : `status ${c.status}`;
      acc[k] = (acc[k] ?? 0) + 1;
      return acc;
    }, {}),
  );

/** Every cell (all 16 positions, several rounds) satisfies `pred`. */
async function expectEvery(
  positions: [number, number][],
  pred: (c: Cell) => boolean,
  what: string,
  user = "",
) {
  const cells = await sample(positions, positions.length * 4, user);
  expect(cells.every(pred), `${what}: ${tally(cells)}`).toBe(true);
}

describe("faces workshop", () => {
  beforeAll(async () => {
    await installTrellis({ debugHeaders: true });
    await deployFaces();
    gui = guiAddress();
  });

  afterAll(async () => {
    kubectl(["delete", "namespace", FACES_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s"]);
    await uninstallTrellis();
  });

  it("step 1: with no routes every cell is grinning on blue", async () => {
    await eventually(
      "full grid",
      () => expectEvery(ALL, (c) => c.smiley === "Grinning" && c.color === "blue", "step 1"),
      {
        timeoutMs: 60_000,
      },
    );
  });

  it("step 2: HTTPRoute smiley → smiley2 turns every face to heart-eyes", async () => {
    await apply("02-smiley-route.yaml");
    await expectEvery(ALL, (c) => c.smiley === "HeartEyes" && c.color === "blue", "step 2");
  });

  it("step 3: GRPCRoute color → color2 turns every cell green; deleting both routes restores step 1", async () => {
    await apply("03-color-route.yaml");
    await expectEvery(ALL, (c) => c.smiley === "HeartEyes" && c.color === "green", "step 3");
    await remove("httproute/smiley", "grpcroute/color");
    await expectEvery(ALL, (c) => c.smiley === "Grinning" && c.color === "blue", "step 3 after delete");
  });

  it("step 4: smiley canary 90/10, 50/50, 0/100; scaling smiley to 0 at 0/100 changes nothing", async () => {
    const heart = (c: Cell) => c.smiley === "HeartEyes";
    await apply("04a-smiley-canary-90-10.yaml");
    expectShare(await sample(ALL), heart, 0.1, "90/10");
    await apply("04b-smiley-canary-50-50.yaml");
    expectShare(await sample(ALL), heart, 0.5, "50/50");
    await apply("04c-smiley-canary-0-100.yaml");
    await expectEvery(ALL, heart, "0/100");
    await meshApplies(["-n", FACES_NAMESPACE, "scale", "deployment/smiley", "--replicas=0"]);
    await expectEvery(ALL, heart, "0/100 with smiley scaled to 0");
    kubectl(["-n", FACES_NAMESPACE, "scale", "deployment/smiley", "--replicas=1"]);
    await remove("httproute/smiley");
    await eventually("smiley back", () => expectEvery(ALL, (c) => c.smiley === "Grinning", "smiley back"), {
      timeoutMs: 60_000,
    });
  });

  it("step 5: color canary 75/25 then 50/50", async () => {
    const green = (c: Cell) => c.color === "green";
    await apply("05a-color-canary-75-25.yaml");
    expectShare(await sample(ALL), green, 0.25, "75/25");
    await apply("05b-color-canary-50-50.yaml");
    expectShare(await sample(ALL), green, 0.5, "50/50");
  });

  it("step 6: smiley-edge sends /edge to smiley2: edges heart-eyes, centre grinning", async () => {
    await apply("06-smiley-edge.yaml");
    await expectEvery(EDGE, (c) => c.smiley === "HeartEyes", "step 6 edges");
    await expectEvery(CENTER, (c) => c.smiley === "Grinning", "step 6 centre");
  });

  it("step 7: edges split smiley3/smiley2: half heart-eyes, the rest rolling-eyes or cursing (smiley3 fails half)", async () => {
    await apply("07-smiley-edge-split.yaml");
    const edges = await sample(EDGE);
    expectShare(edges, (c) => c.smiley === "HeartEyes", 0.5, "heart-eyes on edges");
    // smiley3's half: rolling-eyes, or cursing when it fails. Its breaker may open on the
    // errors and turn more of that half to cursing, so only the half is a share.
    expectShare(edges, (c) => c.smiley === "RollingEyes" || c.smiley === "Cursing", 0.5, "smiley3's half");
    expect(
      edges.some((c) => c.smiley === "RollingEyes"),
      tally(edges),
    ).toBe(true);
    expect(
      edges.some((c) => c.smiley === "Cursing"),
      tally(edges),
    ).toBe(true);
    await expectEvery(CENTER, (c) => c.smiley === "Grinning", "step 7 centre");
  });

  it("step 8: color-edge sends ColorService/Edge to color2: edges green, centre still on the 50/50 canary", async () => {
    await apply("08-color-edge.yaml");
    await expectEvery(EDGE, (c) => c.color === "green", "step 8 edges");
    expectShare(await sample(CENTER), (c) => c.color === "green", 0.5, "step 8 centre green");
  });

  it("step 9: smiley-a-b: user heart sees heart-eyes, others grinning", async () => {
    // The edge split of steps 6–7 would otherwise win on /edge (a longer path match beats a header match).
    await remove("httproute/smiley-edge");
    await apply("09-smiley-a-b.yaml");
    await expectEvery(ALL, (c) => c.smiley === "HeartEyes", "step 9 heart", "heart");
    await expectEvery(ALL, (c) => c.smiley === "Grinning", "step 9 others", "someone");
  });

  it("step 10: color-a-b for user heart: centre darkblue, edges stay green (color-edge is older)", async () => {
    await apply("10-color-a-b.yaml");
    await expectEvery(CENTER, (c) => c.color === "darkblue", "step 10 heart centre", "heart");
    await expectEvery(EDGE, (c) => c.color === "green", "step 10 heart edges", "heart");
    await expectEvery(EDGE, (c) => c.color === "green", "step 10 others' edges", "someone");
  });

  it("step 11: a 300 ms request timeout on smiley: slow smiley calls end as 504 at face (sleeping), fast ones succeed", async () => {
    // Older smiley routes would win over the timeout route's equally specific rule.
    await remove("httproute/smiley-a-b");
    await apply("11-smiley-timeout.yaml");
    const cells = await Promise.all(
      Array.from({ length: 160 }, async (_, i) => {
        const [row, col] = ALL[i % ALL.length] ?? [0, 0];
        const t = performance.now();
        const cell = await fetchCell(gui, row, col, "", 15_000);
        return { ...cell, ms: performance.now() - t };
      }),
    );
    // Buckets 500 and 1500 of the 9 exceed 300 ms: 2/9 of smiley calls time out.
    expectShare(cells, (c) => c.smiley === "Sleeping", 2 / 9, "sleeping");
    expect(
      cells.every((c) => c.smiley === "Sleeping" || c.smiley === "Grinning"),
      tally(cells),
    ).toBe(true);
    // A cell is sleeping only after the deadline passed (face itself sets no timeout).
    for (const c of cells.filter((x) => x.smiley === "Sleeping")) expect(c.ms).toBeGreaterThanOrEqual(290);
  });
});
