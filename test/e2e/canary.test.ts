// Progressive canaries on the cluster-in-a-box with faces (docs/canaries.md):
// examples/faces/routes/12-smiley-canary.yaml promotes smiley2 step by step to
// Succeeded; 12b against smiley3 (50 % errors) is rolled back to Failed and
// traffic returns to smiley. `trellis canary start` (the CLI as a process)
// creates Canaries with a comparison against stable and webhooks served by an
// echo pod in the box; the canary-action annotation pauses and promotes. The
// user's HTTPRoute spec stays byte-identical throughout. Traffic for the
// analysis comes from a loop of fetchCell calls.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectl, paths } from "../cluster/box.ts";
import { installTrellis, TRELLIS_NAMESPACE, uninstallTrellis } from "../cluster/trellis-install.ts";
import { echoWorkload } from "../support/echo-workload.ts";
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
    stepAppliedAt?: string;
    lastAnalysis?: {
      requests: number;
      errors: number;
      errorRate: number;
      result: string;
      stable?: { requests: number };
      comparison?: string;
    };
    webhooks?: { name: string; type: string; result: string; consecutiveFailures: number; message: string }[];
    lastGate?: { action: string; source: string };
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

const TRELLIS_CLI = join(FACES_ROUTES_DIR, "../../../packages/controller/src/cli/trellis.ts");

/** The `trellis` CLI from this checkout, against the box. */
const trellis = (...args: string[]) =>
  execFileSync(process.execPath, [TRELLIS_CLI, ...args, "--kubeconfig", paths().adminKubeconfig], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });

/** The CLI run expected to fail: its exit status and stderr. */
const trellisFails = (...args: string[]) => {
  const r = spawnSync(process.execPath, [TRELLIS_CLI, ...args, "--kubeconfig", paths().adminKubeconfig], {
    encoding: "utf8",
  });
  return { status: r.status, stderr: r.stderr };
};

/** The smiley HTTPRoute as the example file writes it, without the Canary document. */
const applySmileyRouteOnly = () => {
  const [route] = readFileSync(join(FACES_ROUTES_DIR, "12-smiley-canary.yaml"), "utf8").split(/^---$/m);
  kubectl(["apply", "-f", "-"], { input: route });
};

