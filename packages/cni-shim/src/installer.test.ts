import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { InstallError, install, uninstall } from "./installer.ts";
import { runInstallerCli } from "./installer-cli.ts";

let root: string;
let bin: string;
let net: string;
let source: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "trellis-cni-install-"));
  bin = join(root, "bin");
  net = join(root, "net.d");
  mkdirSync(net);
  source = join(root, "trellis-cni-build");
  writeFileSync(source, "#!/bin/sh\necho fake shim\n", { mode: 0o600 });
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

// Written by hand, as a primary CNI's installer would: odd spacing, key order of its own.
const BRIDGE_CONFLIST = `{ "cniVersion": "1.0.0", "name": "k8s-pod-network",
  "plugins": [ {"type": "bridge", "bridge": "cni0", "isGateway": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]]}},
    {"type": "portmap", "capabilities": {"portMappings": true}} ] }`;

const read = (f: string) => readFileSync(join(net, f), "utf8");
const roundTrip = (text: string) => `${JSON.stringify(JSON.parse(text), null, 2)}\n`;
const snapshot = () =>
  Object.fromEntries(
    readdirSync(net)
      .sort()
      .map((f) => [f, read(f)]),
  );

describe("install", () => {
  it("copies the executable (mode 755) and appends our entry to the primary conflist", () => {
    writeFileSync(join(net, "10-bridge.conflist"), BRIDGE_CONFLIST);
    writeFileSync(join(net, "99-other.conflist"), BRIDGE_CONFLIST);
    const r = install({ cniBinDir: bin, cniNetDir: net, source, settings: { logLevel: "debug" } });
    expect(r).toEqual({
      binary: join(bin, "trellis-cni"),
      config: join(net, "10-bridge.conflist"),
      configChanged: true,
    });
    expect(readFileSync(join(bin, "trellis-cni"), "utf8")).toBe(readFileSync(source, "utf8"));
    expect(statSync(join(bin, "trellis-cni")).mode & 0o777).toBe(0o755);
    const doc = JSON.parse(read("10-bridge.conflist"));
    expect(doc.plugins.map((p: { type: string }) => p.type)).toEqual(["bridge", "portmap", "trellis-cni"]);
    expect(doc.plugins[2]).toEqual({
      type: "trellis-cni",
      socketPath: "/var/run/trellis/cni.sock",
      capturedNamespacesFile: "/var/run/trellis/captured-namespaces.json",
      timeoutSeconds: 30,
      uncapturedTimeoutSeconds: 2,
      logLevel: "debug",
    });
    expect(read("99-other.conflist")).toBe(BRIDGE_CONFLIST);
    expect(readdirSync(net).filter((f) => f.includes(".tmp-"))).toEqual([]);
  });

  it("twice gives byte-identical files and leaves the config untouched the second time", () => {
    writeFileSync(join(net, "10-bridge.conflist"), BRIDGE_CONFLIST);
    install({ cniBinDir: bin, cniNetDir: net, source });
    const first = snapshot();
    const mtime = statSync(join(net, "10-bridge.conflist")).mtimeMs;
    const r = install({ cniBinDir: bin, cniNetDir: net, source });
    expect(r.configChanged).toBe(false);
    expect(snapshot()).toEqual(first);
    expect(statSync(join(net, "10-bridge.conflist")).mtimeMs).toBe(mtime);
  });

  it("uninstall restores the conflist as a JSON round trip of the original and removes the binary", () => {
    writeFileSync(join(net, "10-bridge.conflist"), BRIDGE_CONFLIST);
    install({ cniBinDir: bin, cniNetDir: net, source });
    expect(uninstall({ cniBinDir: bin, cniNetDir: net })).toEqual({
      binaryRemoved: true,
      configs: [join(net, "10-bridge.conflist")],
      sandboxesLeft: 0,
    });
    expect(read("10-bridge.conflist")).toBe(roundTrip(BRIDGE_CONFLIST));
    expect(existsSync(join(bin, "trellis-cni"))).toBe(false);
    expect(uninstall({ cniBinDir: bin, cniNetDir: net })).toEqual({
      binaryRemoved: false,
      configs: [],
      sandboxesLeft: 0,
    });
  });

  it("keeps the binary while the runtime's cache holds sandboxes set up through it, so their teardown still works", () => {
    writeFileSync(join(net, "10-bridge.conflist"), BRIDGE_CONFLIST);
    install({ cniBinDir: bin, cniNetDir: net, source });
    const cache = join(net, "..", "cache");
    mkdirSync(cache, { recursive: true });
    const chained = Buffer.from(readFileSync(join(net, "10-bridge.conflist"))).toString("base64");
    const plain = Buffer.from(BRIDGE_CONFLIST).toString("base64");
    writeFileSync(join(cache, "net-a-eth0"), JSON.stringify({ kind: "cniCacheV1", config: chained }));
    writeFileSync(join(cache, "net-b-eth0"), JSON.stringify({ kind: "cniCacheV1", config: plain }));
    const r = uninstall({ cniBinDir: bin, cniNetDir: net, cniCacheDir: cache });
    expect(r).toMatchObject({ binaryRemoved: false, sandboxesLeft: 1 });
    expect(read("10-bridge.conflist")).toBe(roundTrip(BRIDGE_CONFLIST));
    expect(existsSync(join(bin, "trellis-cni"))).toBe(true);
    rmSync(join(cache, "net-a-eth0"));
    expect(uninstall({ cniBinDir: bin, cniNetDir: net, cniCacheDir: cache })).toMatchObject({
      binaryRemoved: true,
      sandboxesLeft: 0,
    });
  });

  it("turns a lone .conf into a conflist, and back on uninstall", () => {
    const conf = `{"cniVersion":"0.4.0","name":"bridge-net","type":"bridge","bridge":"cni0","ipam":{"type":"host-local"}}`;
    writeFileSync(join(net, "10-bridge.conf"), conf, { mode: 0o600 });
    const r = install({ cniBinDir: bin, cniNetDir: net, source });
    expect(r.convertedFrom).toBe(join(net, "10-bridge.conf"));
    expect(readdirSync(net)).toEqual(["10-bridge.conflist"]);
    expect(statSync(join(net, "10-bridge.conflist")).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(read("10-bridge.conflist"));
    expect(doc.cniVersion).toBe("0.4.0");
    expect(doc.plugins[0]).toEqual(JSON.parse(conf));
    const installed = snapshot();
    install({ cniBinDir: bin, cniNetDir: net, source });
    expect(snapshot()).toEqual(installed);
    uninstall({ cniBinDir: bin, cniNetDir: net });
    expect(readdirSync(net)).toEqual(["10-bridge.conf"]);
    expect(read("10-bridge.conf")).toBe(roundTrip(conf));
  });

  it("refuses what would break the node", () => {
    expect(() => install({ cniBinDir: bin, cniNetDir: net, source })).toThrow(/no CNI network config/);
    writeFileSync(join(net, "10-old.conflist"), '{"cniVersion":"0.2.0","plugins":[]}');
    expect(() => install({ cniBinDir: bin, cniNetDir: net, source })).toThrow(/cniVersion "0.2.0"/);
    writeFileSync(join(net, "05-broken.conflist"), "{");
    expect(() => install({ cniBinDir: bin, cniNetDir: net, source })).toThrow(InstallError);
    // Nothing half-done: the binary is only copied once the config is known to be usable.
    expect(existsSync(bin)).toBe(false);
  });
});

describe("trellis-cni install|uninstall (argument handling)", () => {
  const io = () => {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l), selfExecutable: undefined },
    };
  };

  it("installs with --source when run from source", () => {
    writeFileSync(join(net, "10-bridge.conflist"), BRIDGE_CONFLIST);
    const t = io();
    const argv = ["install", "--cni-bin-dir", bin, "--cni-net-dir", net, "--source", source];
    expect(runInstallerCli([...argv, "--socket-path", "/run/t.sock", "--timeout-seconds", "10"], t.io)).toBe(
      0,
    );
    expect(t.out).toEqual([`installed ${bin}/trellis-cni`, `added trellis-cni to ${net}/10-bridge.conflist`]);
    const ours = JSON.parse(read("10-bridge.conflist")).plugins.at(-1);
    expect(ours.socketPath).toBe("/run/t.sock");
    expect(ours.timeoutSeconds).toBe(10);
    expect(runInstallerCli(["uninstall", "--cni-bin-dir", bin, "--cni-net-dir", net], t.io)).toBe(0);
    expect(read("10-bridge.conflist")).toBe(roundTrip(BRIDGE_CONFLIST));
  });

  it.each([
    [["install", "--cni-net-dir", "/x"], /--cni-bin-dir and --cni-net-dir are required/],
    [["install", "--cni-bin-dir", "/b", "--cni-net-dir", "/n"], /--source FILE/],
    [
      ["install", "--cni-bin-dir", "/b", "--cni-net-dir", "/n", "--source", "/s", "--log-level", "loud"],
      /logLevel/,
    ],
    [
      ["install", "--cni-bin-dir", "/b", "--cni-net-dir", "/n", "--source", "/s", "--timeout-seconds", "x"],
      /timeout/,
    ],
    [["install", "--nope"], /Unknown option/],
    [["frobnicate"], /usage:/],
  ])("%j is refused", (argv, msg) => {
    const t = io();
    expect(runInstallerCli(argv, t.io)).toBe(2);
    expect(t.err.join("\n")).toMatch(msg);
  });
});
