// Applying table versions: atomic swaps under load, listeners added and
// removed without disturbing others, rejected tables, port allocation.

import net from "node:net";
import { MatchType, Protocol, RouteKind } from "@trellis/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "./agent.ts";
import { TableError } from "./table/compile.ts";
import {
  backend,
  closeClientAgents,
  forwardTo,
  freePort,
  type HttpBackend,
  httpMatch,
  portRange,
  request,
  sleep,
  startHttpBackend,
  table,
  testAgent,
} from "./testing/loopback.ts";

let a: HttpBackend;
let b: HttpBackend;
let c: HttpBackend;

beforeAll(async () => {
  [a, b, c] = await Promise.all([startHttpBackend("a"), startHttpBackend("b"), startHttpBackend("c")]);
  for (const x of [a, b, c]) {
    x.handler = (req, res, body) => {
      const delay = Number(new URL(req.url ?? "/", "http://x").searchParams.get("delay") ?? "0");
      const send = (): void => {
        res.setHeader("x-backend", x.name);
        res.end(`${x.name}:${body.length}`);
      };
      if (delay > 0) setTimeout(send, delay);
      else send();
    };
  }
});

afterAll(async () => {
  closeClientAgents();
  await Promise.all([a.close(), b.close(), c.close()]);
});

const range = portRange();

