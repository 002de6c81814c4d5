import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { NodeTable } from "@trellis/api";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  freePort,
  type HttpBackend,
  listenerPortOf,
  listenSockets,
  loopbackAgentArgs,
  plainServices,
  request,
  sleep,
  startHttpBackend,
  table,
} from "./testing/loopback.ts";
import { ProxyWorkers } from "./workers.ts";

/** One request on a connection of its own, so the kernel picks a listening socket for each. */
function freshGet(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      })
      .on("error", reject);
  });
}

let dir: string;
let be: HttpBackend;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "trellis-workers-"));
  be = await startHttpBackend("w");
});

afterAll(async () => {
  await be.close();
  await rm(dir, { recursive: true, force: true });
});

function tableWith(services: string[], version: number): string {
  const entries = services.map((name, i): [string, string, number[]] => [
    `a/${name}:80`,
    `10.0.0.${i + 1}`,
    [be.port],
  ]);
  return JSON.stringify(NodeTable.toJSON(table(plainServices(...entries), version)));
}

describe("trellis-agent --workers", () => {
  it("serves every listener from each thread, follows table changes and adds the threads' metrics up", async () => {
    const path = join(dir, "table.json");
    await writeFile(path, tableWith(["one"], 1));
    const adminPort = await freePort();
    const cli = fileURLToPath(new URL("./cli.ts", import.meta.url));
    const child = spawn(
      process.execPath,
      [cli, ...loopbackAgentArgs(path, adminPort), "--no-watch", "--workers", "2", "--drain-ms", "500"],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const applied: { worker?: number; version: string }[] = [];
    child.stdout.setEncoding("utf8");
    let buf = "";
    child.stdout.on("data", (d: string) => {
      buf += d;
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        const rec = JSON.parse(line) as { msg: string; worker?: number; version?: string };
        if (rec.msg === "table applied") applied.push({ worker: rec.worker, version: rec.version ?? "" });
      }
    });
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    const until = async (what: string, ok: () => boolean | Promise<boolean>): Promise<void> => {
      for (let i = 0; i < 200; i++) {
        if (await ok()) return;
        await sleep(50);
      }
      throw new Error(`timed out waiting for ${what}`);
    };
    try {
      await until("version 1 on both threads", () => applied.filter((a) => a.version === "1/1").length === 2);
      expect(applied.map((a) => a.worker ?? 0).sort()).toEqual([0, 1]);
      const one = (await listenerPortOf(adminPort, "a/one:80")) as number;
      expect(listenSockets(one)).toBe(2);

      // 40 connections: both sockets of the SO_REUSEPORT group get some (all on one: p ≈ 2e-12).
      const codes = await Promise.all(Array.from({ length: 40 }, () => freshGet(one, "/w")));
      expect(codes.every((c) => c === 200)).toBe(true);
      // The counts of both threads are in /metrics (the worker's arrive with the scrape).
      const text = (await request(adminPort, { path: "/metrics" })).body;
      const total =
        /trellis_requests_total\{[^}]*destination_service="a\/one:80"[^}]*code="200"[^}]*\} (\d+)/.exec(text);
      expect(Number(total?.[1])).toBe(40);

      // A new version with a second service: both threads open it on the port the main thread picked.
      await writeFile(path, tableWith(["one", "two"], 2));
      child.kill("SIGHUP");
      await until("version 2 on both threads", () => applied.filter((a) => a.version === "1/2").length === 2);
      const two = (await listenerPortOf(adminPort, "a/two:80")) as number;
      expect(listenSockets(two)).toBe(2);
      const codes2 = await Promise.all(Array.from({ length: 40 }, () => freshGet(two, "/w2")));
      expect(codes2.every((c) => c === 200)).toBe(true);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  }, 30_000);
});

describe("ProxyWorkers", () => {
  it("restarts a worker that died and hands it the last table", async () => {
    // A stand-in worker module: the first one exits before answering, later ones acknowledge.
    const marker = join(dir, "died-once");
    const entry = join(dir, "flaky-worker.mjs");
    await writeFile(
      entry,
      `import { existsSync, writeFileSync } from "node:fs";
import { parentPort } from "node:worker_threads";
if (!existsSync(${JSON.stringify(marker)})) { writeFileSync(${JSON.stringify(marker)}, ""); process.exit(3); }
parentPort.on("message", (m) => {
  if (m.kind === "apply") parentPort.postMessage({ kind: "applied", version: String(m.table.length), mismatched: [] });
  if (m.kind === "shutdown") process.exit(0);
});
`,
    );
    const lines: { msg: string; code?: number; version?: string }[] = [];
    const log = pino({ level: "debug" }, { write: (l: string) => lines.push(JSON.parse(l)) });
    const workers = new ProxyWorkers({
      count: 1,
      entry: pathToFileURL(entry),
      data: { logLevel: "silent", statsEveryMs: 0, agent: {} },
      log,
      onStats: () => {},
    });
    const t = NodeTable.fromPartial({ version: { epoch: 1, number: 7 }, node: "n" });
    workers.apply(t, []);
    for (let i = 0; i < 100 && !lines.some((l) => l.msg === "proxy worker applied table"); i++)
      await sleep(50);
    await workers.shutdown(100);
    expect(lines.find((l) => l.msg === "proxy worker exited")?.code).toBe(3);
    // The replacement got the table applied before it existed (encoded length as its "version").
    expect(lines.find((l) => l.msg === "proxy worker applied table")?.version).toBe(
      String(NodeTable.encode(t).finish().length),
    );
  }, 15_000);
});
