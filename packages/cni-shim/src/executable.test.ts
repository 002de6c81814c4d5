// The built single executable as the runtime runs it: a process with CNI
// environment variables and the config on stdin, against a real HTTP server on
// a unix socket playing the agent's side of @trellis/api/cni.

import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CniRequest } from "@trellis/api/cni";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";

const pkgRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const exe = join(pkgRoot, "dist", "trellis-cni");
const dir = mkdtempSync(join(tmpdir(), "trellis-cni-exe-"));
const socketPath = join(dir, "cni.sock");
const nsFile = join(dir, "captured-namespaces.json");

beforeAll(() => {
  const r = spawnSync(process.execPath, [join(pkgRoot, "scripts", "build.ts")], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  writeFileSync(nsFile, JSON.stringify({ namespaces: ["shop"], updatedAt: new Date().toISOString() }));
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PREV = {
  cniVersion: "1.0.0",
  interfaces: [
    { name: "cni0", mac: "02:00:00:00:00:01" },
    { name: "eth0", mac: "02:00:00:00:00:02", sandbox: "/var/run/netns/p" },
  ],
  ips: [
    { address: "10.244.1.5/24", gateway: "10.244.1.1", interface: 1 },
    { address: "fd00:10:244:1::5/64", interface: 1 },
  ],
  routes: [{ dst: "0.0.0.0/0", gw: "10.244.1.1" }],
  dns: { nameservers: ["10.96.0.10"] },
};

function conf(extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    cniVersion: "1.0.0",
    name: "k8s-pod-network",
    type: "trellis-cni",
    socketPath,
    capturedNamespacesFile: nsFile,
    prevResult: PREV,
    ...extra,
  });
}

function env(command: string, namespace = "shop"): Record<string, string> {
  return {
    CNI_COMMAND: command,
    CNI_CONTAINERID: "0123456789abcdef",
    CNI_NETNS: "/var/run/netns/p",
    CNI_IFNAME: "eth0",
    CNI_PATH: "/opt/cni/bin",
    CNI_ARGS: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123456789abcdef;K8S_POD_UID=u-1`,
  };
}

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function runShim(vars: Record<string, string>, stdin: string, args: string[] = []): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const p = spawn(exe, args, { env: vars, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c) => {
      stdout += c;
    });
    p.stderr.on("data", (c) => {
      stderr += c;
    });
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr, ms: performance.now() - t }));
    p.stdin.end(stdin);
  });
}

let agent: Server | undefined;
const seen: CniRequest[] = [];
afterEach(async () => {
  seen.length = 0;
  const a = agent;
  agent = undefined;
  if (a) await new Promise<void>((r) => a.close(() => r()));
  a?.closeAllConnections();
});

function startAgent(answer: (req: CniRequest, res: ServerResponse) => void): Promise<void> {
  agent = createServer((rq, res) => {
    let body = "";
    rq.on("data", (c) => {
      body += c;
    });
    rq.on("end", () => {
      const req = JSON.parse(body) as CniRequest;
      seen.push(req);
      answer(req, res);
    });
  });
  const a = agent;
  return new Promise((r) => a.listen(socketPath, r));
}

const json = (res: ServerResponse, status: number, body: unknown) =>
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));

/** stderr is pino JSON lines only, so log shippers can parse it. */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

describe("trellis-cni executable", () => {
  it("is a standalone 755 executable", () => {
    expect(statSync(exe).mode & 0o777).toBe(0o755);
  });

  it("VERSION", async () => {
    const r = await runShim({ CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.1.0"}');
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(r.stdout)).toEqual({
      cniVersion: "1.1.0",
      supportedVersions: ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"],
    });
  });

  it("ADD: the agent is asked, prevResult comes back as the same JSON", async () => {
    await startAgent((_req, res) => json(res, 200, { captured: true }));
    const r = await runShim(env("ADD"), conf());
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${JSON.stringify(PREV)}\n`);
    expect(seen).toEqual([
      {
        command: "ADD",
        containerId: "0123456789abcdef",
        netns: "/var/run/netns/p",
        ifName: "eth0",
        podNamespace: "shop",
        podName: "web-0",
        podUid: "u-1",
        ips: ["10.244.1.5", "fd00:10:244:1::5"],
      },
    ]);
    expect(logLines(r.stderr)).toEqual([expect.objectContaining({ msg: "agent answered", captured: true })]);
  });

  it("ADD waits for an agent that takes seconds to program capture", async () => {
    await startAgent((_req, res) => setTimeout(() => json(res, 200, { captured: true }), 1500));
    const r = await runShim(env("ADD"), conf());
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(PREV);
    expect(r.ms).toBeGreaterThanOrEqual(1500);
  });

  it("ADD fails with the agent's message when the agent refuses", async () => {
    await startAgent((_req, res) =>
      json(res, 500, { error: "programming nftables failed: permission denied" }),
    );
    const r = await runShim(env("ADD"), conf());
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      cniVersion: "1.0.0",
      code: 100,
      msg: "Trellis agent refused pod shop/web-0: programming nftables failed: permission denied",
      details: `HTTP 500 from ${socketPath}`,
    });
  });

  it("agent down, namespace captured: code 11, so the runtime retries the sandbox", async () => {
    const r = await runShim(env("ADD"), conf());
    expect(r.code).toBe(1);
    const e = JSON.parse(r.stdout);
    expect(e.code).toBe(11);
    expect(e.msg).toBe(
      `Trellis agent at ${socketPath} is not reachable and namespace shop is captured: ` +
        "pod shop/web-0 cannot start uncaptured; the runtime will retry the sandbox",
    );
    expect(e.details).toContain("ENOENT");
  });

  it("agent down, namespace not captured: the pod starts, untouched", async () => {
    const r = await runShim(env("ADD", "kube-system"), conf());
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${JSON.stringify(PREV)}\n`);
  });

  it("agent hung longer than timeoutSeconds, namespace captured: code 11 after the timeout", async () => {
    await startAgent(() => {}); // accepts, never answers
    const r = await runShim(env("ADD"), conf({ timeoutSeconds: 1 }));
    expect(JSON.parse(r.stdout).code).toBe(11);
    expect(r.ms).toBeGreaterThanOrEqual(1000);
    expect(r.ms).toBeLessThan(10_000);
  });

  it("agent hung, namespace not captured: the pod waits only uncapturedTimeoutSeconds", async () => {
    await startAgent(() => {});
    const r = await runShim(
      env("ADD", "default"),
      conf({ timeoutSeconds: 60, uncapturedTimeoutSeconds: 0.3 }),
    );
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(10_000);
  });

  it("DEL with the agent down succeeds silently", async () => {
    const r = await runShim({ ...env("DEL"), CNI_NETNS: "" }, conf({ prevResult: undefined }));
    expect(r).toMatchObject({ code: 0, stdout: "" });
  });

  it("DEL tells the agent when it is up", async () => {
    await startAgent((_req, res) => json(res, 200, { captured: false }));
    const r = await runShim(env("DEL"), conf());
    expect(r).toMatchObject({ code: 0, stdout: "" });
    expect(seen.map((s) => s.command)).toEqual(["DEL"]);
  });

  it("an unknown command is CNI error 4", async () => {
    const r = await runShim({ ...env("ADD"), CNI_COMMAND: "UPDATE" }, conf());
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      cniVersion: "1.0.0",
      code: 4,
      msg: 'unknown CNI_COMMAND "UPDATE"',
    });
  });

  it("logs to logFile as well, and ignores NODE_OPTIONS", async () => {
    const logFile = join(dir, "logs", "trellis-cni.log");
    const r = await runShim(
      { ...env("ADD", "kube-system"), NODE_OPTIONS: "--require /nonexistent.js" },
      conf({ logFile, logLevel: "debug" }),
    );
    expect(r.code).toBe(0);
    const lines = logLines(readFileSync(logFile, "utf8"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ plugin: "trellis-cni", command: "ADD", pod: "kube-system/web-0" });
  });

  it("installs itself (no --source needed) and uninstalls", async () => {
    const bin = join(dir, "opt-cni-bin");
    const net = join(dir, "net.d");
    mkdirSync(net, { recursive: true });
    const original = '{"cniVersion":"1.0.0","name":"k8s","plugins":[{"type":"bridge"},{"type":"portmap"}]}';
    writeFileSync(join(net, "10-bridge.conflist"), original);
    const args = ["--cni-bin-dir", bin, "--cni-net-dir", net];
    const i = await runShim({}, "", ["install", ...args, "--socket-path", socketPath]);
    expect(i.code, i.stderr).toBe(0);
    expect(readFileSync(join(bin, "trellis-cni")).equals(readFileSync(exe))).toBe(true);
    const types = JSON.parse(readFileSync(join(net, "10-bridge.conflist"), "utf8")).plugins.map(
      (p: { type: string }) => p.type,
    );
    expect(types).toEqual(["bridge", "portmap", "trellis-cni"]);
    const u = await runShim({}, "", ["uninstall", ...args]);
    expect(u.code, u.stderr).toBe(0);
    expect(readFileSync(join(net, "10-bridge.conflist"), "utf8")).toBe(
      `${JSON.stringify(JSON.parse(original), null, 2)}\n`,
    );
  });
});
