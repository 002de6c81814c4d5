// face: GET /center/?row=R&col=C or /edge/?… calls smiley and color in
// parallel and answers one cell as JSON (lib/face-cell.ts). No timeouts or
// retries of its own. GET /healthz is for readiness probes.
import http from "node:http";
import { ColorClient } from "../lib/color-service.ts";
import { delayRequest } from "../lib/delay.ts";
import { shouldFail } from "../lib/error-fraction.ts";
import type { FaceCell } from "../lib/face-cell.ts";
import { parseHostPort } from "../lib/host-port.ts";
import { closeServer, listen } from "../lib/listen.ts";
import type { Logger } from "../lib/logger.ts";
import { createMetrics } from "../lib/metrics.ts";
import { startMetricsServer } from "../lib/metrics-server.ts";
import type { RunningWorkload } from "../lib/running-workload.ts";
import type { WorkloadConfig } from "../lib/workload-config.ts";
import { callColor } from "./color-call.ts";
import { callSmiley } from "./smiley-call.ts";

export type FaceOptions = WorkloadConfig & {
  /** host[:port] of the smiley Service (SMILEY_SERVICE, default "smiley", port 80). */
  smileyService: string;
  /** gRPC target of the color Service (COLOR_SERVICE, default "color:80"). */
  colorService: string;
  logger: Logger;
};

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function outcome(status: string, failed: boolean): "ok" | "timeout" | "error" {
  if (status === "504" || status === "DEADLINE_EXCEEDED") return "timeout";
  return failed ? "error" : "ok";
}

export async function startFace(o: FaceOptions): Promise<RunningWorkload> {
  const metrics = createMetrics();
  const agent = new http.Agent({ keepAlive: true });
  const smiley = { ...parseHostPort(o.smileyService, 80), agent };
  const color = new ColorClient(o.colorService);

  const server = http.createServer(async (req, res) => {
    const send = (status: number, body: string, type = "application/json") => {
      res.writeHead(status, {
        "content-type": type,
        "content-length": Buffer.byteLength(body),
        "cache-control": "no-store",
        "x-faces-pod": o.pod,
      });
      res.end(body);
    };
    const url = new URL(req.url ?? "/", "http://face");
    if (url.pathname === "/healthz") return send(200, "ok\n", "text/plain");
    const kind = url.pathname.split("/")[1];
    if (kind !== "center" && kind !== "edge")
      return send(404, JSON.stringify({ error: "use /center/ or /edge/" }));
    if (req.method !== "GET" && req.method !== "HEAD")
      return send(405, JSON.stringify({ error: "GET only" }));

    const timer = metrics.duration.startTimer({ workload: "face", kind });
    const row = url.searchParams.get("row") ?? "0";
    const col = url.searchParams.get("col") ?? "0";
    const user = firstHeader(req.headers["x-faces-user"]);
    await delayRequest(o.delayBuckets);
    if (shouldFail(o.errorFraction)) {
      send(500, JSON.stringify({ error: `face failed on purpose (ERROR_FRACTION=${o.errorFraction})` }));
      metrics.requests.inc({ workload: "face", kind, code: "500" });
      timer();
      return;
    }

    const [s, c] = await Promise.all([
      callSmiley(smiley, kind, { row, col }, user),
      callColor(
        color,
        kind,
        { row: Number.parseInt(row, 10) || 0, column: Number.parseInt(col, 10) || 0 },
        user,
      ),
    ]);
    metrics.upstream.inc({ upstream: "smiley", outcome: outcome(s.served.status, s.error !== undefined) });
    metrics.upstream.inc({ upstream: "color", outcome: outcome(c.served.status, c.errors.length > 0) });
    const errors = [...(s.error ? [s.error] : []), ...c.errors];
    const cell: FaceCell = {
      smiley: s.entity,
      smileyName: s.name,
      color: c.hex,
      colorName: c.name,
      ...(errors.length ? { errors } : {}),
      pod: o.pod,
      served: { smiley: s.served, color: c.served },
    };
    send(200, JSON.stringify(cell));
    metrics.requests.inc({ workload: "face", kind, code: "200" });
    timer();
    if (errors.length) o.logger.debug({ kind, row, col, user, errors }, "degraded cell");
  });
  server.keepAliveTimeout = 65_000;

  const port = await listen(server, o.port, o.host);
  const metricsServer = await startMetricsServer(metrics.registry, o.metricsPort, o.host);
  o.logger.info(
    { port, metricsPort: metricsServer.port, smileyService: o.smileyService, colorService: o.colorService },
    "face listening",
  );
  return {
    port,
    metricsPort: metricsServer.port,
    close: async () => {
      await Promise.all([closeServer(server), metricsServer.close()]);
      color.close();
      agent.destroy();
    },
  };
}
