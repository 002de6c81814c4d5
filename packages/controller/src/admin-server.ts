// The controller's admin port: health, readiness, Prometheus metrics, and the
// compiled node tables for `trellis tables` and debugging.
import http from "node:http";
import { NodeTable } from "@trellis/api";
import { stringify } from "yaml";
import { describeNodeTable } from "./compile/describe-node-table.ts";
import type { RunningController } from "./controller.ts";
import type { ControllerMetrics } from "./metrics.ts";

export function startAdminServer(
  controller: RunningController,
  metrics: ControllerMetrics,
  host: string,
  port: number,
): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    const send = (code: number, body: string, type = "text/plain; charset=utf-8") =>
      res.writeHead(code, { "content-type": type }).end(body);
    if (req.method !== "GET") return send(405, "only GET\n");
    if (url.pathname === "/healthz") return send(200, "ok\n");
    if (url.pathname === "/readyz")
      return controller.ready() ? send(200, "ok\n") : send(503, "not synced yet\n");
    if (url.pathname === "/metrics") {
      metrics.registry.metrics().then(
        (text) => send(200, text, metrics.registry.contentType),
        (err: unknown) => send(500, `${String(err)}\n`),
      );
      return;
    }
    if (url.pathname === "/debug/tables") {
      const list = controller.tables.nodes().map((node) => {
        const v = controller.tables.get(node)!;
        return { node, version: v.table.version, digest: v.digest };
      });
      return send(
        200,
        `${JSON.stringify({ leader: controller.isLeader(), tables: list }, null, 2)}\n`,
        "application/json",
      );
    }
    const m = /^\/debug\/tables\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const node = decodeURIComponent(m[1]!);
      const v = controller.tables.get(node);
      if (!v) return send(404, `no table for node ${node}: is it a Node the controller has seen?\n`);
      if (url.searchParams.get("format") === "json") {
        return send(200, `${JSON.stringify(NodeTable.toJSON(v.table), null, 2)}\n`, "application/json");
      }
      return send(200, stringify(describeNodeTable(v.table)), "application/yaml");
    }
    return send(404, "not found\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve(server));
  });
}
