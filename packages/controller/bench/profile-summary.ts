// Summarises a V8 .cpuprofile: self time per function (top 25) and total time
// under the functions of this package. `node bench/profile-summary.ts <file>`.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const file = process.argv[2];
if (!file) throw new Error("usage: profile-summary.ts <file.cpuprofile>");
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const self = new Map<string, number>();
const total = new Map<string, number>();
let all = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  all += dt;
  const label = (n: ProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${n.callFrame.url.replace(/^.*\/(packages|node_modules)\//, "$1/")}:${n.callFrame.lineNumber + 1}`;
  const node = byId.get(id)!;
  self.set(label(node), (self.get(label(node)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const l = label(byId.get(cur)!);
    if (seen.has(l)) continue;
    seen.add(l);
    total.set(l, (total.get(l) ?? 0) + dt);
  }
});
const ms = (us: number) => `${(us / 1000).toFixed(1)} ms`.padStart(10);
console.log(`profiled ${ms(all)}\n\nself time:`);
for (const [l, t] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${ms(t)}  ${l}`);
console.log("\ntotal time (functions of packages/controller):");
for (const [l, t] of [...total].filter(([l]) => l.includes("packages/controller")).sort((a, b) => b[1] - a[1]).slice(0, 25))
  console.log(`${ms(t)}  ${l}`);
