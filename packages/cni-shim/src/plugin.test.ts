import type { CniRequest } from "@trellis/api/cni";
import pino from "pino";
import { describe, expect, it } from "vitest";
import type { AgentAnswer } from "./agent-client.ts";
import type { CapturedNamespaces } from "./captured-namespaces.ts";
import { type PluginDeps, runPlugin } from "./plugin.ts";

const PREV = {
  cniVersion: "1.0.0",
  interfaces: [{ name: "eth0", mac: "aa:bb:cc:dd:ee:ff", sandbox: "/var/run/netns/p" }],
  ips: [{ address: "10.244.1.5/24", gateway: "10.244.1.1", interface: 0 }],
  routes: [{ dst: "0.0.0.0/0" }],
  dns: {},
};
const ENV = {
  CNI_CONTAINERID: "c1",
  CNI_NETNS: "/var/run/netns/p",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
  CNI_ARGS:
    "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=u1",
};
const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ cniVersion: "1.0.0", name: "k8s", type: "trellis-cni", prevResult: PREV, ...extra });

interface Run {
  calls: { socketPath: string; req: CniRequest; timeoutMs: number }[];
  logs: Record<string, unknown>[];
}

function deps(answer: AgentAnswer, namespaces: CapturedNamespaces = { kind: "absent" }): PluginDeps & Run {
  const calls: Run["calls"] = [];
  const logs: Run["logs"] = [];
  return {
    calls,
    logs,
    askAgent: async (socketPath, req, timeoutMs) => {
      calls.push({ socketPath, req, timeoutMs });
      return answer;
    },
    readCapturedNamespaces: async () => namespaces,
    makeLog: (s) => pino({ level: s.logLevel }, { write: (l: string) => logs.push(JSON.parse(l)) }),
  };
}
const done: AgentAnswer = { kind: "done", captured: true };
const down: AgentAnswer = { kind: "unavailable", reason: "connect ENOENT /var/run/trellis/cni.sock" };
const listed = (...ns: string[]): CapturedNamespaces => ({ kind: "listed", namespaces: new Set(ns) });

describe("ADD", () => {
  it("asks the agent, then prints prevResult unchanged", async () => {
    const d = deps(done, listed("shop"));
    const out = await runPlugin({ ...ENV, CNI_COMMAND: "ADD" }, conf(), d);
    expect(out).toEqual({ stdout: `${JSON.stringify(PREV)}\n`, exitCode: 0 });
    expect(d.calls).toEqual([
      {
        socketPath: "/var/run/trellis/cni.sock",
        timeoutMs: 30_000,
        req: {
          command: "ADD",
          containerId: "c1",
          netns: "/var/run/netns/p",
          ifName: "eth0",
          podNamespace: "shop",
          podName: "web-0",
          podUid: "u1",
          ips: ["10.244.1.5"],
        },
      },
    ]);
  });

  it("stamps the config's cniVersion on the passed-through result", async () => {
    const out = await runPlugin({ ...ENV, CNI_COMMAND: "ADD" }, conf({ cniVersion: "0.4.0" }), deps(done));
    expect(JSON.parse(out.stdout)).toEqual({ ...PREV, cniVersion: "0.4.0" });
  });

  it("waits only briefly for pods of namespaces not listed as captured", async () => {
    const d = deps(done, listed("other"));
    await runPlugin({ ...ENV, CNI_COMMAND: "ADD" }, conf({ uncapturedTimeoutSeconds: 1.5 }), d);
    expect(d.calls[0]?.timeoutMs).toBe(1500);
  });

  it("fails when the agent refuses", async () => {
    const out = await runPlugin(
      { ...ENV, CNI_COMMAND: "ADD" },
      conf(),
      deps({ kind: "refused", status: 500, message: "nft: syntax error" }),
    );
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toEqual({
      cniVersion: "1.0.0",
      code: 100,
      msg: "Trellis agent refused pod shop/web-0: nft: syntax error",
      details: "HTTP 500 from /var/run/trellis/cni.sock",
    });
  });

  it("agent down, namespace captured: code 11 and a log line saying why", async () => {
    const d = deps(down, listed("shop"));
    const out = await runPlugin({ ...ENV, CNI_COMMAND: "ADD" }, conf(), d);
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout).code).toBe(11);
    expect(d.logs).toHaveLength(1);
    expect(d.logs[0]).toMatchObject({ level: 40, command: "ADD", pod: "shop/web-0", code: 11 });
  });

  it("agent down, namespace not captured: passes through", async () => {
    const out = await runPlugin({ ...ENV, CNI_COMMAND: "ADD" }, conf(), deps(down, listed("other")));
    expect(out).toEqual({ stdout: `${JSON.stringify(PREV)}\n`, exitCode: 0 });
  });

  it("without prevResult it is not chained: code 7", async () => {
    const d = deps(done);
    const out = await runPlugin({ ...ENV, CNI_COMMAND: "ADD" }, conf({ prevResult: undefined }), d);
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 7, msg: expect.stringContaining("chained plugin") });
    expect(d.calls).toEqual([]);
  });

  it("a pod without Kubernetes identity passes through without asking", async () => {
    const d = deps(down, listed("shop"));
    const out = await runPlugin({ ...ENV, CNI_ARGS: "", CNI_COMMAND: "ADD" }, conf(), d);
    expect(out.exitCode).toBe(0);
    expect(d.calls).toEqual([]);
  });

  it("malformed prevResult.ips: code 7", async () => {
    const out = await runPlugin(
      { ...ENV, CNI_COMMAND: "ADD" },
      conf({ prevResult: { ips: [{ address: "x" }] } }),
      deps(done),
    );
    expect(JSON.parse(out.stdout).code).toBe(7);
  });

  it("missing environment: code 4, reported in the config's version", async () => {
    const out = await runPlugin({ CNI_COMMAND: "ADD" }, conf({ cniVersion: "0.3.1" }), deps(done));
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ cniVersion: "0.3.1", code: 4 });
  });

  it("a thrown error is still a spec-shaped failure", async () => {
    const d = deps(done);
    d.askAgent = async () => {
      throw new Error("boom");
    };
    const out = await runPlugin({ ...ENV, CNI_COMMAND: "ADD" }, conf(), d);
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 5, msg: "trellis-cni ADD failed: boom" });
  });
});

