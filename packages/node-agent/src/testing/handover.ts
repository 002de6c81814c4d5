// A rolling update of the agent on one node, in miniature: an old and a new
// agent on the same listener port (SO_REUSEPORT, ports adopted from the old
// one's map), a steady stream of requests, and the old agent's SIGTERM drain.
// Used by agent.handover.test.ts in-process, and run as a script inside a
// network namespace where net.ipv4.tcp_migrate_req can be set without
// touching the machine's own.
import http from "node:http";
import { Protocol } from "@trellis/api";
import {
  backend,
  type HttpBackend,
  portRange,
  sleep,
  startHttpBackend,
  table,
  testAgent,
} from "./loopback.ts";

export interface HandoverOptions {
  /** Workers sending on one shared keep-alive pool. */
  pooled: number;
  /** Workers opening a new connection per request (these can land in a closing listener's accept queue). */
  fresh: number;
  /** Load before and after the drain. */
  steadyMs?: number;
  drainMs?: number;
}

export interface HandoverResult {
  requests: number;
  /** Error or unexpected status of each failed request, prefixed with its worker kind. */
  failures: string[];
  drainedMs: number;
  /** Responses before SIGTERM, by agent. */
  before: { old: number; new: number };
  /** Every response after the drain came from the new agent. */
  afterOnlyNew: boolean;
  afterCount: number;
}

/** The same service port for both agents; each sends to its own backend, so a response names its agent. */
export function webTable(
  range: { listenerPortMin: number; listenerPortMax: number },
  to: HttpBackend,
  extraFirst: boolean,
) {
  const port = (name: string, backendId: string) => ({
    namespace: "s",
    name,
    clusterIps: [name === "web" ? "10.96.9.1" : "10.96.9.2"],
    ports: [{ port: 80, protocol: Protocol.PROTOCOL_HTTP1, defaultBackendId: backendId, routeSets: [] }],
  });
  return table({
    settings: range,
    // With extraFirst another service port comes first: without adoption it would take web's port.
    services: [...(extraFirst ? [port("api", `s/${to.name}:80`)] : []), port("web", `s/${to.name}:80`)],
    backends: [backend(`s/${to.name}:80`, [to.port])],
  });
}

export interface Outcome {
  at: number;
  backend: string;
  error?: string;
}

export function get(port: number, agent: http.Agent | false): Promise<Outcome> {
  const kind = agent === false ? "new connection" : "keep-alive";
  const failed = (err: Error): Outcome => ({
    at: performance.now(),
    backend: "",
    error: `${kind}: ${err.message}`,
  });
  return new Promise((resolve) => {
    const req = http.get({ host: "127.0.0.1", port, path: "/", agent, timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({
          at: performance.now(),
          backend: res.statusCode === 200 ? String(res.headers["x-backend"]) : `HTTP ${res.statusCode}`,
        }),
      );
      res.on("error", (err) => resolve(failed(err)));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve(failed(err)));
  });
}

/** Backends that answer after 0–20 ms, so the drain finds requests in flight. */
export async function slowBackends(): Promise<[HttpBackend, HttpBackend]> {
  const [a, b] = await Promise.all([startHttpBackend("old"), startHttpBackend("new")]);
  for (const x of [a, b]) {
    x.handler = (_req, res) => {
      setTimeout(
        () => {
          res.setHeader("x-backend", x.name);
          res.end(x.name);
        },
        Math.floor(Math.random() * 20),
      );
    };
  }
  return [a, b];
}

export async function runHandover(o: HandoverOptions): Promise<HandoverResult> {
  const [a, b] = await slowBackends();
  const range = portRange();
  const oldAgent = testAgent({ reusePort: true });
  const newAgent = testAgent({ reusePort: true });
  const pool = new http.Agent({ keepAlive: true, maxSockets: Math.max(1, o.pooled) });
  try {
    await oldAgent.apply(webTable(range, a, false));
    const port = oldAgent.listenerPorts().get("s/web:80") as number;
    newAgent.adoptPorts(oldAgent.portMap());
    await newAgent.apply(webTable(range, b, true));
    if (newAgent.listenerPorts().get("s/web:80") !== port)
      throw new Error("the new agent did not adopt the port");

    const outcomes: Outcome[] = [];
    let running = true;
    const worker = async (agent: http.Agent | false): Promise<void> => {
      while (running) outcomes.push(await get(port, agent));
    };
    const workers = [
      ...Array.from({ length: o.pooled }, () => worker(pool)),
      ...Array.from({ length: o.fresh }, () => worker(false)),
    ];
    await sleep(o.steadyMs ?? 500);
    const sigterm = performance.now();
    await oldAgent.shutdown(o.drainMs ?? 3_000);
    const drained = performance.now();
    await sleep(o.steadyMs ?? 500);
    running = false;
    await Promise.all(workers);

    const after = outcomes.filter((x) => x.at > drained);
    return {
      requests: outcomes.length,
      failures: outcomes
        .filter((x) => x.error !== undefined || (x.backend !== "old" && x.backend !== "new"))
        .map((x) => x.error ?? x.backend),
      drainedMs: Math.round(drained - sigterm),
      before: {
        old: outcomes.filter((x) => x.at < sigterm && x.backend === "old").length,
        new: outcomes.filter((x) => x.at < sigterm && x.backend === "new").length,
      },
      afterOnlyNew: after.every((x) => x.backend === "new"),
      afterCount: after.length,
    };
  } finally {
    pool.destroy();
    await Promise.all([oldAgent.close(), newAgent.close()]);
    await Promise.all([a.close(), b.close()]);
  }
}

if (import.meta.main) {
  // node handover.ts <pooled> <fresh> <rounds>: one JSON result per round on stdout.
  const [pooled = 8, fresh = 4, rounds = 1] = process.argv.slice(2).map(Number);
  for (let i = 0; i < rounds; i++)
    process.stdout.write(`${JSON.stringify(await runHandover({ pooled, fresh }))}\n`);
}
