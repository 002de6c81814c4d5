import { spawn } from "node:child_process";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { NodeTable } from "@trellis/api";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle } from "../testing/bundle.ts";
import {
  freePort,
  listenerPortOf,
  loopbackAgentArgs,
  plainServices,
  request,
  sleep,
  startHttpBackend,
  table,
} from "../testing/loopback.ts";
import { decodeTable, FileTableSource } from "./source.ts";

let dir: string;
/** Version n of a one-service table whose backend listens on `backendPort`. */
const sample = (n: number, backendPort = 8080) =>
  table(plainServices(["a/b:80", "10.0.0.1", [backendPort]]), n);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "trellis-table-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("table files", () => {
  it("decode the JSON form (proto names or JSON names) and the binary form", () => {
    const t = sample(3);
    const json = JSON.stringify(NodeTable.toJSON(t));
    expect(decodeTable(Buffer.from(`\n  ${json}`))).toEqual(t);
    expect(decodeTable(NodeTable.encode(t).finish())).toEqual(t);
    const snake = decodeTable(
      Buffer.from(
        JSON.stringify({
          version: { epoch: 1, number: 2 },
          local_pods: [{ namespace: "x", ips: ["1.2.3.4"] }],
        }),
      ),
    );
    expect(snake.localPods[0]?.ips).toEqual(["1.2.3.4"]);
  });

  it("are reloaded when the file is replaced, not when it is rewritten unchanged", async () => {
    const path = join(dir, "table.json");
    await writeFile(path, JSON.stringify(NodeTable.toJSON(sample(1))));
    const seen: number[] = [];
    const src = new FileTableSource({ path, log: pino({ level: "silent" }), sighup: false });
    await src.start(async (t) => {
      seen.push(t.version?.number ?? 0);
    });
    expect(seen).toEqual([1]);
    // Atomic replace, as editors and config management do it.
    await writeFile(`${path}.tmp`, NodeTable.encode(sample(2)).finish());
    await rename(`${path}.tmp`, path);
    for (let i = 0; i < 100 && seen.length < 2; i++) await sleep(20);
    expect(seen).toEqual([1, 2]);
    await src.reload(false);
    expect(seen).toEqual([1, 2]);
    await src.reload(true);
    expect(seen).toEqual([1, 2, 2]);
    await src.stop();
  });

  it("an unreadable or undecodable file keeps the last table", async () => {
    const path = join(dir, "bad.json");
    await writeFile(path, "{ not json");
    const seen: number[] = [];
    const src = new FileTableSource({ path, log: pino({ level: "silent" }), sighup: false, watch: false });
    await src.start(async (t) => {
      seen.push(t.version?.number ?? 0);
    });
    expect(seen).toEqual([]);
    await src.stop();
  });
});

describe("trellis-agent binary", () => {
  const cli = fileURLToPath(new URL("../cli.ts", import.meta.url));

  function run(args: string[], onLine?: (line: string, child: ReturnType<typeof spawn>) => void) {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      out += d;
      for (const line of d.split("\n")) if (line !== "") onLine?.(line, child);
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString();
    });
    return new Promise<{ code: number | null; out: string }>((resolve) =>
      child.on("exit", (code) => resolve({ code, out })),
    );
  }

  it("the bundle (scripts/build.ts) loads no TypeScript and proxies a request", async () => {
    const bundle = buildBundle(dir);
    const be = await startHttpBackend("bundled");
    const path = join(dir, "bundle.json");
    await writeFile(path, JSON.stringify(NodeTable.toJSON(sample(1, be.port))));
    const adminPort = await freePort();
    // --jitless turns off WebAssembly, which Node's type stripper needs: a .ts module left
    // outside the bundle would make the agent fail to start.
    const child = spawn(
      process.execPath,
      [
        "--jitless",
        bundle,
        ...loopbackAgentArgs(path, adminPort),
        // The test's keep-alive connection would otherwise hold the exit for the default 10 s.
        "--drain-ms",
        "200",
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    try {
      let listenerPort: number | undefined;
      for (let i = 0; i < 100 && listenerPort === undefined; i++) {
        await sleep(50);
        listenerPort = await listenerPortOf(adminPort, "a/b:80");
      }
      expect(listenerPort).toBeDefined();
      const res = await request(listenerPort as number, { path: "/through-the-bundle" });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ backend: "bundled", url: "/through-the-bundle" });
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await be.close();
    }
  }, 30_000);

  it("documents its flags in --help", async () => {
    const { code, out } = await run(["--help"]);
    expect(code).toBe(0);
    for (const flag of [
      "--table-file",
      "--listen-address",
      "--admin-port",
      "--debug-headers",
      "--no-watch",
      "--log-level",
    ]) {
      expect(out).toContain(flag);
    }
  });

  it("serves a table file, reloads it on SIGHUP and stops on SIGTERM", async () => {
    const path = join(dir, "cli.json");
    const withRange = (n: number) => {
      const t = sample(n);
      return JSON.stringify(NodeTable.toJSON(t));
    };
    await writeFile(path, withRange(1));
    const versions: string[] = [];
    const { code } = await run(
      [
        "--table-file",
        path,
        "--no-watch",
        "--listen-address",
        "127.0.0.1",
        "--admin-address",
        "127.0.0.1",
        "--admin-port",
        "0",
      ],
      (line, child) => {
        const rec = JSON.parse(line) as { msg: string; version?: string };
        if (rec.msg !== "table applied") return;
        versions.push(rec.version ?? "");
        if (versions.length === 1) {
          void writeFile(path, withRange(2)).then(() => child.kill("SIGHUP"));
        } else {
          child.kill("SIGTERM");
        }
      },
    );
    expect(versions).toEqual(["1/1", "1/2"]);
    expect(code).toBe(0);
  }, 15_000);
});