/** Version n routes /x to a or b, moves endpoints around, and toggles an extra service every 10 versions. */
function versionN(n: number) {
  const target = n % 2 === 0 ? "s/a:80" : "s/b:80";
  const services = [
    {
      namespace: "s",
      name: "web",
      clusterIps: ["10.96.4.1"],
      ports: [
        {
          port: 80,
          protocol: Protocol.PROTOCOL_HTTP1,
          defaultBackendId: "s/a:80",
          routeSets: [
            {
              clientNamespace: "*",
              kind: RouteKind.ROUTE_KIND_HTTP,
              rules: [
                {
                  route: { kind: RouteKind.ROUTE_KIND_HTTP, namespace: "s", name: "web" },
                  action: forwardTo([target, 1]),
                },
              ],
              matches: [httpMatch(0, { path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/" } })],
            },
          ],
        },
      ],
    },
  ];
  if (Math.floor(n / 10) % 2 === 1) {
    services.push({
      namespace: "s",
      name: `extra-${Math.floor(n / 20)}`,
      clusterIps: ["10.96.4.2"],
      ports: [{ port: 81, protocol: Protocol.PROTOCOL_HTTP1, defaultBackendId: "s/c:80", routeSets: [] }],
    } as unknown as (typeof services)[number]);
  }
  return table(
    {
      settings: range,
      services,
      backends: [
        // Endpoint sets change between versions too (a gains and loses c's endpoint).
        backend("s/a:80", n % 3 === 0 ? [a.port] : [a.port, c.port]),
        backend("s/b:80", [b.port]),
        backend("s/c:80", [c.port]),
      ],
    },
    n,
  );
}

describe("table swaps", () => {
  let agent: Agent;

  beforeAll(async () => {
    agent = testAgent();
    await agent.apply(versionN(0));
  });

  afterAll(async () => {
    await agent.close();
    // The next agents reuse these listener ports: drop client connections to the closed ones.
    closeClientAgents();
  });

  it("100 versions under steady load fail no request; in-flight requests finish on their version", async () => {
    const port = agent.listenerPorts().get("s/web:80") as number;
    let stop = false;
    let ok = 0;
    const failures: string[] = [];
    const loop = async (i: number): Promise<void> => {
      while (!stop) {
        try {
          const post = i % 2 === 0;
          const r = await request(
            port,
            post ? { method: "POST", path: "/x", body: "y".repeat(100) } : { path: "/x" },
          );
          if (r.status === 200) ok++;
          else failures.push(`status ${r.status}`);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    // A slow request that starts on version 0 (→ a) and must finish there.
    const slow = request(port, { path: "/x?delay=600" });
    // Swaps start only once the slow request has reached its backend under version 0.
    const arrived = () => [...a.requests, ...c.requests].some((r) => r.url === "/x?delay=600");
    for (let i = 0; i < 200 && !arrived(); i++) await sleep(5);
    expect(arrived()).toBe(true);
    const loops = Array.from({ length: 8 }, (_, i) => loop(i));
    for (let n = 1; n <= 100; n++) {
      await agent.apply(versionN(n));
      await sleep(5);
    }
    stop = true;
    await Promise.all(loops);
    const s = await slow;
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(200);
    expect(s.status).toBe(200);
    expect(["a", "c"]).toContain(s.headers["x-backend"]);
    expect(agent.version?.number).toBe(100);
  });

  it("a new version applies to the very next request", async () => {
    const port = agent.listenerPorts().get("s/web:80") as number;
    await agent.apply(versionN(201));
    expect((await request(port, { path: "/x" })).headers["x-backend"]).toBe("b");
    await agent.apply(versionN(200));
    expect(["a", "c"]).toContain((await request(port, { path: "/x" })).headers["x-backend"]);
  });
});

describe("listeners", () => {
  it("are added and removed without disturbing the others; a removed listener drains", async () => {
    const agent = testAgent();
    try {
      await agent.apply(versionN(10)); // web + extra-0
      const web = agent.listenerPorts().get("s/web:80") as number;
      const extra = agent.listenerPorts().get("s/extra-0:81") as number;
      expect(extra).toBeGreaterThan(0);
      const onWeb = request(web, { path: "/x?delay=300" });
      const onExtra = request(extra, { path: "/x?delay=300" });
      await sleep(50);
      await agent.apply(versionN(30)); // web + extra-1: extra-0 removed, extra-1 added
      const ports = agent.listenerPorts();
      expect(ports.get("s/web:80")).toBe(web);
      expect(ports.has("s/extra-0:81")).toBe(false);
      const extra1 = ports.get("s/extra-1:81") as number;
      expect(extra1).not.toBe(web);
      // Both in-flight requests complete; the new listener serves at once.
      expect((await onWeb).status).toBe(200);
      const drained = await onExtra;
      expect(drained.status).toBe(200);
      expect(drained.headers.connection).toBe("close");
      expect((await request(extra1, { path: "/x" })).headers["x-backend"]).toBe("c");
      // After draining, the removed port refuses connections.
      await sleep(50);
      await expect(
        new Promise((resolve, reject) => {
          const s = net.connect(extra, "127.0.0.1");
          s.on("connect", () => {
            s.destroy();
            resolve("connected");
          });
          s.on("error", reject);
        }),
      ).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await agent.close();
      closeClientAgents();
    }
  });

  it("the port map lists every cluster IP of a service port and changes with the table", async () => {
    const seen: number[] = [];
    const agent = testAgent({ onPortMap: (m) => seen.push(m.length) });
    try {
      await agent.apply(versionN(0));
      await agent.apply(versionN(10));
      expect(seen).toEqual([1, 2]);
      expect(agent.portMap().map((e) => `${e.serviceIp}:${e.port}`)).toEqual([
        "10.96.4.1:80",
        "10.96.4.2:81",
      ]);
    } finally {
      await agent.close();
      closeClientAgents();
    }
  });
});

describe("rejected tables", () => {
  it("an inconsistent table is rejected and the last good one keeps serving", async () => {
    const agent = testAgent();
    try {
      await agent.apply(versionN(0));
      const port = agent.listenerPorts().get("s/web:80") as number;
      const bad = versionN(1);
      bad.backends = bad.backends.filter((x) => x.id !== "s/b:80");
      await expect(agent.apply(bad)).rejects.toBeInstanceOf(TableError);
      expect(agent.version?.number).toBe(0);
      expect((await request(port, { path: "/x" })).status).toBe(200);
    } finally {
      await agent.close();
      closeClientAgents();
    }
  });

  it("running out of listener ports rejects the table without touching the listeners", async () => {
    const agent = testAgent();
    try {
      const free = await freePort();
      const one = { listenerPortMin: free, listenerPortMax: free };
      const t0 = versionN(0);
      t0.settings = { ...t0.settings!, ...one };
      await agent.apply(t0);
      const t1 = versionN(10);
      t1.settings = { ...t1.settings!, ...one };
      await expect(agent.apply(t1)).rejects.toThrow(/no free listener port/);
      expect(agent.version?.number).toBe(0);
      expect([...agent.listenerPorts().keys()]).toEqual(["s/web:80"]);
    } finally {
      await agent.close();
      closeClientAgents();
    }
  });

  it("a listener port taken by another process is skipped", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const first = (blocker.address() as net.AddressInfo).port;
    const agent = testAgent();
    try {
      const t = versionN(0);
      t.settings = { ...t.settings!, listenerPortMin: first, listenerPortMax: first + 20 };
      await agent.apply(t);
      const got = agent.listenerPorts().get("s/web:80") as number;
      expect(got).toBeGreaterThan(first);
      expect(got).toBeLessThanOrEqual(first + 20);
    } finally {
      await agent.close();
      blocker.close();
    }
  });
});
