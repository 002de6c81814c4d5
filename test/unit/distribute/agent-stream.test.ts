// The agent protocol end to end on loopback: the controller's agent channel
// (serveAgentChannel: real grpc-js server with TLS from a CA made here) and the agent's
// ControllerTableSource (real client). Authentication is the hub's injected
// function; the TokenReview-backed one is exercised on the cluster.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  AgentStreamClient,
  type ControllerMessage,
  MatchType,
  NodeTable,
  Protocol,
  RouteKind,
} from "@trellis/api";
import { type AgentChannel, createCA, type PemPair, serveAgentChannel } from "@trellis/controller";
import { AgentMetrics, ControllerTableSource } from "@trellis/node-agent";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { buildBundle } from "../../../packages/node-agent/src/testing/bundle.ts";
import {
  backend,
  closeClientAgents,
  forwardTo,
  freePort,
  type HttpBackend,
  httpMatch,
  listenerPortOf,
  listenSockets,
  table as loopbackTable,
  plainServices,
  request,
  startHttpBackend,
  testAgent,
} from "../../../packages/node-agent/src/testing/loopback.ts";
import { agentStreamStatus } from "../../support/agent-stream-status.ts";
import { eventually } from "../../support/eventually.ts";

const log = pino({ level: "silent" });
const TOKENS: Record<string, string> = { "token-n1": "n1", "token-n2": "n2" };

function table(node: string, epoch: number, number: number, pods: string[] = []): NodeTable {
  return {
    node,
    version: { epoch, number },
    services: [],
    backends: [],
    localPods: pods.map((name) => ({ namespace: "ns", name, ips: [], captured: true })),
    capturedNamespaces: ["ns"],
  };
}

let ca: PemPair;
let dir: string;

