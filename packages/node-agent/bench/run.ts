// Agent benchmark: HTTP/1.1 and gRPC through the agent vs a direct connection
// vs HAProxy configured equivalently (same worker count, keep-alive to the
// backend), all on loopback, all in one run so the ratios compare like with like.
//
//   node packages/node-agent/bench/run.ts [--duration-ms 10000] [--workers 1] [--quick]
//
// Writes bench/results/agent-bench.json and agent-bench.md (agent-bench-workers-N.* with --workers N > 1).

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { MatchType, NodeTable, Protocol, RouteKind } from "@trellis/api";
import { loopbackAgentArgs } from "../src/testing/loopback.ts";

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    "duration-ms": { type: "string", default: "6000" },
    workers: { type: "string", default: "1" },
    connections: { type: "string", default: "32" },
    rate: { type: "string", default: "1000" },
    // Targets are measured in interleaved rounds and the median kept, so a burst of other load hits all alike.
    rounds: { type: "string", default: "3" },
    quick: { type: "boolean", default: false },
    // Run the TypeScript sources directly instead of the bundle (more memory, same code).
    "from-source": { type: "boolean", default: false },
    out: { type: "string", default: join(here, "results") },
  },
});
const quick = values.quick === true;
const durationMs = quick ? 3_000 : Number(values["duration-ms"]);
const workers = Number(values.workers);
const connections = Number(values.connections);
const rate = Number(values.rate);
const rounds = quick ? 1 : Number(values.rounds);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
}

/** Per-key median of several result objects. */
function medianOf(rs: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(rs[0] ?? {})) out[k] = median(rs.map((r) => r[k] as number));
  return out;
}
const children: ChildProcess[] = [];
/**
 * glibc settings the agent image sets (images/agent/Dockerfile): the agent is measured as it runs.
 * They keep the malloc arenas from holding on to the compilers' freed zone memory (docs/agent.md).
 */
const AGENT_MALLOC_ENV = { MALLOC_ARENA_MAX: "2", MALLOC_MMAP_THRESHOLD_: "131072" };
const mallocEnvText = Object.entries(AGENT_MALLOC_ENV)
  .map(([k, v]) => `${k}=${v}`)
  .join(" ");
const dir = mkdtempSync(join(tmpdir(), "trellis-bench-"));

function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

function start(cmd: string, args: string[], name: string, env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  child.stderr?.on("data", (d: Buffer) => {
    const s = d.toString();
    if (!/NOTICE|haproxy version|path to executable/.test(s)) process.stderr.write(`[${name}] ${s}`);
  });
  children.push(child);
  return child;
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.on("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

function runJson(script: string, args: string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(here, script), ...args], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    child.on("exit", (code) => {
      try {
        resolve(JSON.parse(out.trim().split("\n").pop() ?? "") as Record<string, number>);
      } catch {
        reject(new Error(`${script} exited ${code}: ${out}`));
      }
    });
  });
}

/** CPU time (user + system) a process has used, in seconds. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Saturation {
  rps: number;
  /** Microseconds of the proxy process's CPU per request (robust to other load on the machine). */
  cpuUsPerRequest: number | null;
}

function wrk(port: number, seconds: number, pid: number | null): Saturation {
  const before = pid === null ? 0 : cpuSeconds(pid);
  const r = spawnSync("wrk", [`-t1`, `-c${connections}`, `-d${seconds}s`, `http://127.0.0.1:${port}/bench`], {
    encoding: "utf8",
  });
  const after = pid === null ? 0 : cpuSeconds(pid);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  const n = /(\d+) requests in/.exec(r.stdout);
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(r.stdout);
  if (m === null || n === null) throw new Error(`wrk failed: ${r.stdout}${r.stderr}`);
  if (errs !== null) log(`wrk on ${port}: ${errs[1]} non-2xx responses`);
  return {
    rps: Math.round(Number(m[1])),
    cpuUsPerRequest: pid === null ? null : Math.round(((after - before) * 1e7) / Number(n[1])) / 10,
  };
}

