// Capture against the real kernel: nft in a network namespace made for the
// test, the CNI socket as the shim would call it.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import type { NodeTable } from "@trellis/api";
import type { CniRequest } from "@trellis/api/cni";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Capture } from "./capture.ts";
import { type CniServer, startCniServer } from "./cni-server.ts";
import { NftProgram } from "./nft.ts";

const haveRoot = process.getuid?.() === 0;
const haveNft = (() => {
  try {
    execFileSync("nft", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
if (!haveRoot || !haveNft)
  console.warn(`capture.nft.test: skipped: needs root and nft (root=${haveRoot}, nft=${haveNft})`);

const ns = `trellis-ut-${randomBytes(3).toString("hex")}`;
const dir = mkdtempSync(join(os.tmpdir(), "trellis-capture-"));
const socket = join(dir, "cni.sock");
const nsFile = join(dir, "captured-namespaces.json");
const log = pino({ level: "silent" });

function table(localPods: NodeTable["localPods"], capturedNamespaces = ["faces"]): NodeTable {
  return { node: "n1", services: [], backends: [], localPods, capturedNamespaces };
}

function listed(): { set: string[]; map: string[] } {
  const out = JSON.parse(
    execFileSync("ip", ["netns", "exec", ns, "nft", "-j", "list", "table", "ip", "trellis"]).toString(),
  ) as {
    nftables: { set?: { name: string; elem?: unknown[] }; map?: { name: string; elem?: unknown[] } }[];
  };
  const set = out.nftables.find((o) => o.set?.name === "captured")?.set?.elem ?? [];
  const map = out.nftables.find((o) => o.map?.name === "svcports")?.map?.elem ?? [];
  return { set: set.map((e) => JSON.stringify(e)), map: map.map((e) => JSON.stringify(e)) };
}

function cni(req: Partial<CniRequest>): Promise<{ status: number; body: Record<string, unknown> }> {
  const body: CniRequest = {
    command: "ADD",
    containerId: "c1",
    netns: "/var/run/netns/x",
    ifName: "eth0",
    podNamespace: "faces",
    podName: "p",
    podUid: "u",
    ips: [],
    ...req,
  };
  return new Promise((resolve, reject) => {
    const r = http.request({ socketPath: socket, path: "/v1/cni", method: "POST" }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>,
        }),
      );
    });
    r.on("error", reject);
    r.end(JSON.stringify(body));
  });
}

describe.skipIf(!haveRoot || !haveNft)("capture with real nftables", () => {
  let capture: Capture;
  let server: CniServer;

  beforeAll(async () => {
    execFileSync("ip", ["netns", "add", ns]);
    capture = new Capture({
      log,
      nft: new NftProgram(["ip", "netns", "exec", ns, "nft"]),
      capturedNamespacesFile: nsFile,
      podWaitMs: 300,
    });
    server = await startCniServer(capture, socket, log);
  });

  afterAll(async () => {
    capture?.close();
    await server?.close();
    execFileSync("ip", ["netns", "del", ns]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("programs the table's captured pods and service ports, and reconciles stale entries away", async () => {
    const portMap = [
      {
        serviceIp: "10.96.0.10",
        port: 80,
        listenerPort: 15001,
        service: "faces/smiley:80",
        protocol: "h1" as const,
      },
    ];
    await capture.update(
      table([{ namespace: "faces", name: "a", ips: ["10.244.1.5"], captured: true }]),
      portMap,
    );
    expect(listed().set).toEqual(['"10.244.1.5"']);
    expect(listed().map).toHaveLength(1);
    expect(JSON.parse(readFileSync(nsFile, "utf8")).namespaces).toEqual(["faces"]);
    await capture.update(table([{ namespace: "faces", name: "b", ips: ["10.244.1.6"], captured: true }]), []);
    expect(listed()).toEqual({ set: ['"10.244.1.6"'], map: [] });
  });

  it("answers ADD once the new pod's address is in the set, and DEL removes it", async () => {
    await capture.update(table([{ namespace: "faces", name: "p", ips: [], captured: true }]), []);
    const add = await cni({ ips: ["10.244.1.20"] });
    expect(add).toEqual({ status: 200, body: { captured: true } });
    expect(listed().set).toContain('"10.244.1.20"');
    const del = await cni({ command: "DEL", ips: [] });
    expect(del.status).toBe(200);
    expect(listed().set).not.toContain('"10.244.1.20"');
  });

  it("does not capture a pod of another namespace, nor an opt-out pod", async () => {
    await capture.update(table([{ namespace: "faces", name: "optout", ips: [], captured: false }]), []);
    expect(
      (await cni({ containerId: "c2", podNamespace: "default", podName: "x", ips: ["10.244.1.30"] })).body,
    ).toEqual({
      captured: false,
    });
    expect((await cni({ containerId: "c3", podName: "optout", ips: ["10.244.1.31"] })).body).toEqual({
      captured: false,
    });
    expect(listed().set).not.toContain('"10.244.1.30"');
    expect(listed().set).not.toContain('"10.244.1.31"');
  });

  it("refuses malformed requests with 4xx", async () => {
    const bad = await cni({ podName: "" });
    expect(bad.status).toBe(400);
    expect(String(bad.body.error)).toMatch(/podName/);
  });

  it("refuses an address that is not one, and keeps programming later pods", async () => {
    await capture.update(table([{ namespace: "faces", name: "p", ips: [], captured: true }]), []);
    const bad = await cni({ containerId: "evil", ips: ["10.244.1.40 } ; flush ruleset ; {"] });
    expect(bad.status).toBe(400);
    expect(String(bad.body.error)).toMatch(/not an IP address/);
    expect((await cni({ containerId: "good", ips: ["10.244.1.41"] })).body).toEqual({ captured: true });
    expect(listed().set).toContain('"10.244.1.41"');
  });
});