/** A webhook receiver in the box: the echo workload answers every POST with 200. */
const HOOKS_NAMESPACE = "canary-hooks";
async function deployWebhookReceiver(): Promise<{ serviceIP: string; podIP: string }> {
  kubectl(["apply", "-f", "-"], {
    input: `apiVersion: v1\nkind: Namespace\nmetadata: { name: ${HOOKS_NAMESPACE} }\n---${echoWorkload(HOOKS_NAMESPACE, "hooks")}`,
  });
  return eventually(
    "webhook receiver ready",
    () => {
      const podIP = kubectl([
        "-n",
        HOOKS_NAMESPACE,
        "get",
        "pods",
        "-l",
        "app=hooks",
        "-o",
        'jsonpath={range .items[?(@.status.containerStatuses[0].ready==true)]}{.status.podIP}{"\\n"}{end}',
      ]).trim();
      if (!podIP) throw new Error("hooks pod not ready");
      const serviceIP = kubectl([
        "-n",
        HOOKS_NAMESPACE,
        "get",
        "service",
        "hooks",
        "-o",
        "jsonpath={.spec.clusterIP}",
      ]);
      return { serviceIP, podIP: podIP.split("\n")[0]! };
    },
    { timeoutMs: 60_000, intervalMs: 500 },
  );
}

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
    kubectl(["delete", "namespace", HOOKS_NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=120s"]);
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
    expect(trellis("canary", "abort", "smiley2", "-n", FACES_NAMESPACE)).toContain(
      "abort requested (trellis.dev/canary-action=abort)",
    );
    await eventually(
      "aborted",
      () => {
        const a = canary("smiley2");
        if (a.status?.phase !== "Failed") throw new Error(`${a.status?.phase}: ${a.status?.message}`);
        expect(a.status?.canaryWeight).toBe(0);
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(events("smiley2")).toMatch(
      /Aborted: aborted by annotation trellis.dev\/canary-action=abort; traffic back to smiley/,
    );
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
  it("`trellis canary start` checks its input, creates a Canary judged against stable with an Analysis webhook, and it promotes", async () => {
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "--all", "--wait=true"]);
    applySmileyRouteOnly();
    const specBefore = routeSpec();
    const hooks = await deployWebhookReceiver();
    const flags = ["-n", FACES_NAMESPACE, "--stable", "smiley:80", "--canary", "smiley2:80"];

    const badPort = trellisFails(
      "canary",
      "start",
      ...flags,
      "--route",
      "httproute/smiley",
      "--stable",
      "smiley",
    );
    expect(badPort.status).toBe(1);
    expect(badPort.stderr).toMatch(/--stable "smiley" is not SERVICE:PORT\n {2}fix: --stable smiley:80/);
    const noRoute = trellisFails(
      "canary",
      "start",
      ...flags,
      "--route",
      "httproute/smiley-typo",
      "--steps",
      "50",
    );
    expect(noRoute.status).toBe(1);
    expect(noRoute.stderr).toMatch(/HTTPRoute faces\/smiley-typo not found\n {2}fix: apply the route first/);
    expect(() => canary("smiley2")).toThrow(/not found/i);

    const out = trellis(
      "canary",
      "start",
      ...flags,
      "--route",
      "httproute/smiley",
      "--steps",
      "30,60",
      "--interval",
      "5s",
      "--min-requests",
      "20",
      "--max-error-rate",
      "5%",
      "--compare-error-rate-increase",
      "0.05",
      "--compare-p99-ratio",
      "50",
      "--webhook",
      `name=echo,type=Analysis,url=http://${hooks.serviceIP}/analysis,timeout=5`,
    );
    expect(out).toContain(
      "canary faces/smiley2 created: HTTPRoute faces/smiley rule 0, smiley → smiley2 in steps 30, 60 %",
    );
    expect(out).toContain("watch it: trellis canary status --watch smiley2 -n faces");
    // The same name again, this time from the example file: refused, and the file's route is left alone.
    const again = trellisFails("canary", "start", "-f", join(FACES_ROUTES_DIR, "12-smiley-canary.yaml"));
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/also holds HTTPRoute\/smiley: not applied/);
    expect(again.stderr).toMatch(/canary faces\/smiley2 already exists\n {2}fix:/);

    const traffic = startTraffic();
    try {
      await eventually(
        "canary Succeeded",
        () => {
          const c = canary("smiley2");
          expect(routeSpec()).toBe(specBefore);
          if (c.status?.phase === "Failed") throw new Error(`failed: ${c.status.message}`);
          if (c.status?.phase !== "Succeeded") throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        },
        { timeoutMs: 120_000, intervalMs: 250 },
      );
    } finally {
      await traffic.stop();
    }
    const c = canary("smiley2");
    expect(c.status?.webhooks).toEqual([
      expect.objectContaining({ name: "echo", type: "Analysis", result: "Passed", consecutiveFailures: 0 }),
    ]);
    expect(c.status?.webhooks?.[0]?.message).toMatch(/^HTTP 200 in \d+ ms$/);
    expect(c.status?.lastAnalysis?.stable?.requests).toBeGreaterThanOrEqual(20);
    expect(c.status?.lastAnalysis?.comparison).toMatch(/^Passed: error rate/);
    expect(events("smiley2")).toMatch(/StepPassed: .*against stable: error rate/);
    const status = trellis("canary", "status", "smiley2", "-n", FACES_NAMESPACE);
    expect(status).toContain("webhook echo (Analysis): Passed, HTTP 200");
    expect(status).toContain("vs stable: Passed");
    // --watch on a pipe prints plain blocks, one per refresh.
    const watch = spawnSync(
      process.execPath,
      [
        TRELLIS_CLI,
        "canary",
        "status",
        "--watch",
        "smiley2",
        "-n",
        FACES_NAMESPACE,
        "--kubeconfig",
        paths().adminKubeconfig,
      ],
      { encoding: "utf8", timeout: 5000 },
    );
    expect(watch.stdout).not.toContain("\x1b[");
    expect(watch.stdout.match(/^--- \d{4}-/gm)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(watch.stdout).toContain("phase Succeeded");
    expect(routeSpec()).toBe(specBefore);
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "smiley2", "--wait=true"]);
  });

  it("the canary-action annotation: `trellis canary pause` holds a run, `kubectl annotate … promote` finishes it at once", async () => {
    applySmileyRouteOnly();
    const specBefore = routeSpec();
    const generation = routeGeneration();
    trellis(
      "canary",
      "start",
      "-n",
      FACES_NAMESPACE,
      "--route",
      "httproute/smiley",
      "--stable",
      "smiley:80",
      "--canary",
      "smiley2:80",
      "--steps",
      "20,50,80",
      "--interval",
      "10m",
    );
    await eventually(
      "step 1 applied",
      () => {
        const c = canary("smiley2");
        if (c.status?.phase !== "Progressing" || !c.status.stepAppliedAt)
          throw new Error(`${c.status?.phase}: ${c.status?.message}`);
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(trellis("canary", "pause", "smiley2", "-n", FACES_NAMESPACE)).toContain(
      "pause requested (trellis.dev/canary-action=pause)",
    );
    await eventually(
      "paused",
      () => {
        const c = canary("smiley2");
        if (c.status?.phase !== "Paused") throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        expect(c.status.lastGate).toMatchObject({ action: "pause", source: "annotation" });
        expect(c.status.canaryWeight).toBe(20);
      },
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    const annotated = Date.now();
    kubectl([
      "-n",
      FACES_NAMESPACE,
      "annotate",
      "--overwrite",
      "canary",
      "smiley2",
      "trellis.dev/canary-action=promote",
    ]);
    await eventually(
      "Succeeded after the promote annotation",
      () => {
        const c = canary("smiley2");
        if (c.status?.phase !== "Succeeded") throw new Error(`${c.status?.phase}: ${c.status?.message}`);
      },
      { timeoutMs: 20_000, intervalMs: 250 },
    );
    // A 10-minute interval, yet done within seconds: the gate, not the analysis, finished it.
    expect(Date.now() - annotated).toBeLessThan(15_000);
    expect(canary("smiley2").status?.lastGate).toMatchObject({ action: "promote", source: "annotation" });
    expect(events("smiley2")).toMatch(/Promoting: promoted by annotation trellis.dev\/canary-action=promote/);
    expect(await share((x) => x.smiley === "HeartEyes")).toBe(1);
    expect(routeSpec()).toBe(specBefore);
    expect(routeGeneration()).toBe(generation);
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "smiley2", "--wait=true"]);
  });

  it("a PreStep webhook that cannot be reached holds the first step, then fails the Canary at its threshold; the Rollback webhook is told", async () => {
    applySmileyRouteOnly();
    const hooks = await deployWebhookReceiver();
    trellis(
      "canary",
      "start",
      "smiley3",
      "-n",
      FACES_NAMESPACE,
      "--route",
      "httproute/smiley",
      "--stable",
      "smiley:80",
      "--canary",
      "smiley3:80",
      "--steps",
      "50",
      "--interval",
      "5s",
      "--webhook",
      // Nothing listens on port 9 of the receiver pod: the connection is refused.
      `name=gate,type=PreStep,url=http://${hooks.podIP}:9/hook,timeout=2,failures=2`,
      "--webhook",
      `name=notify,type=Rollback,url=http://${hooks.serviceIP}/rollback`,
    );
    await eventually(
      "first PreStep failure reported",
      () => {
        const c = canary("smiley3");
        const gate = c.status?.webhooks?.find((h) => h.name === "gate");
        if (gate?.consecutiveFailures !== 1) throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        expect(c.status?.phase).toBe("Initializing");
        // The step waits, saying why: first the failure, then the countdown to the retry.
        expect(c.status?.message).toMatch(/webhook gate.*cannot POST to http:\/\/[\d.]+:9\/hook/);
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    await eventually(
      "Failed at the threshold",
      () => {
        const c = canary("smiley3");
        if (c.status?.phase !== "Failed") throw new Error(`${c.status?.phase}: ${c.status?.message}`);
        expect(c.status.canaryWeight).toBe(0);
        expect(c.status.message).toMatch(/PreStep webhook gate failed 2 time\(s\) in a row/);
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    await eventually(
      "Rollback webhook called",
      () => expect(events("smiley3")).toMatch(/WebhookCalled: Rollback webhook notify: HTTP 200/),
      { timeoutMs: 15_000, intervalMs: 250 },
    );
    expect(events("smiley3")).toMatch(/WebhookFailed: .*PreStep webhook gate failed/);
    // The canary never got traffic.
    expect(await share((x) => x.smiley === "Grinning")).toBe(1);
    kubectl(["-n", FACES_NAMESPACE, "delete", "canary", "smiley3", "--wait=true"]);
  });
});
