// Two agents on one node during a rolling update (DaemonSet maxSurge): the new
// one binds the old one's listener ports (SO_REUSEPORT, ports adopted from the
// programmed map), both serve, and the old one drains on SIGTERM without
// failing a request of a steady stream. Real sockets on 127.0.0.1.

import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "./agent.ts";
import { get, type HandoverResult, runHandover, slowBackends, webTable } from "./testing/handover.ts";
import { type HttpBackend, portRange, testAgent } from "./testing/loopback.ts";

const haveRoot = process.getuid?.() === 0;
const haveIp = spawnSync("ip", ["-V"]).status === 0;

function report(label: string, r: HandoverResult): void {
  console.log(
    `${label}: ${r.requests} requests, ${r.failures.length} failed${r.failures.length ? ` (${r.failures.join("; ")})` : ""}; ` +
      `drain ${r.drainedMs} ms; before SIGTERM old=${r.before.old} new=${r.before.new}`,
  );
}

describe("two agents on one port", () => {
  let a: HttpBackend;
  let b: HttpBackend;
  let oldAgent: Agent;
  let newAgent: Agent;

  beforeAll(async () => {
    [a, b] = await slowBackends();
    const range = portRange();
    oldAgent = testAgent({ reusePort: true });
    await oldAgent.apply(webTable(range, a, false));
    newAgent = testAgent({ reusePort: true });
    newAgent.adoptPorts(oldAgent.portMap());
    await newAgent.apply(webTable(range, b, true));
  });

  afterAll(async () => {
    await Promise.all([oldAgent.close(), newAgent.close()]);
    await Promise.all([a.close(), b.close()]);
  });

  it("the new agent binds the old one's port for the same service port, never for another, and both serve it", async () => {
    const port = oldAgent.listenerPorts().get("s/web:80") as number;
    expect(newAgent.listenerPorts().get("s/web:80")).toBe(port);
    expect(newAgent.listenerPorts().get("s/api:80")).not.toBe(port);
    const seen = new Set<string>();
    for (let i = 0; i < 100 && seen.size < 2; i++) {
      // A new connection each: the kernel picks one of the sockets per connection.
      const r = await get(port, false);
      seen.add(r.error ?? r.backend);
    }
    expect([...seen].sort()).toEqual(["new", "old"]);
  });
});

describe("SIGTERM drain of the old agent under steady load", () => {
  it("loses no request on keep-alive connections", async () => {
    const r = await runHandover({ pooled: 12, fresh: 0 });
    report("keep-alive", r);
    expect(r.failures).toEqual([]);
    expect(r.before.old).toBeGreaterThan(0);
    expect(r.afterCount).toBeGreaterThan(0);
    expect(r.afterOnlyNew).toBe(true);
    // Busy connections leave after their next response, not at the deadline.
    expect(r.drainedMs).toBeLessThan(2_500);
  });

  it("leaves an idle keep-alive connection open until the drain deadline, then closes it gracefully", async () => {
    const [a, b] = await slowBackends();
    const agent = testAgent();
    const pool = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await agent.apply(webTable(portRange(), a, false));
      const port = agent.listenerPorts().get("s/web:80") as number;
      expect((await get(port, pool)).backend).toBe("old");
      const socket = Object.values(pool.freeSockets).flat()[0];
      expect(socket).toBeDefined();
      let error: Error | undefined;
      socket?.on("error", (err) => {
        error = err;
      });
      const closed = new Promise<number>((r) => socket?.once("close", () => r(performance.now())));
      const t0 = performance.now();
      await agent.shutdown(1_500);
      const took = (await closed) - t0;
      console.log(`idle keep-alive connection closed ${Math.round(took)} ms into a 1500 ms drain`);
      expect(took).toBeGreaterThan(1_400);
      expect(took).toBeLessThan(2_500);
      expect(error).toBeUndefined();
    } finally {
      pool.destroy();
      await agent.close();
      await Promise.all([a.close(), b.close()]);
    }
  });

  // New connections can sit in the closing listener's accept queue; only tcp_migrate_req hands
  // them to the other socket. It is a per-netns sysctl, so this runs in a namespace of its own.
  it.skipIf(!haveRoot || !haveIp)(
    "loses no request on new connections either with net.ipv4.tcp_migrate_req=1 (private netns)",
    () => {
      const ns = `trellis-handover-${randomBytes(3).toString("hex")}`;
      const script = fileURLToPath(new URL("./testing/handover.ts", import.meta.url));
      execFileSync("ip", ["netns", "add", ns]);
      try {
        execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
        const run = (migrate: 0 | 1): HandoverResult[] => {
          execFileSync("ip", [
            "netns",
            "exec",
            ns,
            "sysctl",
            "-q",
            "-w",
            `net.ipv4.tcp_migrate_req=${migrate}`,
          ]);
          const out = execFileSync("ip", ["netns", "exec", ns, process.execPath, script, "6", "6", "4"], {
            encoding: "utf8",
            timeout: 60_000,
          });
          return out
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l) as HandoverResult);
        };
        const without = run(0);
        for (const r of without) report("new connections, tcp_migrate_req=0", r);
        const withMigration = run(1);
        for (const r of withMigration) report("new connections, tcp_migrate_req=1", r);
        expect(withMigration.flatMap((r) => r.failures)).toEqual([]);
        expect(withMigration.every((r) => r.afterOnlyNew && r.before.old > 0)).toBe(true);
      } finally {
        execFileSync("ip", ["netns", "del", ns]);
      }
    },
    120_000,
  );
});
