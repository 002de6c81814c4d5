// Controller benchmark: `node packages/controller/bench/run.ts [--profile]`.
//
// Synthetic cluster (bench/synthetic-cluster.ts): 1,000 services, 10,000
// endpoints, 2,000 routes, 100 nodes. Each phase runs in its own process
// (with --expose-gc) so memory figures are not mixed:
//   controller  what trellis-controller runs: RoutingState + VersionedTables.
//               Initial full compute, then 100 route changes and 100
//               EndpointSlice changes, each timed from apply() until every
//               affected node has its new versioned table; RSS after a GC
//               with the raw objects still held (as the informer caches hold
//               them).
//   reference   the from-scratch path (computeTables + NodeTable.encode of
//               every table), as the controller did before RoutingState.
// Results: bench/results/controller-bench.{json,md}. --profile writes a V8
// CPU profile of the 100 measured route changes to
// bench/results/profiles/route-changes.cpuprofile (open in Chrome DevTools, or
// summarise with bench/profile-summary.ts).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type ProfileSummary, summariseProfile } from "./profile-summary.ts";

const here = dirname(fileURLToPath(import.meta.url));
const results = join(here, "results");

interface PhaseResult {
  readonly [key: string]: unknown;
}

/** The V8 flag trellis-controller runs with (main.ts shebang; NODE_OPTIONS in a Deployment). */
const CONTROLLER_FLAGS = ["--max-semi-space-size=8"];

function runPhase(phase: string, flags: string[], env: Record<string, string> = {}): PhaseResult {
  const out = execFileSync(process.execPath, ["--expose-gc", ...flags, join(here, "phases.ts"), phase], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, ...env },
  });
  return JSON.parse(out) as PhaseResult;
}

const profile = process.argv.includes("--profile");
mkdirSync(results, { recursive: true });
const profilePath = join(results, "profiles", "route-changes.cpuprofile");
if (profile) mkdirSync(dirname(profilePath), { recursive: true });

process.stderr.write("controller phase…\n");
const controller = runPhase("controller", CONTROLLER_FLAGS);
let profileSummary: ProfileSummary | undefined;
if (profile) {
  // A separate run: the profiler slows what it watches, so its times are not the figures above.
  process.stderr.write("controller phase under the CPU profiler…\n");
  runPhase("controller", CONTROLLER_FLAGS, { TRELLIS_BENCH_PROFILE: profilePath });
  profileSummary = summariseProfile(profilePath, 12);
}
process.stderr.write("controller phase with Node's default heap flags…\n");
const controllerDefaultFlags = runPhase("controller", []);
process.stderr.write("reference phase…\n");
const reference = runPhase("reference", []);

const summary = {
  measuredAt: new Date().toISOString(),
  command: `node packages/controller/bench/run.ts${profile ? " --profile" : ""}`,
  machine: { cpu: os.cpus()[0]?.model ?? "?", cpus: os.cpus().length, node: process.version },
  targets: { routeChangeP99Ms: 50, rssMB: 300 },
  controllerFlags: CONTROLLER_FLAGS.join(" "),
  controller,
  controllerDefaultFlags,
  reference,
  ...(profileSummary ? { routeChangeProfile: profileSummary } : {}),
};
writeFileSync(join(results, "controller-bench.json"), `${JSON.stringify(summary, null, 2)}\n`);

