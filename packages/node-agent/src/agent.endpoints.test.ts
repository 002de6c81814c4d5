// Endpoint choice: P2C over peak-EWMA, and per-endpoint circuit breakers.

import { Protocol } from "@trellis/api";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { Agent } from "./agent.ts";
import {
  backend,
  closeClientAgents,
  type HttpBackend,
  request,
  sleep,
  startHttpBackend,
  table,
  testAgent,
} from "./testing/loopback.ts";

let e1: HttpBackend;
let e2: HttpBackend;
let fast: HttpBackend;
let slow: HttpBackend;
let agent: Agent;
let rateAgent: Agent;
const broken = new Set<string>();
const RESET_MS = 1_000;

function failing(b: HttpBackend): void {
  b.handler = (_req, res) => {
    if (broken.has(b.name)) {
      res.writeHead(500);
      res.end("broken");
    } else res.end(b.name);
  };
}

const service = (name: string, backendId: string) => ({
  namespace: "e",
  name,
  clusterIps: [`10.96.3.${name.length}`],
  ports: [{ port: 80, protocol: Protocol.PROTOCOL_HTTP1, defaultBackendId: backendId }],
});

beforeAll(async () => {
  [e1, e2, fast, slow] = await Promise.all([
    startHttpBackend("e1"),
    startHttpBackend("e2"),
    startHttpBackend("fast"),
    startHttpBackend("slow"),
  ]);
  failing(e1);
  failing(e2);
  fast.handler = (_req, res) => res.end("fast");
  slow.handler = (_req, res) => setTimeout(() => res.end("slow"), 20);
  const t = table({
    services: [service("pair", "e/pair:80"), service("lb", "e/lb:80"), service("solo", "e/solo:80")],
    backends: [
      backend("e/pair:80", [e1.port, e2.port]),
      backend("e/lb:80", [fast.port, slow.port]),
      backend("e/solo:80", [e1.port]),
    ],
  });
  // A short EWMA decay: with sequential requests, peak EWMA would otherwise keep
  // preferring whichever endpoint looked faster for seconds.
  agent = testAgent({
    ewmaDecayMs: 50,
    breaker: { consecutiveFailures: 3, resetTimeoutMs: RESET_MS, volumeThreshold: 1_000 },
  });
  await agent.apply(t);
  // A second agent whose breakers open on the error rate only.
  rateAgent = testAgent({
    ewmaDecayMs: 50,
    breaker: {
      consecutiveFailures: 0,
      errorThresholdPercentage: 50,
      volumeThreshold: 10,
      resetTimeoutMs: 60_000,
    },
  });
  await rateAgent.apply(t);
});

afterAll(async () => {
  closeClientAgents();
  await Promise.all([agent.close(), rateAgent.close()]);
  await Promise.all([e1.close(), e2.close(), fast.close(), slow.close()]);
});

const portOf = (a: Agent, key: string) => a.listenerPorts().get(key) as number;

function stateOf(a: Agent, backendId: string, b: HttpBackend): string | undefined {
  return a.endpointStates().find((s) => s.backend === backendId && s.address.endsWith(`:${b.port}`))?.breaker;
}