beforeAll(async () => {
  ca = await createCA("trellis-test-ca");
  dir = mkdtempSync(path.join(tmpdir(), "trellis-stream-"));
  writeFileSync(path.join(dir, "ca.pem"), ca.certPem);
  for (const t of Object.keys(TOKENS)) writeFileSync(path.join(dir, t), `${t}\n`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Controller extends AgentChannel {
  tables: Map<string, NodeTable>;
}

/** The controller's agent channel server (serveAgentChannel: what trellis-controller runs, minus the Kubernetes API). */
async function startController(port = 0, tables = new Map<string, NodeTable>()): Promise<Controller> {
  const channel = await serveAgentChannel({
    log,
    address: `127.0.0.1:${port}`,
    ca,
    serverNames: ["trellis-controller", "127.0.0.1"],
    currentTable: (node) => tables.get(node),
    authenticate: async (token) => {
      const node = TOKENS[token];
      if (!node) throw new Error("unknown token");
      return { node, pod: `trellis-system/agent-${node}` };
    },
    statsWindowMs: 30_000,
  });
  return { ...channel, tables };
}

const running: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  for (const r of running.splice(0).reverse()) await r.stop();
});

const rawStatus = (port: number, token: string | undefined, node: string) =>
  agentStreamStatus({
    address: `127.0.0.1:${port}`,
    caPem: ca.certPem,
    serverName: "trellis-controller",
    token,
    node,
  });

let agents = 0;
function startAgent(
  port: number,
  node: string,
  token: string,
  sink: (t: NodeTable) => Promise<unknown>,
  stateFile = path.join(dir, `table-${++agents}.bin`),
  extra: Partial<ConstructorParameters<typeof ControllerTableSource>[0]> = {},
) {
  const source = new ControllerTableSource({
    address: `127.0.0.1:${port}`,
    caFile: path.join(dir, "ca.pem"),
    tokenFile: path.join(dir, token),
    serverName: "trellis-controller",
    node,
    stateFile,
    agentVersion: "test",
    log,
    backoffInitialMs: 50,
    backoffMaxMs: 200,
    ...extra,
  });
  running.push(source);
  void source.start(sink);
  return source;
}

describe("agent protocol", () => {
  it("delivers the node's table, then each new version, and records the ACKs", async () => {
    const ctl = await startController();
    running.push(ctl);
    ctl.tables.set("n1", table("n1", 1, 1, ["a"]));
    ctl.tables.set("n2", table("n2", 1, 2, ["b"]));
    const got: NodeTable[] = [];
    startAgent(ctl.port, "n1", "token-n1", async (t) => got.push(t));
    await eventually("first ACK", () =>
      expect(ctl.registry.get("n1")?.lastAcked).toEqual({ epoch: 1, number: 1 }),
    );
    expect(got.map((t) => t.localPods[0]?.name)).toEqual(["a"]);
    ctl.tables.set("n1", table("n1", 1, 3, ["a", "c"]));
    ctl.hub.publish(["n1"]);
    await eventually("second ACK", () =>
      expect(ctl.registry.get("n1")?.lastAcked).toEqual({ epoch: 1, number: 3 }),
    );
    expect(got.at(-1)?.localPods.map((p) => p.name)).toEqual(["a", "c"]);
    // Publishing an unchanged table sends nothing.
    ctl.hub.publish(["n1"]);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toHaveLength(2);
  });

  it("sends later versions as deltas that carry only what changed", async () => {
    const ctl = await startController();
    running.push(ctl);
    const v1 = table("n1", 1, 1, ["a", "b"]);
    ctl.tables.set("n1", v1);
    const client = new AgentStreamClient(
      `127.0.0.1:${ctl.port}`,
      grpc.credentials.createSsl(Buffer.from(ca.certPem)),
      {
        "grpc.ssl_target_name_override": "trellis-controller",
      },
    );
    const md = new grpc.Metadata();
    md.set("authorization", "Bearer token-n1");
    const call = client.connect(md);
    const seen: ControllerMessage[] = [];
    call.on("data", (m: ControllerMessage) => seen.push(m));
    call.on("error", () => {});
    call.write({ message: { $case: "hello", hello: { node: "n1", agentVersion: "test" } } });
    await eventually("full table", () => expect(seen).toHaveLength(1));
    // v2 shares v1's parts, as the controller's tables do: only the new pod travels.
    const c = { namespace: "ns", name: "c", ips: [], captured: true };
    ctl.tables.set("n1", { ...v1, version: { epoch: 1, number: 2 }, localPods: [...v1.localPods, c] });
    ctl.hub.publish(["n1"]);
    await eventually("delta", () => expect(seen).toHaveLength(2));
    call.cancel();
    client.close();
    expect(seen[0]?.message?.$case).toBe("tableUpdate");
    expect(seen[1]?.message).toEqual({
      $case: "tableDelta",
      tableDelta: {
        base: { epoch: 1, number: 1 },
        version: { epoch: 1, number: 2 },
        services: [],
        backends: [],
        localPods: [
          { edit: { $case: "copy", copy: { from: 0, count: 2 } } },
          { edit: { $case: "insert", insert: c } },
        ],
      },
    });
  });

  it("rebuilds the exact table from deltas, also on a reconnect whose Hello names the current version", async () => {
    let ctl = await startController();
    const port = ctl.port;
    running.push(ctl);
    const v1 = table("n1", 1, 1, ["a", "b"]);
    ctl.tables.set("n1", v1);
    const got: NodeTable[] = [];
    startAgent(port, "n1", "token-n1", async (t) => got.push(t));
    await eventually("ACK 1", () => expect(ctl.registry.get("n1")?.lastAcked?.number).toBe(1));
    const v2: NodeTable = {
      ...v1,
      version: { epoch: 1, number: 2 },
      localPods: [
        v1.localPods[0]!,
        { namespace: "ns", name: "c", ips: ["10.0.0.3"], captured: false },
        v1.localPods[1]!,
      ],
    };
    ctl.tables.set("n1", v2);
    ctl.hub.publish(["n1"]);
    await eventually("ACK 2", () => expect(ctl.registry.get("n1")?.lastAcked?.number).toBe(2));
    expect(NodeTable.toJSON(got.at(-1)!)).toEqual(NodeTable.toJSON(v2));

    // The controller restarts still at v2: the agent's Hello names v2, nothing is
    // sent, and the next version is a delta on the table the agent applied.
    await ctl.stop();
    running.splice(running.indexOf(ctl), 1);
    ctl = await startController(port, new Map([["n1", v2]]));
    running.push(ctl);
    await eventually("reconnected", () => expect(ctl.registry.get("n1")?.lastAcked?.number).toBe(2), {
      timeoutMs: 10_000,
    });
    const v3: NodeTable = {
      ...v2,
      version: { epoch: 1, number: 3 },
      localPods: v2.localPods.slice(1),
      capturedNamespaces: ["ns", "other"],
    };
    ctl.tables.set("n1", v3);
    ctl.hub.publish(["n1"]);
    await eventually("ACK 3", () => expect(ctl.registry.get("n1")?.lastAcked?.number).toBe(3));
    expect(got.map((t) => t.version?.number)).toEqual([1, 2, 3]);
    expect(NodeTable.toJSON(got.at(-1)!)).toEqual(NodeTable.toJSON(v3));
  });

  it("NACKs a table the agent cannot apply and keeps the last good version", async () => {
    const ctl = await startController();
    running.push(ctl);
    ctl.tables.set("n1", table("n1", 1, 1));
    const src = startAgent(ctl.port, "n1", "token-n1", async (t) => {
      if (t.version?.number === 2) throw new Error("listener port 15100 in use");
    });
    await eventually("ACK", () => expect(ctl.registry.get("n1")?.lastAcked?.number).toBe(1));
    ctl.tables.set("n1", table("n1", 1, 2));
    ctl.hub.publish(["n1"]);
    await eventually("NACK", () =>
      expect(ctl.registry.get("n1")?.lastNack).toMatchObject({
        version: { number: 2 },
        reason: "listener port 15100 in use",
      }),
    );
    expect(src.applied()).toEqual({ epoch: 1, number: 1 });
    expect(ctl.registry.get("n1")?.lastAcked?.number).toBe(1);
  });

  it("refuses an agent asking for another node's table, and one with an unknown token", async () => {
    const ctl = await startController();
    running.push(ctl);
    ctl.tables.set("n1", table("n1", 1, 1));
    const received: NodeTable[] = [];
    writeFileSync(path.join(dir, "bogus"), "not-a-token");
    startAgent(ctl.port, "n1", "token-n2", async (t) => received.push(t));
    startAgent(ctl.port, "n1", "bogus", async (t) => received.push(t));
    await new Promise((r) => setTimeout(r, 500));
    expect(received).toEqual([]);
    expect(ctl.registry.get("n1")).toBeUndefined();
    expect(ctl.hub.connectedNodes()).toEqual([]);
    // The refusals carry the status codes and reasons an operator needs.
    expect(await rawStatus(ctl.port, "token-n2", "n1")).toMatchObject({
      code: grpc.status.PERMISSION_DENIED,
      details: expect.stringMatching(/node n2, not n1/),
    });
    expect(await rawStatus(ctl.port, undefined, "n1")).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
    expect(await rawStatus(ctl.port, "bogus", "n1")).toMatchObject({ code: grpc.status.UNAUTHENTICATED });
  });

  it("keeps serving through a controller restart and serves its persisted table when restarted alone", async () => {
    let ctl = await startController();
    const port = ctl.port;
    ctl.tables.set("n2", table("n2", 1, 5, ["x"]));
    const applied: NodeTable[] = [];
    const stateFile = path.join(dir, "restart-n2.bin");
    const agent = startAgent(port, "n2", "token-n2", async (t) => applied.push(t), stateFile);
    await eventually("ACK", () => expect(ctl.registry.get("n2")?.lastAcked?.number).toBe(5));
    await ctl.stop();
    // Controller gone: the agent still has its table and retries in the background.
    expect(agent.applied()).toEqual({ epoch: 1, number: 5 });
    await agent.stop();
    running.splice(running.indexOf(agent), 1);

    // An agent restarted while the controller is down serves the persisted table at once.
    const afterRestart: NodeTable[] = [];
    const again = startAgent(port, "n2", "token-n2", async (t) => afterRestart.push(t), stateFile);
    await eventually("persisted table applied", () =>
      expect(again.applied()).toEqual({ epoch: 1, number: 5 }),
    );
    expect(afterRestart[0]?.localPods[0]?.name).toBe("x");

    // A restarted controller (new epoch) is picked up by the reconnect loop.
    ctl = await startController(port, new Map([["n2", table("n2", 2, 1, ["x", "y"])]]));
    running.push(ctl);
    await eventually(
      "resync from the new controller",
      () => expect(again.applied()).toEqual({ epoch: 2, number: 1 }),
      {
        timeoutMs: 10_000,
      },
    );
    expect(afterRestart.map((t) => `${t.version?.epoch}.${t.version?.number}`)).toEqual(["1.5", "2.1"]);
  });

  it("abandons a connection attempt that never completes and reaches the controller on the next one", {
    timeout: 15_000,
  }, async () => {
    // A listener that accepts and then says nothing: what a SYN to a controller pod that just
    // died looks like from the agent, minus the minutes of kernel retries.
    const held: net.Socket[] = [];
    const blackHole = net.createServer((s) => held.push(s));
    await new Promise<void>((r) => blackHole.listen(0, "127.0.0.1", r));
    const port = (blackHole.address() as net.AddressInfo).port;
    try {
      const applied: NodeTable[] = [];
      startAgent(port, "n1", "token-n1", async (t) => applied.push(t), undefined, { connectTimeoutMs: 300 });
      await eventually(
        "a second attempt after the first hung",
        () => expect(held.length).toBeGreaterThan(1),
        {
          timeoutMs: 5_000,
        },
      );
      // The hung connections stay open; only the listener goes, and the controller takes the port.
      // (close()'s callback would wait for the held connections; the port is free at once.)
      blackHole.close();
      const ctl = await startController(port, new Map([["n1", table("n1", 1, 1)]]));
      running.push(ctl);
      await eventually("table from the controller", () => expect(applied.at(-1)?.version?.number).toBe(1), {
        timeoutMs: 5_000,
      });
    } finally {
      for (const s of held) s.destroy();
      blackHole.close();
    }
  });
});

describe("backend stats from agents", () => {
  let ok: HttpBackend;
  let failing: HttpBackend;
  beforeAll(async () => {
    ok = await startHttpBackend("ok");
    failing = await startHttpBackend("failing");
    failing.handler = (_req, res) => res.writeHead(503).end("down\n");
  });
  afterAll(async () => {
    closeClientAgents();
    await ok.close();
    await failing.close();
  });

  it("requests through a real agent reach the controller's stats window as per-backend counts", async () => {
    const ctl = await startController();
    running.push(ctl);
    // A service whose /fail path goes to a backend that answers 503.
    ctl.tables.set(
      "n1",
      loopbackTable({
        node: "n1",
        services: [
          {
            namespace: "shop",
            name: "web",
            clusterIps: ["10.96.7.1"],
            ports: [
              {
                port: 80,
                protocol: Protocol.PROTOCOL_HTTP1,
                defaultBackendId: "shop/web:80",
                routeSets: [
                  {
                    clientNamespace: "*",
                    kind: RouteKind.ROUTE_KIND_HTTP,
                    rules: [
                      { ruleIndex: 0, action: forwardTo(["shop/fail:80", 1]) },
                      { ruleIndex: 1, action: forwardTo(["shop/web:80", 1]) },
                    ],
                    matches: [
                      httpMatch(0, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/fail" } }),
                      httpMatch(1),
                    ],
                  },
                ],
              },
            ],
          },
        ],
        backends: [backend("shop/web:80", [ok.port]), backend("shop/fail:80", [failing.port])],
      }),
    );
    const metrics = new AgentMetrics();
    const agent = testAgent({ metrics });
    running.push({ stop: () => agent.close() });
    startAgent(ctl.port, "n1", "token-n1", (t) => agent.apply(t), undefined, {
      statsIntervalMs: 100,
      takeStats: () => metrics.backendStats.take(),
    });
    await eventually("ACK", () => expect(ctl.registry.get("n1")?.lastAcked?.number).toBe(1));
    const port = agent.listenerPorts().get("shop/web:80")!;
    for (let i = 0; i < 20; i++) expect((await request(port, { path: "/" })).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await request(port, { path: "/fail" })).status).toBe(503);

    await eventually("the controller's window holds every request", () =>
      expect(ctl.stats.summaries()).toEqual([
        {
          backendId: "shop/fail:80",
          requests: 5,
          failures: 5,
          p50Ms: expect.any(Number),
          p99Ms: expect.any(Number),
        },
        {
          backendId: "shop/web:80",
          requests: 20,
          failures: 0,
          p50Ms: expect.any(Number),
          p99Ms: expect.any(Number),
        },
      ]),
    );
    // Later reports are deltas: more requests add up, nothing is counted twice.
    for (let i = 0; i < 10; i++) await request(port, { path: "/" });
    await eventually("deltas add up", () => expect(ctl.stats.summary("shop/web:80").requests).toBe(30));
    await new Promise((r) => setTimeout(r, 300));
    expect(ctl.stats.summary("shop/web:80").requests).toBe(30);
  });

  it("the production bundle with --workers 2 streams its table over TLS, proxies on both threads and reports both threads' counts", async () => {
    const ctl = await startController();
    running.push(ctl);
    ctl.tables.set(
      "n1",
      loopbackTable({ node: "n1", ...plainServices(["shop/web:80", "10.96.7.1", [ok.port]]) }),
    );
    const bundle = buildBundle(dir);
    const adminPort = await freePort();
    const child = spawn(
      process.execPath,
      [
        bundle,
        ...["--controller", `127.0.0.1:${ctl.port}`, "--node", "n1", "--server-name", "trellis-controller"],
        ...["--ca-file", path.join(dir, "ca.pem"), "--token-file", path.join(dir, "token-n1")],
        ...["--state-dir", dir, "--listen-address", "127.0.0.1", "--admin-address", "127.0.0.1"],
        ...["--admin-port", String(adminPort), "--workers", "2", "--stats-interval-ms", "200"],
        ...["--drain-ms", "200", "--log-level", "warn"],
      ],
      { stdio: ["ignore", "inherit", "inherit"] },
    );
    const exited = new Promise((r) => child.once("exit", r));
    running.push({
      stop: async () => {
        child.kill("SIGTERM");
        await exited;
      },
    });
    await eventually("ACK", () => expect(ctl.registry.get("n1")?.lastAcked?.number).toBe(1));
    let port: number | undefined;
    await eventually("both threads listening", async () => {
      port = await listenerPortOf(adminPort, "shop/web:80");
      expect(port).toBeDefined();
      expect(listenSockets(port as number)).toBe(2);
    });
    // A connection each: the kernel spreads them over both threads' sockets.
    const codes = await Promise.all(
      Array.from({ length: 20 }, () =>
        request(port as number, { path: "/", from: "127.0.0.1" }).then((r) => r.status),
      ),
    );
    expect(codes).toEqual(Array(20).fill(200));
    await eventually(
      "the controller's window holds every request of both threads",
      () => expect(ctl.stats.summary("shop/web:80").requests).toBe(20),
      { timeoutMs: 10_000 },
    );
  }, 30_000);
});
