// TCP passthrough: TCP ports, and SNIFF ports whose first bytes are not HTTP.

import net from "node:net";
import { Protocol } from "@trellis/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "./agent.ts";
import { backend, table, testAgent } from "./testing/loopback.ts";

let echo: net.Server;
let greeter: net.Server;
let agent: Agent;
const ports = new Map<string, number>();

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)),
  );
}

beforeAll(async () => {
  echo = net.createServer((s) => s.pipe(s));
  // A server that speaks first, like SMTP or MySQL.
  greeter = net.createServer((s) => {
    s.write("220 hello\r\n");
    s.pipe(s);
  });
  const [e, g] = await Promise.all([listen(echo), listen(greeter)]);
  const svc = (name: string, protocol: Protocol, id: string) => ({
    namespace: "t",
    name,
    clusterIps: [`10.96.8.${name.length}`],
    ports: [{ port: 5000, protocol, defaultBackendId: id }],
  });
  agent = testAgent({ sniffTimeoutMs: 200 });
  await agent.apply(
    table({
      services: [
        svc("tcp", Protocol.PROTOCOL_TCP, "t/echo:5000"),
        svc("sniffed", Protocol.PROTOCOL_SNIFF, "t/echo:5000"),
        svc("greeter", Protocol.PROTOCOL_SNIFF, "t/greeter:5000"),
        svc("down", Protocol.PROTOCOL_TCP, "t/down:5000"),
      ],
      backends: [backend("t/echo:5000", [e]), backend("t/greeter:5000", [g]), backend("t/down:5000", [1])],
    }),
  );
  for (const [k, v] of agent.listenerPorts()) ports.set(k, v);
});

afterAll(async () => {
  await agent.close();
  echo.close();
  greeter.close();
});

function talk(port: number, send: Buffer | null, expectBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1");
    let got = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length >= expectBytes) {
        s.destroy();
        resolve(got.toString("latin1"));
      }
    });
    s.on("error", reject);
    s.on("close", () => resolve(got.toString("latin1")));
    if (send !== null) s.write(send);
  });
}

describe("TCP passthrough", () => {
  it("pipes bytes both ways on a TCP port", async () => {
    const payload = Buffer.from("\x00\x01binary\xffpayload", "latin1");
    expect(await talk(ports.get("t/tcp:5000") as number, payload, payload.length)).toBe(
      payload.toString("latin1"),
    );
  });

  it("a SNIFF port passes non-HTTP bytes through as TCP", async () => {
    const payload = Buffer.from("\x16\x03\x01 looks like TLS, not HTTP", "latin1");
    expect(await talk(ports.get("t/sniffed:5000") as number, payload, payload.length)).toBe(
      payload.toString("latin1"),
    );
  });

  it("a SNIFF port lets a server-speaks-first protocol through after the sniff timeout", async () => {
    const t0 = performance.now();
    const got = await talk(ports.get("t/greeter:5000") as number, null, 11);
    expect(got).toBe("220 hello\r\n");
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
  });

  it("an unreachable endpoint closes the client connection", async () => {
    expect(await talk(ports.get("t/down:5000") as number, Buffer.from("x"), 1)).toBe("");
  });
});
