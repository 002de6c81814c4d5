// Progressive canaries on the cluster-in-a-box with faces (docs/canaries.md):
// examples/faces/routes/12-smiley-canary.yaml promotes smiley2 step by step to
// Succeeded; 12b against smiley3 (50 % errors) is rolled back to Failed and
// traffic returns to smiley. The user's HTTPRoute spec stays byte-identical
// throughout. Traffic for the analysis comes from a loop of fetchCell calls.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl, paths } from "../cluster/box.ts";
import { installTrellis, TRELLIS_NAMESPACE, uninstallTrellis } from "../cluster/trellis-install.ts";
import { eventually } from "../support/eventually.ts";
import {
  type Cell,
  deployFaces,
  FACES_NAMESPACE,
  FACES_ROUTES_DIR,
  fetchCell,
  guiAddress,
} from "../support/faces-cluster.ts";

let gui = "";

interface CanaryView {
  spec: unknown;
  status?: {
    phase?: string;
    canaryWeight?: number;
    step?: number;
    message?: string;
    lastAnalysis?: { requests: number; errors: number; errorRate: number; result: string };
  };
}

const canary = (name: string): CanaryView =>
  JSON.parse(kubectl(["-n", FACES_NAMESPACE, "get", "canary", name, "-o", "json"])) as CanaryView;
const routeSpec = () =>
  kubectl(["-n", FACES_NAMESPACE, "get", "httproute", "smiley", "-o", "jsonpath={.spec}"]);
const routeGeneration = () =>
  kubectl(["-n", FACES_NAMESPACE, "get", "httproute", "smiley", "-o", "jsonpath={.metadata.generation}"]);
const events = (name: string, uid = "") =>
  kubectl([
    "-n",
    FACES_NAMESPACE,
    "get",
    "events",
    "--field-selector",
    `involvedObject.kind=Canary,involvedObject.name=${name}${uid ? `,involvedObject.uid=${uid}` : ""}`,
    "-o",
    'jsonpath={range .items[*]}{.reason}: {.message}{"\\n"}{end}',
  ]);

/** The `trellis` CLI from this checkout, against the box. */
const trellis = (...args: string[]) =>
  execFileSync(
    process.execPath,
    [
      join(FACES_ROUTES_DIR, "../../../packages/controller/src/cli/trellis.ts"),
      ...args,
      "--kubeconfig",
      paths().adminKubeconfig,
    ],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );

