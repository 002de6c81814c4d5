// Helpers for tests on real loopback sockets: echo backends, table builders,
// an agent on a private port range, and a client that can pick its source IP.

import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { NodeTable, Protocol } from "@trellis/api";
import pino from "pino";
import { Agent, type AgentOptions } from "../agent.ts";

type DeepPartialTable = Parameters<typeof NodeTable.fromPartial>[0];

export interface EchoRecord {
  backend: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpBackend {
  name: string;
  port: number;
  requests: EchoRecord[];
  /** Replaces the default echo behaviour. */
  handler: ((req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) | null;
  close(): Promise<void>;
}

/** An HTTP/1.1 backend that answers with a JSON echo of what it received. */
export async function startHttpBackend(name: string): Promise<HttpBackend> {
  const requests: EchoRecord[] = [];
  const backend: HttpBackend = {
    name,
    port: 0,
    requests,
    handler: null,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const rec: EchoRecord = {
        backend: name,
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body,
      };
      requests.push(rec);
      if (backend.handler !== null) {
        backend.handler(req, res, body);
        return;
      }
      const out = JSON.stringify(rec);
      res.writeHead(200, { "content-type": "application/json", "x-backend": name });
      res.end(out);
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  backend.port = (server.address() as AddressInfo).port;
  return backend;
}

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agents = new Map<string, http.Agent>();

/** One keep-alive agent per source address, so requests reuse connections like real clients. */
function clientAgent(localAddress: string): http.Agent {
  let a = agents.get(localAddress);
  if (a === undefined) {
    a = new http.Agent({ keepAlive: true, localAddress, maxSockets: 64 });
    agents.set(localAddress, a);
  }
  return a;
}

export function closeClientAgents(): void {
  for (const a of agents.values()) a.destroy();
  agents.clear();
}

export interface RequestOptions {
  method?: string;
  path?: string;
  headers?: http.OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Source IP (127.0.0.x) to act as a pod of some namespace. */
  from?: string;
  timeoutMs?: number;
}

export function request(port: number, o: RequestOptions = {}): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: o.method ?? "GET",
        path: o.path ?? "/",
        headers: o.headers,
        agent: clientAgent(o.from ?? "127.0.0.1"),
        timeout: o.timeoutMs ?? 5_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.on("error", reject);
    req.end(o.body);
  });
}

/**
 * A random 100-port window below the ephemeral range: test files run in
 * parallel, and when windows overlap the agent's EADDRINUSE fallback moves on.
 */
export function portRange(): { listenerPortMin: number; listenerPortMax: number } {
  const base = 20_000 + Math.floor(Math.random() * 120) * 100;
  return { listenerPortMin: base, listenerPortMax: base + 99 };
}

/** A port that was free a moment ago (bound to 0 and released). */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function endpointOf(
  port: number,
  ready = true,
): { ip: string; port: number; ready: boolean; serving: boolean } {
  return { ip: "127.0.0.1", port, ready, serving: ready };
}

/** A backend entry over local ports. */
export function backend(
  id: string,
  ports: number[],
  protocol: Protocol = Protocol.PROTOCOL_SNIFF,
): NonNullable<DeepPartialTable["backends"]>[number] {
  const [ns, rest] = id.split("/") as [string, string];
  const [name, port] = rest.split(":") as [string, string];
  return {
    id,
    serviceNamespace: ns,
    serviceName: name,
    servicePort: Number(port),
    protocol,
    endpoints: ports.map((p) => endpointOf(p)),
  };
}

/**
 * HTTP/1.1 service ports with no routes, each sent to its own default backend on loopback:
 * `[id ("ns/name:port"), cluster IP, endpoint ports]` per entry, to spread into table().
 */
export function plainServices(
  ...entries: [id: string, clusterIp: string, endpointPorts: number[]][]
): Pick<DeepPartialTable, "services" | "backends"> {
  return {
    services: entries.map(([id, clusterIp]) => {
      const [namespace, rest] = id.split("/") as [string, string];
      const [name, port] = rest.split(":") as [string, string];
      return {
        namespace,
        name,
        clusterIps: [clusterIp],
        ports: [{ port: Number(port), protocol: Protocol.PROTOCOL_HTTP1, defaultBackendId: id }],
      };
    }),
    backends: entries.map(([id, , ports]) => backend(id, ports)),
  };
}

export function table(t: DeepPartialTable, version = 1): NodeTable {
  return NodeTable.fromPartial({
    version: { epoch: 1, number: version },
    node: "node-a",
    ...t,
    settings: { ...portRange(), ...t.settings },
  });
}

/** Deterministic PRNG (mulberry32), so statistical tests do not flake. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function testAgent(opts: AgentOptions = {}): Agent {
  return new Agent({
    listenAddress: "127.0.0.1",
    logger: pino({ level: process.env.TRELLIS_TEST_LOG ?? "silent" }),
    endpointGraceMs: 200,
    drainTimeoutMs: 1_000,
    ...opts,
  });
}

/** Flags that make a trellis-agent process serve `tableFile` on loopback, admin server on `adminPort`. */
export function loopbackAgentArgs(tableFile: string, adminPort: number): string[] {
  return [
    "--table-file",
    tableFile,
    "--listen-address",
    "127.0.0.1",
    "--admin-address",
    "127.0.0.1",
    "--admin-port",
    String(adminPort),
  ];
}

/** The listener port an agent process has for `service` ("ns/name:port"), read from its admin port. */
export async function listenerPortOf(adminPort: number, service: string): Promise<number | undefined> {
  const map = await request(adminPort, { path: "/debug/portmap" }).catch(() => null);
  if (map?.status !== 200) return undefined;
  const { portMap } = JSON.parse(map.body) as { portMap: { service: string; listenerPort: number }[] };
  return portMap.find((e) => e.service === service)?.listenerPort;
}

/** LISTEN sockets on 127.0.0.1:port, from /proc/net/tcp (one per thread that bound it). */
export function listenSockets(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .filter((l) => {
      const f = l.trim().split(/\s+/);
      return f[1] === `0100007F:${hexPort}` && f[3] === "0A";
    }).length;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- concise builders for route sets ----

type Partial1<T> = NonNullable<T>;
type ServiceP = Partial1<DeepPartialTable["services"]>[number];
type PortP = Partial1<ServiceP["ports"]>[number];
export type RouteSetP = Partial1<PortP["routeSets"]>[number];
export type RuleP = Partial1<RouteSetP["rules"]>[number];
export type MatchP = Partial1<RouteSetP["matches"]>[number];

export function forwardTo(
  ...entries: [
    target: string | { httpStatus: number; grpcStatus?: number; message?: string },
    weight: number,
  ][]
): RuleP["action"] {
  return {
    $case: "forward",
    forward: {
      backends: entries.map(([target, weight]) =>
        typeof target === "string"
          ? { weight, target: { $case: "backendId" as const, backendId: target } }
          : { weight, target: { $case: "direct" as const, direct: target } },
      ),
    },
  };
}

export function httpMatch(
  rule: number,
  m: Partial1<Extract<MatchP["match"], { $case: "http" }>>["http"] = {},
): MatchP {
  return { rule, match: { $case: "http", http: m } };
}

export function grpcMatch(
  rule: number,
  m: Partial1<Extract<MatchP["match"], { $case: "grpc" }>>["grpc"] = {},
): MatchP {
  return { rule, match: { $case: "grpc", grpc: m } };
}