function hasCommand(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** gRPC unary calls/s at saturation with h2load (4 connections × 16 streams). */
function h2load(port: number, seconds: number, msgFile: string, pid: number | null): Saturation {
  const before = pid === null ? 0 : cpuSeconds(pid);
  const r = spawnSync(
    "h2load",
    [
      "-c4",
      "-m16",
      `-D${seconds}`,
      "-d",
      msgFile,
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      `http://127.0.0.1:${port}/bench.Echo/Unary`,
    ],
    { encoding: "utf8" },
  );
  const after = pid === null ? 0 : cpuSeconds(pid);
  const m = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(r.stdout);
  const done = /requests: \d+ total, \d+ started, (\d+) done/.exec(r.stdout);
  const failed = /(\d+) failed, (\d+) errored/.exec(r.stdout);
  if (m === null || done === null) throw new Error(`h2load failed: ${r.stdout}${r.stderr}`);
  if (failed !== null && (failed[1] !== "0" || failed[2] !== "0")) log(`h2load on ${port}: ${failed[0]}`);
  return {
    rps: Math.round(Number(m[1])),
    cpuUsPerRequest: pid === null ? null : Math.round(((after - before) * 1e7) / Number(done[1])) / 10,
  };
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m === null ? 0 : Math.round(Number(m[1]) / 1024);
  } catch {
    return 0;
  }
}

/** RSS of the agent process and its threads' shared address space, sampled while `p` runs. */
async function sampleRss<T>(pid: number, p: Promise<T>): Promise<[T, number]> {
  let max = rssMb(pid);
  const t = setInterval(() => {
    max = Math.max(max, rssMb(pid));
  }, 250);
  const r = await p;
  clearInterval(t);
  return [r, Math.max(max, rssMb(pid))];
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        let b = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          b += d;
        });
        res.on("end", () =>
          res.statusCode === 200 ? resolve(b) : reject(new Error(`${path}: ${res.statusCode}`)),
        );
      })
      .on("error", reject);
  });
}

let loadBefore = "";

