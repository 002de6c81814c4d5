import { readFileSync } from "node:fs";
import { RoutingState } from "../src/routing-state.ts";
import { VersionedTables } from "../src/distribute/versioned-tables.ts";
import { changedRoute, changedSlice, random, syntheticCluster } from "./synthetic-cluster.ts";
const gc = (globalThis as any).gc;
const c = syntheticCluster();
const s = new RoutingState();
s.apply(c.objects.map((object) => ({ object })));
const v = new VersionedTables(1); v.update(s.tables());
const rand = random(7);
for (let i = 0; i < 220; i++) { const idx = Math.floor(rand()*c.routes.length); const n = changedRoute(c.routes[idx]!, i); c.routes[idx] = n; s.apply([{object: n}]); v.update(s.tables()); }
for (let i = 0; i < 120; i++) { const idx = Math.floor(rand()*c.slices.length); const n = changedSlice(c.slices[idx]!, i); c.slices[idx] = n; s.apply([{object: n}]); v.update(s.tables()); }
await new Promise(r => setTimeout(r, 30000));
const rss = process.memoryUsage().rss/2**20;
const rows: [string, number][] = []; let cur = "";
for (const line of readFileSync("/proc/self/smaps","utf8").split("\n")) {
  if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) { const p = line.split(/\s+/); cur = `${p[0]} ${p[5] ?? ""}`; }
  else if (line.startsWith("Rss:")) rows.push([cur, Number(line.split(/\s+/)[1])/1024]);
}
const v8 = rows.filter(([k]) => !k.includes("/") && !k.includes("[")).reduce((n, [, v]) => n + v, 0);
const hs = (await import("node:v8")).getHeapSpaceStatistics().map(s => `${s.space_name}:${(s.space_size/2**20).toFixed(0)}/${(s.physical_space_size/2**20).toFixed(0)}`).join(" ");
console.log("anon total", v8.toFixed(0), hs);
rows.sort((a,b)=>b[1]-a[1]);
console.log(rss.toFixed(0), rows.slice(0,8).map(([k,v])=>`${k} ${v.toFixed(1)}`).join(" | "));