const c = controller as Record<string, Record<string, number>>;
const d = controllerDefaultFlags as Record<string, Record<string, number>>;
const r = reference as Record<string, Record<string, number>>;
const ms = (x: number | undefined) => (x === undefined ? "?" : `${x.toFixed(1)} ms`);
const mb = (x: number | undefined) => (x === undefined ? "?" : `${x.toFixed(0)} MB`);
const md = `# Controller benchmark

Measured ${summary.measuredAt} with \`${summary.command}\` on ${summary.machine.cpu} (${summary.machine.cpus} CPUs), Node ${summary.machine.node}.

Synthetic cluster: ${Object.entries(c.cluster ?? {})
  .map(([k, v]) => `${v} ${k}`)
  .join(", ")}.

| what | figure | target |
|---|---|---|
| one route change → every affected table recomputed and versioned, p50 | ${ms(c.routeChange?.p50)} | |
| one route change, p99 (${c.routeChange?.samples} changes) | **${ms(c.routeChange?.p99)}** | < 50 ms |
| nodes with a new table version per route change (mean) | ${c.routeChange?.meanChangedNodes?.toFixed(1)} | |
| … plus encoding the changed tables for the agents, p50 / p99 | ${ms(c.routeChangeWithEncode?.p50)} / ${ms(c.routeChangeWithEncode?.p99)} | |
| one EndpointSlice change → tables, p50 / p99 (${c.sliceChange?.samples} changes) | ${ms(c.sliceChange?.p50)} / ${ms(c.sliceChange?.p99)} | |
| controller RSS after start-up and all changes (after GC; raw objects held as the informers would), \`${CONTROLLER_FLAGS.join(" ")}\` | **${mb(c.memory?.rssMB)}** | < 300 MB |
| … V8 heap used / total, external | ${mb(c.memory?.heapUsedMB)} / ${mb(c.memory?.heapTotalMB)}, ${mb(c.memory?.externalMB)} | |
| … the same with Node's default heap flags: RSS, heap used / total | ${mb(d.memory?.rssMB)}, ${mb(d.memory?.heapUsedMB)} / ${mb(d.memory?.heapTotalMB)} | |
| highest RSS during ${c.churn?.changes} back-to-back route and EndpointSlice changes (no GC pauses; ${ms(c.churn?.ms)} in all) | **${mb(c.churn?.maxRssMB)}** | < 300 MB |
| … the same with Node's default heap flags | ${mb(d.churn?.maxRssMB)} | |
| peak RSS of the phase (includes encoding every table, below) | ${mb(c.memory?.peakRssMB)} | |
| full compute at start-up (RoutingState, every object applied at once) | ${ms(c.initial?.applyMs)} | |
| first versioning of all ${c.cluster?.Node} tables | ${ms(c.initial?.versionMs)} | |
| content digests of all ${c.cluster?.Node} tables (computed on demand, e.g. by /debug/tables) | ${ms(c.initial?.digestAllMs)} | |
| encoding all ${c.cluster?.Node} tables from shared parts (${mb(c.initial?.allTablesMB)} in total) | ${ms(c.initial?.encodeAllMs)} | |
| reference: from-scratch computeTables (old controller path, every change) | ${ms(r.fullCompute?.ms)} | |
| reference: NodeTable.encode of every table | ${ms(r.encodeAll?.ms)} | |
| reference: RSS after one from-scratch compute and encode (after GC) | ${mb(r.memory?.rssMB)} | |

The controller phase runs with \`${CONTROLLER_FLAGS.join(" ")}\`, as trellis-controller does:
with Node's default young-generation sizing, the start-up burst (every object
parsed at once) leaves the V8 heap committed at about twice the live data.
Route-change times with the default flags: p50 ${ms(d.routeChange?.p50)}, p99 ${ms(d.routeChange?.p99)}.

Route changes alternate canary weight steps and header-modifier edits on random
routes (1 in 20 is a consumer route). Times are wall-clock around
\`RoutingState.apply()\` + \`VersionedTables.update()\` (and \`encodeNodeTable()\`
of the changed tables where said), after 20 unmeasured warm-up changes.
${
  profileSummary
    ? `
## Where the time of the 100 route changes goes

CPU profile of a separate run (\`--profile\`; profiler overhead included, ${profileSummary.totalMs} ms sampled),
\`bench/results/profiles/route-changes.cpuprofile\`. Self time:

| function | ms |
|---|---|
${profileSummary.self.map((x) => `| \`${x.fn}\` | ${x.ms} |`).join("\n")}

Inclusive time in this package:

| function | ms |
|---|---|
${profileSummary.inclusive.map((x) => `| \`${x.fn}\` | ${x.ms} |`).join("\n")}
`
    : ""
}`;
writeFileSync(join(results, "controller-bench.md"), md);
// Keep the results in the repository's format (biome aligns markdown tables).
const biome = join(here, "..", "..", "..", "node_modules", ".bin", "biome");
if (existsSync(biome)) {
  execFileSync(
    biome,
    ["format", "--write", join(results, "controller-bench.md"), join(results, "controller-bench.json")],
    {
      stdio: "ignore",
    },
  );
}
process.stdout.write(md);