describe("circuit breaker", { timeout: 20_000 }, () => {
  it("ejects a failing endpoint after consecutive failures and recovers it through a half-open probe", async () => {
    const port = portOf(agent, "e/pair:80");
    broken.add("e1");
    onTestFinished(() => {
      broken.delete("e1");
    });
    let failures = 0;
    // P2C decides how often e1 is tried (it may avoid it for a while under CPU
    // contention), so loop until the breaker reacts rather than a fixed count.
    // Bounded by time, not by a count: on a fast, idle machine hundreds of
    // requests fit in the time a penalised endpoint needs to become eligible again.
    for (
      const deadline = Date.now() + 8_000;
      Date.now() < deadline && stateOf(agent, "e/pair:80", e1) !== "open";
    ) {
      if ((await request(port)).status === 500) failures++;
    }
    expect(stateOf(agent, "e/pair:80", e1)).toBe("open");
    expect(failures).toBe(3);
    const before = e1.requests.length;
    for (let i = 0; i < 20; i++) expect((await request(port)).status).toBe(200);
    expect(e1.requests.length).toBe(before);

    broken.delete("e1");
    await sleep(RESET_MS + 50);
    expect(stateOf(agent, "e/pair:80", e1)).toBe("half_open");
    for (let i = 0; i < 500 && stateOf(agent, "e/pair:80", e1) !== "closed"; i++) {
      expect((await request(port)).status).toBe(200);
    }
    expect(stateOf(agent, "e/pair:80", e1)).toBe("closed");
    expect(e1.requests.length).toBe(before + 1);
  });

  it("a failed half-open probe opens the breaker again", async () => {
    const port = portOf(agent, "e/pair:80");
    broken.add("e2");
    onTestFinished(() => {
      broken.delete("e2");
    });
    for (let i = 0; i < 500 && stateOf(agent, "e/pair:80", e2) !== "open"; i++) await request(port);
    expect(stateOf(agent, "e/pair:80", e2)).toBe("open");
    await sleep(RESET_MS + 50);
    expect(stateOf(agent, "e/pair:80", e2)).toBe("half_open");
    let failures = 0;
    for (let i = 0; i < 500 && stateOf(agent, "e/pair:80", e2) === "half_open"; i++) {
      if ((await request(port)).status === 500) failures++;
    }
    // Exactly the probe failed, and the endpoint is out again.
    expect(failures).toBe(1);
    expect(stateOf(agent, "e/pair:80", e2)).toBe("open");
  });

  it("never ejects every endpoint of a backend", async () => {
    const port = portOf(agent, "e/solo:80");
    broken.add("e1");
    try {
      for (let i = 0; i < 10; i++) {
        // The breaker opens, but the only endpoint still gets the request: its 500, not an agent 503.
        const r = await request(port);
        expect(r.status).toBe(500);
        expect(r.body).toBe("broken");
      }
      expect(stateOf(agent, "e/solo:80", e1)).toBe("open");
    } finally {
      broken.delete("e1");
    }
  });

  it("opens on the error rate when consecutive failures never reach a limit", async () => {
    const port = portOf(rateAgent, "e/pair:80");
    let n = 0;
    e2.handler = (_req, res) => {
      // Fails two of every three requests: never many in a row, but a 67 % error rate.
      if (n++ % 3 !== 2) {
        res.writeHead(500);
        res.end("x");
      } else res.end("e2");
    };
    try {
      for (
        const deadline = Date.now() + 8_000;
        Date.now() < deadline && stateOf(rateAgent, "e/pair:80", e2) !== "open";
      ) {
        await request(port);
      }
      expect(stateOf(rateAgent, "e/pair:80", e2)).toBe("open");
      // The breaker needed at least volumeThreshold (10) requests on e2 to judge.
      expect(e2.requests.length).toBeGreaterThanOrEqual(10);
      const before = e2.requests.length;
      for (let i = 0; i < 30; i++) expect((await request(port)).status).toBe(200);
      expect(e2.requests.length).toBe(before);
    } finally {
      failing(e2);
    }
  });
});

describe("power of two choices over peak EWMA", () => {
  it("sends most requests to the faster endpoint", async () => {
    const port = portOf(agent, "e/lb:80");
    const startFast = fast.requests.length;
    const startSlow = slow.requests.length;
    // Concurrency 4, 50 rounds.
    for (let round = 0; round < 50; round++) {
      await Promise.all([0, 1, 2, 3].map(() => request(port)));
    }
    const f = fast.requests.length - startFast;
    const s = slow.requests.length - startSlow;
    expect(f + s).toBe(200);
    expect(f / 200).toBeGreaterThan(0.7);
    // The slow endpoint is not starved completely: load still spreads when the fast one queues.
    expect(s).toBeGreaterThan(0);
  });
});
