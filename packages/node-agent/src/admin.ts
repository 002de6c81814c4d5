// The agent's admin port: Prometheus metrics, health, and the port map for debugging.

import type http from "node:http";
import type { Agent } from "./agent.ts";
import type { AgentMetrics } from "./metrics.ts";
import { http as nodeHttp } from "./node-http.ts";

export function startAdminServer(
  agent: Agent,
  metrics: AgentMetrics,
  address: string,
  port: number,
  /** More JSON debug pages, by path (e.g. /debug/capture). */
  debugPages: Readonly<Record<string, () => object>> = {},
  /** /readyz; default: a table is applied. */
  ready: () => boolean = () => agent.version !== null,
  /** /metrics text; default: `metrics`' registry (with --workers: every thread's, added up). */
  metricsText: () => Promise<string> = () => metrics.registry.metrics(),
): Promise<http.Server> {
  const server = nodeHttp.createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === "/metrics") {
      metricsText().then(
        (text) => {
          res.writeHead(200, { "content-type": metrics.registry.contentType });
          res.end(text);
        },
        (err: Error) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(`${err.message}\n`);
        },
      );
      return;
    }
    if (url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
      return;
    }
    if (url === "/readyz") {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
      res.end(ok ? "ok\n" : "no table applied yet\n");
      return;
    }
    if (url === "/debug/portmap") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`${JSON.stringify({ version: agent.version, portMap: agent.portMap() }, null, 2)}\n`);
      return;
    }
    const page = debugPages[url];
    if (page !== undefined) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`${JSON.stringify(page(), null, 2)}\n`);
      return;
    }
    if (url === "/debug/endpoints") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`${JSON.stringify(agent.endpointStates(), null, 2)}\n`);
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    // Shared with the next agent on the node during a rolling update (host network, one port).
    server.listen({ port, host: address, reusePort: true }, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
