// The controller's admin port: health, readiness, Prometheus metrics, and the
// compiled node tables for `trellis tables` and debugging.
//   GET /healthz                       200 while the process serves
//   GET /readyz                        200 once every kind is listed and tables are computed, else 503
//   GET /metrics                       Prometheus text format
//   GET /debug/tables                  JSON: leader flag, every node with version and digest
//   GET /debug/tables/<node>           the node's table, readable YAML (as in the golden files)
//   GET /debug/tables/<node>?format=json   the NodeTable message as protobuf JSON
//   GET /debug/agents                  JSON: per node, desired and applied version, lag, last NACK (trellis status)
//   GET /debug/backends                JSON: per backend, requests, failures and latency over the agents'
//                                      recent reports (trellis backends)
//   GET /debug/explain?from=<ns>/<pod>&to=<svc>:<port>[&path=…][&method=…][&header=k:v…][&grpc=S/M][&format=json]
//                                      which route, rule and backends serve that request (trellis explain)
import http from "node:http";
import { NodeTable } from "@trellis/api";
import type { Logger } from "pino";
import { stringify } from "yaml";
import { describeNodeTable } from "./compile/describe-node-table.ts";
import type { RunningController } from "./controller.ts";
import type { AgentState } from "./distribute/agent-registry.ts";
import { agentStatusRows } from "./distribute/agent-status.ts";
import { type BackendStatsWindow, backendStatsReport } from "./distribute/backend-stats-window.ts";
import { explainRequest, parseExplainRequest } from "./explain/explain-request.ts";
import type { ControllerMetrics } from "./metrics.ts";

export function startAdminServer(
  controller: RunningController,
  metrics: ControllerMetrics,
  host: string,
  port: number,
  log: Logger,
  agents: () => readonly AgentState[] = () => [],
  stats: () => BackendStatsWindow | undefined = () => undefined,
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
    if (url.pathname === "/debug/agents") {
      const rows = agentStatusRows(controller, agents(), Date.now());
      return send(200, `${JSON.stringify(rows, null, 2)}\n`, "application/json");
    }
    if (url.pathname === "/debug/backends") {
      const report = backendStatsReport(stats(), Date.now());
      return send(200, `${JSON.stringify(report, null, 2)}\n`, "application/json");
    }
    if (url.pathname === "/debug/tables") {
      const list = controller.nodes().flatMap((node) => {
        const v = controller.table(node);
        return v ? [{ node, version: v.table.version, digest: v.digest }] : [];
      });
      return send(
        200,
        `${JSON.stringify({ leader: controller.isLeader(), tables: list }, null, 2)}\n`,
        "application/json",
      );
    }
    const m = /^\/debug\/tables\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const node = decodeURIComponent(m[1] ?? "");
      const format = url.searchParams.get("format") ?? "yaml";
      if (format !== "yaml" && format !== "json")
        return send(400, `format must be yaml or json, not ${format}\n`);
      const v = controller.table(node);
      if (!v) return send(404, `no table for node ${node}: is it a Node the controller has seen?\n`);
      if (format === "json") {
        return send(200, `${JSON.stringify(NodeTable.toJSON(v.table), null, 2)}\n`, "application/json");
      }
      return send(
        200,
        stringify(describeNodeTable(v.table), { lineWidth: 0, aliasDuplicateObjects: false }),
        "application/yaml",
      );
    }
    if (url.pathname === "/debug/explain") {
      const q = url.searchParams;
      const req = parseExplainRequest({
        from: q.get("from"),
        to: q.get("to"),
        path: q.get("path"),
        method: q.get("method"),
        headers: q.getAll("header"),
        grpc: q.get("grpc"),
      });
      if ("error" in req) return send(400, `${req.error}\n`);
      const explanation = explainRequest(controller.tables(), req);
      return q.get("format") === "json"
        ? send(200, `${JSON.stringify(explanation, null, 2)}\n`, "application/json")
        : send(
            200,
            stringify(explanation, { lineWidth: 0, aliasDuplicateObjects: false }),
            "application/yaml",
          );
    }
    return send(404, "not found\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      // After start, a failing connection must not take the controller down.
      server.on("error", (err) => log.error({ err: err.message }, "admin server error"));
      resolve(server);
    });
  });
}
