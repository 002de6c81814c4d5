// CNI ADD latency with the shim vs without: the runtime execs every plugin of
// the chain in turn, so what the shim adds to a pod's sandbox setup is the
// spawn-to-exit time of its own ADD. Measured here against an agent that
// answers at once (the shim's own cost, not the agent's programming time),
// next to a no-op chained Go plugin (portmap with no mappings) run the same way.
//
//   node packages/cni-shim/bench/add-latency.ts [--runs N]
//
// Writes bench/results/add-latency.{json,md} and prints the markdown table.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const pkgRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const exe = join(pkgRoot, "dist", "trellis-cni");
const resultsDir = join(pkgRoot, "bench", "results");
const PORTMAP = "/usr/lib/cni/portmap";

const { values } = parseArgs({ options: { runs: { type: "string", default: "200" } } });
const runs = Number(values.runs);
const warmup = 10;

const build = spawnSync(process.execPath, [join(pkgRoot, "scripts", "build.ts")], { encoding: "utf8" });
if (build.status !== 0) throw new Error(`build failed:\n${build.stderr}`);
process.stdout.write(build.stdout);

const dir = mkdtempSync(join(tmpdir(), "trellis-cni-bench-"));
const socketPath = join(dir, "cni.sock");
const nsFile = join(dir, "captured-namespaces.json");
writeFileSync(nsFile, JSON.stringify({ namespaces: ["shop"], updatedAt: new Date().toISOString() }));

const agent = createServer((req, res) => {
  req.resume();
  req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"captured":true}'));
});
await new Promise<void>((r) => agent.listen(socketPath, r));

const prevResult = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "eth0", mac: "02:00:00:00:00:02", sandbox: "/var/run/netns/p" }],
  ips: [{ address: "10.244.1.5/24", gateway: "10.244.1.1", interface: 0 }],
};
const env = (ns: string) => ({
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "0123456789abcdef",
  CNI_NETNS: "/var/run/netns/p",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/usr/lib/cni",
  CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=web-0;K8S_POD_UID=u-1`,
});
const shimConf = (socket: string) =>
  JSON.stringify({
    cniVersion: "1.0.0",
    name: "k8s",
    type: "trellis-cni",
    socketPath: socket,
    capturedNamespacesFile: nsFile,
    logLevel: "info",
    prevResult,
  });

interface Case {
  name: string;
  cmd: string;
  env: Record<string, string>;
  stdin: string;
}

const cases: Case[] = [
  ...(existsSync(PORTMAP)
    ? [
        {
          name: "without the shim: portmap ADD, no mappings (no-op chained Go plugin)",
          cmd: PORTMAP,
          env: env("shop"),
          stdin: JSON.stringify({ cniVersion: "1.0.0", name: "k8s", type: "portmap", prevResult }),
        },
      ]
    : []),
  {
    name: "trellis-cni VERSION (process start and exit only)",
    cmd: exe,
    env: { CNI_COMMAND: "VERSION" },
    stdin: '{"cniVersion":"1.0.0"}',
  },
  {
    name: "trellis-cni ADD, captured namespace, agent answers at once",
    cmd: exe,
    env: env("shop"),
    stdin: shimConf(socketPath),
  },
  {
    name: "trellis-cni ADD, agent down, namespace not captured",
    cmd: exe,
    env: env("default"),
    stdin: shimConf(join(dir, "absent.sock")),
  },
];

function once(c: Case): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const p = spawn(c.cmd, [], { env: c.env, stdio: ["pipe", "ignore", "ignore"] });
    p.on("error", reject);
    p.on("close", (code) => {
      if (code !== 0) reject(new Error(`${c.name}: exit ${code}`));
      else resolve(performance.now() - t);
    });
    p.stdin.end(c.stdin);
  });
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
const round = (n: number) => Math.round(n * 10) / 10;

// Interleaved, so drift in machine load hits every case alike.
const samples = cases.map(() => [] as number[]);
for (let i = 0; i < warmup + runs; i++)
  for (const [k, c] of cases.entries()) {
    const ms = await once(c);
    if (i >= warmup) samples[k]?.push(ms);
  }
agent.close();
rmSync(dir, { recursive: true, force: true });

const rows = cases.map((c, k) => {
  const s = [...(samples[k] ?? [])].sort((a, b) => a - b);
  return {
    case: c.name,
    runs: s.length,
    p50Ms: round(pct(s, 50)),
    p99Ms: round(pct(s, 99)),
    meanMs: round(s.reduce((a, b) => a + b, 0) / s.length),
    minMs: round(s[0] ?? 0),
  };
});
const result = {
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  loadavg: loadavg().map(round),
  executableBytes: statSync(exe).size,
  note: "spawn-to-exit per invocation, sequential; the shim's ADD is what a pod's sandbox setup gains (the chain without the shim does not run it)",
  rows,
};
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, "add-latency.json"), `${JSON.stringify(result, null, 2)}\n`);
const md = [
  `CNI ADD latency, ${runs} runs each after ${warmup} warm-up, Node ${process.version}, ${result.cpus} CPUs, load ${result.loadavg.join(" ")}; executable ${(result.executableBytes / 1024 / 1024).toFixed(1)} MiB`,
  "",
  "| case | p50 ms | p99 ms | mean ms | min ms |",
  "|---|---|---|---|---|",
  ...rows.map((r) => `| ${r.case} | ${r.p50Ms} | ${r.p99Ms} | ${r.meanMs} | ${r.minMs} |`),
  "",
].join("\n");
writeFileSync(join(resultsDir, "add-latency.md"), md);
process.stdout.write(md);
