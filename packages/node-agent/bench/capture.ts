// Capture benchmark: how long the agent takes to program nftables for a node
// with many meshed service ports and captured pods, in a network namespace
// made for the run (root and nft required), and how long one pod's ADD takes
// once the big state is in place (the incremental cost a new pod pays).
//
//   node packages/node-agent/bench/capture.ts [--ports 1000] [--pods 110] [--runs 20]
//
// Writes bench/results/capture-bench.json and capture-bench.md.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { NftProgram } from "../src/capture/nft.ts";
import type { CaptureState } from "../src/capture/nft-script.ts";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    ports: { type: "string", default: "1000" },
    pods: { type: "string", default: "110" },
    runs: { type: "string", default: "20" },
    out: { type: "string", default: join(here, "results") },
  },
});
const ports = Number(values.ports);
const pods = Number(values.pods);
const runs = Number(values.runs);

const state = (podCount: number, portCount: number): CaptureState => ({
  capturedIps: Array.from({ length: podCount }, (_, i) => `10.244.${1 + (i >> 8)}.${i & 255}`),
  servicePorts: Array.from({ length: portCount }, (_, i) => ({
    serviceIp: `10.96.${i >> 8}.${(i & 255) + 0}`,
    port: 80 + (i % 3),
    listenerPort: 15001 + i,
  })),
});

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

const ns = `trellis-bench-${randomBytes(3).toString("hex")}`;
execFileSync("ip", ["netns", "add", ns]);
try {
  const nft = new NftProgram(["ip", "netns", "exec", ns, "nft"]);
  const full: number[] = [];
  const onePod: number[] = [];
  const noop: number[] = [];
  for (let r = 0; r < runs; r++) {
    await nft.remove();
    let t = performance.now();
    await nft.apply(state(pods, ports));
    full.push(performance.now() - t);
    t = performance.now();
    await nft.apply(state(pods + 1, ports));
    onePod.push(performance.now() - t);
    // Nothing changed: the agent skips the transaction.
    t = performance.now();
    await nft.apply(state(pods + 1, ports));
    noop.push(performance.now() - t);
  }
  await nft.remove();
  const rows = [
    {
      case: `program ${ports} service ports + ${pods} pods from empty`,
      p50: pct(full, 50),
      p99: pct(full, 99),
    },
    { case: `add one pod to that state (a CNI ADD's nft cost)`, p50: pct(onePod, 50), p99: pct(onePod, 99) },
    { case: "re-apply an unchanged state (skipped)", p50: pct(noop, 50), p99: pct(noop, 99) },
  ];
  const md = [
    `# Capture programming (${runs} runs, ${new Date().toISOString()})`,
    "",
    "Command: `node packages/node-agent/bench/capture.ts`",
    "",
    "| case | p50 ms | p99 ms |",
    "|---|---|---|",
    ...rows.map((r) => `| ${r.case} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} |`),
    "",
  ].join("\n");
  writeFileSync(
    join(values.out, "capture-bench.json"),
    `${JSON.stringify({ ports, pods, runs, rows }, null, 2)}\n`,
  );
  writeFileSync(join(values.out, "capture-bench.md"), md);
  console.log(md);
} finally {
  execFileSync("ip", ["netns", "del", ns]);
}