/** Background traffic through faces-gui (8 in flight) so the agents report canary requests. */
function startTraffic(): { cells: Cell[]; stop: () => Promise<void> } {
  let running = true;
  const cells: Cell[] = [];
  const worker = async (i: number) => {
    let n = i;
    while (running) {
      n++;
      try {
        cells.push(await fetchCell(gui, n % 4, (n >> 2) % 4, "", 5000));
      } catch {
        await sleep(50);
      }
    }
  };
  const workers = Array.from({ length: 8 }, (_, i) => worker(i));
  return {
    cells,
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}

/** Samples `n` cells and returns the share that satisfies `pred`. */
async function share(pred: (c: Cell) => boolean, n = 64): Promise<number> {
  const cells = await Promise.all(
    Array.from({ length: n }, (_, i) => fetchCell(gui, i % 4, (i >> 2) % 4, "", 10_000)),
  );
  return cells.filter(pred).length / n;
}

describe("progressive canaries", () => {
  beforeAll(async () => {
    await installTrellis({ debugHeaders: true });
    await deployFaces();
    gui = guiAddress();
    await eventually(
      "faces answers",
      async () => {
        if ((await share((c) => c.smiley === "Grinning", 16)) < 1) throw new Error("not all grinning yet");
      },
      { timeoutMs: 60_000 },
    );
  });

  afterAll(async () => {
    kubectl(["delete", "namespace", FACES_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s"]);
    await uninstallTrellis();
  });

  it("smiley → smiley2 steps through 20/50/80 and reaches 100 % (Succeeded); the route spec never changes", async () => {
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "12-smiley-canary.yaml")]);
    await eventually("route exists", () => routeSpec(), { timeoutMs: 10_000 });
    const specBefore = routeSpec();
    const generation = routeGeneration();
    const traffic = startTraffic();
    const seen = new Set<number>();
    try {
      await eventually(
        "canary Succeeded",
        () => {
          const c = canary("smiley2");
          if (c.status?.canaryWeight !== undefined) seen.add(c.status.canaryWeight);
          expect(routeSpec()).toBe(specBefore);
          if (c.status?.phase === "Failed") throw new Error(`failed: ${c.status.message}`);
          if (c.status?.phase !== "Succeeded") throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        },
        { timeoutMs: 150_000, intervalMs: 250 },
      );
    } finally {
      await traffic.stop();
    }
    // Every step was visited (none skipped), then 100 %.
    expect([...seen].sort((a, b) => a - b)).toEqual(expect.arrayContaining([20, 50, 80, 100]));
    // Some heart-eyes were served along the way, and now all of them.
    expect(traffic.cells.some((c) => c.smiley === "HeartEyes")).toBe(true);
    expect(await share((c) => c.smiley === "HeartEyes")).toBe(1);
    const c = canary("smiley2");
    expect(c.status?.lastAnalysis?.result).toBe("Passed");
    expect(c.status?.lastAnalysis?.requests).toBeGreaterThanOrEqual(20);
    const ev = events("smiley2");
    expect(ev).toMatch(/StepApplied/);
    expect(ev).toMatch(/StepPassed: .*requests/);
    expect(ev).toMatch(/Succeeded/);
    expect(routeSpec()).toBe(specBefore);
    expect(routeGeneration()).toBe(generation);

    // Deleting the Canary restores the route as written: every face grinning again.
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "smiley2", "--wait=true"]);
    await eventually(
      "route as written",
      async () => {
        const s = await share((x) => x.smiley === "Grinning");
        if (s < 1) throw new Error(`grinning share ${s}`);
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(routeSpec()).toBe(specBefore);
  });

  it("without traffic a step waits (status says why), neither passing nor failing; `trellis canary abort` rolls back", async () => {
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "12-smiley-canary.yaml")]);
    await eventually(
      "waiting for traffic",
      () => {
        const c = canary("smiley2");
        if (!/of 20 requests needed before judging/.test(c.status?.message ?? ""))
          throw new Error(`${c.status?.phase}: ${c.status?.message}`);
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    await sleep(3000);
    const c = canary("smiley2");
    expect(c.status).toMatchObject({ phase: "Progressing", step: 0, canaryWeight: 20 });
    expect(c.status?.lastAnalysis?.result).toBe("Waiting");
    const out = trellis("canary", "status", "smiley2", "-n", FACES_NAMESPACE);
    expect(out).toContain("phase Progressing");
    expect(out).toContain("smiley 80 % [####................] smiley2 20 %   step 1/3");
    expect(out).toMatch(/of 20 requests needed/);
    expect(trellis("canary", "abort", "smiley2", "-n", FACES_NAMESPACE)).toContain("abort requested");
    await eventually(
      "aborted",
      () => {
        const a = canary("smiley2");
        if (a.status?.phase !== "Failed") throw new Error(`${a.status?.phase}: ${a.status?.message}`);
        expect(a.status?.canaryWeight).toBe(0);
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(events("smiley2")).toMatch(/Aborted: aborted by spec.abort; traffic back to smiley/);
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "smiley2", "--wait=true"]);
  });

  it("smiley → smiley3 (50 % errors) is rolled back to Failed and traffic returns to smiley", async () => {
    const specBefore = routeSpec();
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "12b-smiley3-canary.yaml")]);
    expect(routeSpec()).toBe(specBefore);
    const traffic = startTraffic();
    let appliedAt = 0;
    try {
      await eventually(
        "canary Failed",
        () => {
          const c = canary("smiley3");
          expect(routeSpec()).toBe(specBefore);
          if (!appliedAt && (c.status as { stepAppliedAt?: string } | undefined)?.stepAppliedAt)
            appliedAt = Date.now();
          if (c.status?.phase !== "Failed") throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        },
        { timeoutMs: 90_000, intervalMs: 250 },
      );
    } finally {
      await traffic.stop();
    }
    const c = canary("smiley3");
    expect(c.status?.canaryWeight).toBe(0);
    expect(c.status?.step).toBe(0);
    expect(c.status?.lastAnalysis?.result).toBe("Failed");
    expect(c.status?.lastAnalysis?.errorRate).toBeGreaterThan(0.05);
    expect(c.status?.message).toMatch(/error rate .* > max 5.0 %/);
    // Rolled back within two intervals (10 s each) of the step being applied.
    expect(Date.now() - appliedAt).toBeLessThan(20_000 + 5_000);
    expect(events("smiley3")).toMatch(/AnalysisFailed: .*error rate.*traffic back to smiley/);
    // Traffic is back on smiley (one table push): no rolling-eyes, no cursing.
    await eventually(
      "traffic back to smiley",
      async () => {
        const s = await share((x) => x.smiley === "Grinning");
        if (s < 1) throw new Error(`grinning share ${s}`);
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(routeSpec()).toBe(specBefore);
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "smiley3"]);
  });

  it("GRPCRoute color → color2 (stepWeight 25 up to 50) promotes to Succeeded", async () => {
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "12c-color-canary.yaml")]);
    const spec = () =>
      kubectl(["-n", FACES_NAMESPACE, "get", "grpcroute", "color", "-o", "jsonpath={.spec}"]);
    await eventually("route exists", () => spec(), { timeoutMs: 10_000 });
    const specBefore = spec();
    const traffic = startTraffic();
    try {
      await eventually(
        "color canary Succeeded",
        () => {
          const c = canary("color2");
          if (c.status?.phase === "Failed") throw new Error(`failed: ${c.status.message}`);
          if (c.status?.phase !== "Succeeded") throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
    } finally {
      await traffic.stop();
    }
    expect(await share((c) => c.color === "green")).toBe(1);
    expect(spec()).toBe(specBefore);
    expect(events("color2")).toMatch(/Promoting: step 2\/2 \(color2 50 %\) passed/);
  });

  it("a controller killed mid-canary resumes at the same step and still analyses it", async () => {
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "--all", "--wait=true"]);
    kubectl(["-n", FACES_NAMESPACE, "delete", "grpcroute", "color", "--ignore-not-found"]);
    kubectl(["apply", "-f", join(FACES_ROUTES_DIR, "12-smiley-canary.yaml")]);
    const weights: number[] = [];
    const note = () => {
      const c = canary("smiley2");
      const w = c.status?.canaryWeight;
      if (w !== undefined && weights.at(-1) !== w) weights.push(w);
      return c;
    };
    const traffic = startTraffic();
    try {
      await eventually(
        "step 2 applied",
        () => {
          const c = note();
          if (c.status?.step !== 1 || !(c.status as { stepAppliedAt?: string }).stepAppliedAt)
            throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        },
        { timeoutMs: 90_000, intervalMs: 250 },
      );
      kubectl(["-n", TRELLIS_NAMESPACE, "delete", "pod", "-l", "app=trellis-controller", "--wait=false"]);
      await eventually(
        "canary Succeeded after the restart",
        () => {
          const c = note();
          if (c.status?.phase !== "Succeeded") throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        },
        { timeoutMs: 180_000, intervalMs: 250 },
      );
    } finally {
      await traffic.stop();
    }
    // Never back to an earlier step, none skipped.
    expect(weights).toEqual([20, 50, 80, 100]);
    const uid = kubectl([
      "-n",
      FACES_NAMESPACE,
      "get",
      "canary",
      "smiley2",
      "-o",
      "jsonpath={.metadata.uid}",
    ]);
    const ev = events("smiley2", uid);
    expect(ev).toMatch(/step 2\/3 \(smiley2 50 %\) passed: \d+ requests/);
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "smiley2"]);
  });
});