async function main(): Promise<void> {
  loadBefore = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const body = join(dir, "body.txt");
  writeFileSync(body, "x".repeat(1024));
  const [httpBackend, httpHaproxy, h2Haproxy, adminPort, listenerMin] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);

  // Backend: HAProxy answering 1 KiB itself, the fastest server at hand, so it is not the bottleneck.
  const backendCfg = join(dir, "backend.cfg");
  writeFileSync(
    backendCfg,
    `global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend fe\n  bind 127.0.0.1:${httpBackend}\n  http-request return status 200 content-type text/plain file ${body}\n`,
  );
  start("haproxy", ["-db", "-f", backendCfg], "backend");
  const grpcBackendProc = spawn(process.execPath, [join(here, "grpc-backend.ts")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(grpcBackendProc);
  const grpcBackend = await new Promise<number>((resolve) =>
    grpcBackendProc.stdout?.once("data", (d: Buffer) =>
      resolve((JSON.parse(d.toString()) as { port: number }).port),
    ),
  );

  // HAProxy as the peer proxy: same thread count as the agent, keep-alive to the backend.
  const proxyCfg = join(dir, "proxy.cfg");
  writeFileSync(
    proxyCfg,
    [
      "global",
      `  nbthread ${workers}`,
      "  maxconn 4000",
      "defaults",
      "  mode http",
      "  timeout connect 5s",
      "  timeout client 60s",
      "  timeout server 60s",
      "  option http-keep-alive",
      "  http-reuse always",
      "frontend fe_http",
      `  bind 127.0.0.1:${httpHaproxy}`,
      "  default_backend be_http",
      "backend be_http",
      `  server s1 127.0.0.1:${httpBackend}`,
      "frontend fe_h2c",
      `  bind 127.0.0.1:${h2Haproxy} proto h2`,
      "  default_backend be_h2c",
      "backend be_h2c",
      `  server s1 127.0.0.1:${grpcBackend} proto h2`,
      "",
    ].join("\n"),
  );
  const haproxyProc = start("haproxy", ["-db", "-f", proxyCfg], "haproxy");

  // The agent, with a realistic small table: a few rules before the one that matches.
  const route = (name: string, kind: RouteKind) => ({ kind, namespace: "bench", name });
  const table = NodeTable.fromPartial({
    version: { epoch: 1, number: 1 },
    node: "bench",
    settings: { listenerPortMin: listenerMin, listenerPortMax: listenerMin + 50 },
    services: [
      {
        namespace: "bench",
        name: "web",
        clusterIps: ["10.96.0.1"],
        ports: [
          {
            port: 80,
            protocol: Protocol.PROTOCOL_HTTP1,
            defaultBackendId: "bench/web:80",
            routeSets: [
              {
                clientNamespace: "*",
                kind: RouteKind.ROUTE_KIND_HTTP,
                rules: [
                  {
                    route: route("web", RouteKind.ROUTE_KIND_HTTP),
                    action: {
                      $case: "forward",
                      forward: {
                        backends: [{ weight: 1, target: { $case: "backendId", backendId: "bench/web:80" } }],
                      },
                    },
                  },
                ],
                matches: [
                  {
                    rule: 0,
                    match: {
                      $case: "http",
                      http: { headers: [{ name: "x-canary", type: MatchType.MATCH_TYPE_EXACT, value: "1" }] },
                    },
                  },
                  {
                    rule: 0,
                    match: {
                      $case: "http",
                      http: { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/api" } },
                    },
                  },
                  {
                    rule: 0,
                    match: {
                      $case: "http",
                      http: { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/" } },
                    },
                  },
                ],
              },
            ],
          },
        ],
      },
      {
        namespace: "bench",
        name: "rpc",
        clusterIps: ["10.96.0.2"],
        ports: [
          {
            port: 9000,
            protocol: Protocol.PROTOCOL_GRPC,
            defaultBackendId: "bench/rpc:9000",
            routeSets: [
              {
                clientNamespace: "*",
                kind: RouteKind.ROUTE_KIND_GRPC,
                rules: [
                  {
                    route: route("rpc", RouteKind.ROUTE_KIND_GRPC),
                    action: {
                      $case: "forward",
                      forward: {
                        backends: [
                          { weight: 1, target: { $case: "backendId", backendId: "bench/rpc:9000" } },
                        ],
                      },
                    },
                  },
                ],
                matches: [
                  {
                    rule: 0,
                    match: {
                      $case: "grpc",
                      grpc: { type: MatchType.MATCH_TYPE_EXACT, service: "bench.Echo" },
                    },
                  },
                ],
              },
            ],
          },
        ],
      },
    ],
    backends: [
      {
        id: "bench/web:80",
        serviceNamespace: "bench",
        serviceName: "web",
        servicePort: 80,
        protocol: Protocol.PROTOCOL_HTTP1,
        endpoints: [{ ip: "127.0.0.1", port: httpBackend, ready: true, serving: true }],
      },
      {
        id: "bench/rpc:9000",
        serviceNamespace: "bench",
        serviceName: "rpc",
        servicePort: 9000,
        protocol: Protocol.PROTOCOL_GRPC,
        endpoints: [{ ip: "127.0.0.1", port: grpcBackend, ready: true, serving: true }],
      },
    ],
  });
  const tableFile = join(dir, "table.json");
  writeFileSync(tableFile, JSON.stringify(NodeTable.toJSON(table)));
  const fromSource = values["from-source"] === true;
  if (!fromSource) {
    const b = spawnSync(process.execPath, ["--no-warnings", join(here, "..", "scripts", "build.ts")], {
      encoding: "utf8",
    });
    if (b.status !== 0) throw new Error(`build failed: ${b.stderr}`);
  }
  const agentArgs = [
    // A small young generation and a bounded old one keep the agent's RSS flat under load (see docs/agent.md).
    "--max-semi-space-size=1",
    "--max-old-space-size=256",
    fromSource ? join(here, "..", "src", "cli.ts") : join(here, "..", "dist", "trellis-agent.js"),
    ...loopbackAgentArgs(tableFile, adminPort),
    "--log-level",
    "warn",
  ];
  if (workers > 1) agentArgs.push("--workers", String(workers));
  const agent = start(process.execPath, agentArgs, "agent", AGENT_MALLOC_ENV);
  await waitForPort(adminPort);
  for (let i = 0; i < 100; i++) {
    try {
      await get(adminPort, "/readyz");
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const portMap = JSON.parse(await get(adminPort, "/debug/portmap")) as {
    portMap: { service: string; listenerPort: number }[];
  };
  const agentHttp = portMap.portMap.find((e) => e.service === "bench/web:80")?.listenerPort as number;
  const agentGrpc = portMap.portMap.find((e) => e.service === "bench/rpc:9000")?.listenerPort as number;
  await Promise.all([
    waitForPort(httpBackend),
    waitForPort(httpHaproxy),
    waitForPort(h2Haproxy),
    waitForPort(agentHttp),
  ]);
  const seconds = Math.max(1, Math.round(durationMs / 1000));
  const agentPid = agent.pid as number;
  const rssStart = rssMb(agentPid);

  // ---- Phase 1, on the fresh agent: latency at a fixed rate (open loop) and RSS at that rate ----
  const latency: Record<string, Record<string, number>> = {};
  const grpcLatency: Record<string, Record<string, number>> = {};
  let rssHttp = 0;
  let rssGrpc = 0;
  for (const [mode, out, targets] of [
    [
      "http1",
      latency,
      [
        ["direct", httpBackend],
        ["agent", agentHttp],
        ["haproxy", httpHaproxy],
      ],
    ],
    [
      "grpc",
      grpcLatency,
      [
        ["direct", grpcBackend],
        ["agent", agentGrpc],
        ["haproxy", h2Haproxy],
      ],
    ],
  ] as const) {
    const samples: Record<string, Record<string, number>[]> = { direct: [], agent: [], haproxy: [] };
    for (let round = 0; round < rounds; round++) {
      for (const [name, port] of targets) {
        const args = [
          "--mode",
          mode,
          "--port",
          String(port),
          "--rate",
          String(rate),
          "--duration-ms",
          String(durationMs),
        ];
        if (round > 0) args.push("--warmup-ms", "500");
        if (name === "agent") {
          const [r, rss] = await sampleRss(agentPid, runJson("openloop.ts", args));
          samples[name]?.push(r);
          if (mode === "http1") rssHttp = Math.max(rssHttp, rss);
          else rssGrpc = Math.max(rssGrpc, rss);
        } else samples[name]?.push(await runJson("openloop.ts", args));
        log(`${mode} latency ${name} (round ${round + 1}): ${JSON.stringify(samples[name]?.at(-1))}`);
      }
    }
    for (const name of ["direct", "agent", "haproxy"]) out[name] = medianOf(samples[name] ?? []);
  }

  // ---- Phase 2: throughput at saturation ----
  const pids: Record<string, number | null> = {
    direct: null,
    agent: agentPid,
    haproxy: haproxyProc.pid as number,
  };
  const throughput: Record<string, number> = {};
  const cpuPerReq: Record<string, number | null> = {};
  const httpTargets = [
    ["direct", httpBackend],
    ["agent", agentHttp],
    ["haproxy", httpHaproxy],
  ] as const;
  for (const [, port] of httpTargets) wrk(port, 2, null); // warm-up: JIT, connection pools
  const httpSat: Record<string, Saturation[]> = { direct: [], agent: [], haproxy: [] };
  for (let round = 0; round < rounds; round++) {
    for (const [name, port] of httpTargets) {
      const sat = wrk(port, seconds, pids[name] ?? null);
      httpSat[name]?.push(sat);
      log(
        `http1 ${name} (round ${round + 1}): ${sat.rps} req/s, ${sat.cpuUsPerRequest ?? "-"} µs CPU/request`,
      );
    }
  }
  for (const [name] of httpTargets) {
    const xs = httpSat[name] ?? [];
    throughput[name] = median(xs.map((x) => x.rps));
    cpuPerReq[name] =
      xs[0]?.cpuUsPerRequest === null ? null : median(xs.map((x) => x.cpuUsPerRequest as number));
  }
  const grpcThroughput: Record<string, number> = {};
  const grpcCpuPerReq: Record<string, number | null> = {};
  const useH2load = hasCommand("h2load");
  const msgFile = join(dir, "msg.bin");
  const msg = Buffer.from("hello trellis");
  writeFileSync(msgFile, Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]));
  const grpcTargets = [
    ["direct", grpcBackend],
    ["agent", agentGrpc],
    ["haproxy", h2Haproxy],
  ] as const;
  if (useH2load) for (const [, port] of grpcTargets) h2load(port, 2, msgFile, null);
  const grpcSat: Record<string, Saturation[]> = { direct: [], agent: [], haproxy: [] };
  for (let round = 0; round < rounds; round++) {
    for (const [name, port] of grpcTargets) {
      let sat: Saturation;
      if (useH2load) sat = h2load(port, seconds, msgFile, pids[name] ?? null);
      else {
        const r = await runJson("grpc-load.ts", [
          "--port",
          String(port),
          "--duration-ms",
          String(durationMs),
        ]);
        if ((r.errors as number) > 0) log(`grpc ${name}: ${r.errors} errors`);
        sat = { rps: r.rps as number, cpuUsPerRequest: null };
      }
      grpcSat[name]?.push(sat);
      log(`grpc ${name} (round ${round + 1}): ${sat.rps} calls/s, ${sat.cpuUsPerRequest ?? "-"} µs CPU/call`);
    }
  }
  for (const [name] of grpcTargets) {
    const xs = grpcSat[name] ?? [];
    grpcThroughput[name] = median(xs.map((x) => x.rps));
    grpcCpuPerReq[name] =
      xs[0]?.cpuUsPerRequest == null ? null : median(xs.map((x) => x.cpuUsPerRequest as number));
  }
  const rssAfter = rssMb(agentPid);

  const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
  const added = (l: Record<string, Record<string, number>>, p: string): number =>
    Math.round(((l.agent?.[p] ?? 0) - (l.direct?.[p] ?? 0)) * 1000) / 1000;
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  const results = {
    date: new Date().toISOString(),
    machine: {
      loadAverageBefore: loadBefore,
      cpu,
      cpus: (readFileSync("/proc/cpuinfo", "utf8").match(/^processor\s*:/gm) ?? []).length,
      node: process.version,
    },
    method: {
      durationMs,
      rounds,
      workers,
      agent: fromSource
        ? `${mallocEnvText} node --max-semi-space-size=1 --max-old-space-size=256 src/cli.ts (TypeScript stripped at load)`
        : `${mallocEnvText} node --max-semi-space-size=1 --max-old-space-size=256 dist/trellis-agent.js (bundled by scripts/build.ts)`,
      wrk: `wrk -t1 -c${connections} -d${seconds}s (after a 2 s warm-up), median of ${rounds} interleaved rounds`,
      openLoop: `${rate} req/s fixed schedule (bench/openloop.ts), ${durationMs} ms measured per round after a warm-up, median of ${rounds} interleaved rounds`,
      backend: "HTTP: HAProxy 1 thread answering 1 KiB itself; gRPC: node:http2 echo server",
      peer: `HAProxy ${workers} thread(s), keep-alive to the backend (http-reuse always); h2c for gRPC`,
      grpcLoad: useH2load
        ? `h2load -c4 -m16 (64 calls in flight), after a 2 s warm-up run, median of ${rounds} interleaved rounds`
        : "Node HTTP/2 generator, 64 calls in flight over 4 connections (h2load not installed; this generator saturates first)",
    },
    http1: {
      throughputRps: throughput,
      cpuUsPerRequest: cpuPerReq,
      cpuEfficiencyVsHaproxy:
        cpuPerReq.agent && cpuPerReq.haproxy ? ratio(cpuPerReq.haproxy, cpuPerReq.agent) : null,
      agentVsHaproxy: ratio(throughput.agent as number, throughput.haproxy as number),
      agentVsDirect: ratio(throughput.agent as number, throughput.direct as number),
      latencyMs: latency,
      addedP50Ms: added(latency, "p50"),
      addedP99Ms: added(latency, "p99"),
    },
    grpc: {
      throughputRps: grpcThroughput,
      cpuUsPerRequest: grpcCpuPerReq,
      cpuEfficiencyVsHaproxy:
        grpcCpuPerReq.agent && grpcCpuPerReq.haproxy
          ? ratio(grpcCpuPerReq.haproxy, grpcCpuPerReq.agent)
          : null,
      agentVsHaproxy: ratio(grpcThroughput.agent as number, grpcThroughput.haproxy as number),
      agentVsDirect: ratio(grpcThroughput.agent as number, grpcThroughput.direct as number),
      latencyMs: grpcLatency,
      addedP50Ms: added(grpcLatency, "p50"),
      addedP99Ms: added(grpcLatency, "p99"),
    },
    agentRssMb: { atStart: rssStart, atHttp1kRps: rssHttp, atGrpc1kRps: rssGrpc, afterSaturation: rssAfter },
    targets: { throughputVsHaproxy: 0.5, addedP99Ms: 1, rssMb: 80 },
  };
  const out = values.out as string;
  const base = workers === 1 ? "agent-bench" : `agent-bench-workers-${workers}`;
  writeFileSync(join(out, `${base}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const row = (name: string, l: Record<string, number> | undefined) =>
    `| ${name} | ${l?.p50} | ${l?.p90} | ${l?.p99} | ${l?.p999} | ${l?.errors ?? 0} |`;
  const md = [
    "# Node agent benchmark",
    "",
    `${results.date} · ${cpu} × ${results.machine.cpus} · Node ${process.version} · agent and HAProxy with ${workers} worker(s) · load average before the run ${loadBefore}`,
    "",
    `Agent: \`${results.method.agent}\`.`,
    "",
    `Command: \`node packages/node-agent/bench/run.ts${workers === 1 ? "" : ` --workers ${workers}`}\` (loopback only; all figures from the same run).`,
    "",
    "## HTTP/1.1, keep-alive, 1 KiB responses",
    "",
    `Throughput at saturation (${results.method.wrk}):`,
    "",
    "| target | req/s | agent ÷ target | proxy CPU µs/request |",
    "|---|---|---|---|",
    `| direct | ${throughput.direct} | ${results.http1.agentVsDirect} | – |`,
    `| HAProxy | ${throughput.haproxy} | **${results.http1.agentVsHaproxy}** (target ≥ 0.5) | ${cpuPerReq.haproxy} |`,
    `| agent | ${throughput.agent} | 1 | ${cpuPerReq.agent} |`,
    "",
    `CPU efficiency (HAProxy µs ÷ agent µs per request, insensitive to other load on the machine): **${results.http1.cpuEfficiencyVsHaproxy}**.`,
    "",
    `Latency at ${rate} req/s, open loop (${results.method.openLoop}; ms):`,
    "",
    "| target | p50 | p90 | p99 | p99.9 | errors |",
    "|---|---|---|---|---|---|",
    row("direct", latency.direct),
    row("agent", latency.agent),
    row("HAProxy", latency.haproxy),
    "",
    `Added by the agent: p50 **${results.http1.addedP50Ms} ms**, p99 **${results.http1.addedP99Ms} ms** (target p99 ≤ 1 ms).`,
    "",
    "## gRPC unary (h2c)",
    "",
    `Throughput at saturation (${results.method.grpcLoad}):`,
    "",
    "| target | calls/s | agent ÷ target | proxy CPU µs/call |",
    "|---|---|---|---|",
    `| direct | ${grpcThroughput.direct} | ${results.grpc.agentVsDirect} | – |`,
    `| HAProxy (h2c) | ${grpcThroughput.haproxy} | **${results.grpc.agentVsHaproxy}** | ${grpcCpuPerReq.haproxy ?? "–"} |`,
    `| agent | ${grpcThroughput.agent} | 1 | ${grpcCpuPerReq.agent ?? "–"} |`,
    "",
    `Latency at ${rate} calls/s, open loop:`,
    "",
    "| target | p50 | p90 | p99 | p99.9 | errors |",
    "|---|---|---|---|---|---|",
    row("direct", grpcLatency.direct),
    row("agent", grpcLatency.agent),
    row("HAProxy", grpcLatency.haproxy),
    "",
    `Added by the agent: p50 **${results.grpc.addedP50Ms} ms**, p99 **${results.grpc.addedP99Ms} ms**.`,
    "",
    "## Agent memory",
    "",
    `RSS at ${rate} req/s (fresh agent, measured first): HTTP/1.1 **${rssHttp} MB**, gRPC **${rssGrpc} MB** (target ≤ 80 MB). At start ${rssStart} MB; after the saturation runs ${rssAfter} MB (V8 keeps the heap it grew).`,
    "",
  ].join("\n");
  writeFileSync(join(out, `${base}.md`), md);
  process.stdout.write(`${md}\n`);
}

function cleanup(): void {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
}

main()
  .then(() => {
    cleanup();
    process.exit(0);
  })
  .catch((err: unknown) => {
    console.error(err);
    cleanup();
    process.exit(1);
  });