describe("CHECK", () => {
  it("succeeds silently when the agent confirms", async () => {
    const d = deps(done, listed("shop"));
    expect(await runPlugin({ ...ENV, CNI_COMMAND: "CHECK" }, conf(), d)).toEqual({ stdout: "", exitCode: 0 });
    expect(d.calls[0]?.req.command).toBe("CHECK");
  });

  it("applies the namespace rule when the agent is down", async () => {
    const fail = await runPlugin({ ...ENV, CNI_COMMAND: "CHECK" }, conf(), deps(down, listed("shop")));
    expect(JSON.parse(fail.stdout).code).toBe(11);
    const pass = await runPlugin({ ...ENV, CNI_COMMAND: "CHECK" }, conf(), deps(down, listed()));
    expect(pass).toEqual({ stdout: "", exitCode: 0 });
  });

  it("needs prevResult, and a config version that has CHECK", async () => {
    expect(
      JSON.parse(
        (await runPlugin({ ...ENV, CNI_COMMAND: "CHECK" }, conf({ prevResult: undefined }), deps(done)))
          .stdout,
      ).code,
    ).toBe(7);
    expect(
      JSON.parse(
        (await runPlugin({ ...ENV, CNI_COMMAND: "CHECK" }, conf({ cniVersion: "0.3.1" }), deps(done))).stdout,
      ).code,
    ).toBe(1);
  });
});

describe("DEL", () => {
  it("tells the agent and prints nothing", async () => {
    const d = deps(done);
    expect(await runPlugin({ ...ENV, CNI_COMMAND: "DEL" }, conf(), d)).toEqual({ stdout: "", exitCode: 0 });
    expect(d.calls[0]).toMatchObject({ timeoutMs: 5000, req: { command: "DEL", ips: ["10.244.1.5"] } });
  });

  it("succeeds with the agent down, no netns and no prevResult", async () => {
    const env = { ...ENV, CNI_NETNS: "", CNI_COMMAND: "DEL" };
    expect(await runPlugin(env, conf({ prevResult: undefined }), deps(down, listed("shop")))).toEqual({
      stdout: "",
      exitCode: 0,
    });
  });

  it("succeeds even when the agent refuses or prevResult is garbage", async () => {
    const d = deps({ kind: "refused", status: 500, message: "x" });
    expect(
      (await runPlugin({ ...ENV, CNI_COMMAND: "DEL" }, conf({ prevResult: { ips: 3 } }), d)).exitCode,
    ).toBe(0);
  });
});

describe("VERSION, GC, STATUS, unknown", () => {
  it("VERSION needs no config", async () => {
    expect(await runPlugin({ CNI_COMMAND: "VERSION" }, "", deps(done))).toEqual({
      stdout: '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n',
      exitCode: 0,
    });
  });

  it("GC and STATUS (CNI 1.1) succeed without the agent", async () => {
    for (const c of ["GC", "STATUS"]) {
      const d = deps(down, listed("shop"));
      expect(await runPlugin({ CNI_COMMAND: c }, conf({ cniVersion: "1.1.0" }), d)).toEqual({
        stdout: "",
        exitCode: 0,
      });
      expect(d.calls).toEqual([]);
    }
  });

  it("an unknown command is code 4", async () => {
    const out = await runPlugin({ ...ENV, CNI_COMMAND: "FROB" }, conf(), deps(done));
    expect(out.exitCode).toBe(1);
    expect(JSON.parse(out.stdout)).toEqual({
      cniVersion: "1.0.0",
      code: 4,
      msg: 'unknown CNI_COMMAND "FROB"',
    });
  });

  it("a config that is not JSON is code 6", async () => {
    expect(
      JSON.parse((await runPlugin({ ...ENV, CNI_COMMAND: "ADD" }, "nope", deps(done))).stdout).code,
    ).toBe(6);
  });
});
