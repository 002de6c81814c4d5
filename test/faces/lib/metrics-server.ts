// Serves a Registry at GET /metrics on its own port (METRICS_PORT, default 9090).
import http from "node:http";
import type { Registry } from "prom-client";
import { closeServer, listen } from "./listen.ts";

export type MetricsServer = { port: number; close(): Promise<void> };

export async function startMetricsServer(
  registry: Registry,
  port: number,
  host: string,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${String(err)}\n`),
    );
  });
  const bound = await listen(server, port, host);
  return { port: bound, close: () => closeServer(server) };
}
