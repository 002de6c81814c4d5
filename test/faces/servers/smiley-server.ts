// smiley: answers any GET with the configured smiley as JSON, after a delay
// from DELAY_BUCKETS, failing ERROR_FRACTION % of requests with 500.
// GET /healthz is for readiness probes: no delay, never fails.
import http from "node:http";
import { SMILEYS, type SmileyName } from "../lib/catalog.ts";
import { delayRequest } from "../lib/delay.ts";
import { shouldFail } from "../lib/error-fraction.ts";
import { closeServer, listen } from "../lib/listen.ts";
import type { Logger } from "../lib/logger.ts";
import { cellKind, createMetrics } from "../lib/metrics.ts";
import { startMetricsServer } from "../lib/metrics-server.ts";
import type { RunningWorkload } from "../lib/running-workload.ts";
import type { WorkloadConfig } from "../lib/workload-config.ts";

export type SmileyOptions = WorkloadConfig & { smiley: SmileyName; logger: Logger };

/** The body smiley answers with. */
export type SmileyBody = { smiley: string; name: SmileyName; pod: string };

export async function startSmiley(o: SmileyOptions): Promise<RunningWorkload> {
  const metrics = createMetrics();
  const body: SmileyBody = { smiley: SMILEYS[o.smiley], name: o.smiley, pod: o.pod };
  const okBody = JSON.stringify(body);

  const server = http.createServer(async (req, res) => {
    const path = req.url ?? "/";
    const send = (status: number, text: string, type = "application/json") => {
      res.writeHead(status, {
        "content-type": type,
        "content-length": Buffer.byteLength(text),
        "x-faces-pod": o.pod,
      });
      res.end(text);
    };
    if (path === "/healthz" || path.startsWith("/healthz?")) return send(200, "ok\n", "text/plain");
    if (req.method !== "GET" && req.method !== "HEAD")
      return send(405, JSON.stringify({ error: "GET only" }));

    const kind = cellKind(path);
    const timer = metrics.duration.startTimer({ workload: "smiley", kind });
    const delayMs = await delayRequest(o.delayBuckets);
    const fail = shouldFail(o.errorFraction);
    const status = fail ? 500 : 200;
    if (fail)
      send(500, JSON.stringify({ error: `smiley failed on purpose (ERROR_FRACTION=${o.errorFraction})` }));
    else send(200, okBody);
    timer();
    metrics.requests.inc({ workload: "smiley", kind, code: String(status) });
    o.logger.debug({ path, status, delayMs, user: req.headers["x-faces-user"] }, "request");
  });
  server.keepAliveTimeout = 65_000;

  const port = await listen(server, o.port, o.host);
  const metricsServer = await startMetricsServer(metrics.registry, o.metricsPort, o.host);
  o.logger.info(
    {
      port,
      metricsPort: metricsServer.port,
      smiley: o.smiley,
      errorFraction: o.errorFraction,
      delayBuckets: o.delayBuckets,
    },
    "smiley listening",
  );
  return {
    port,
    metricsPort: metricsServer.port,
    close: async () => {
      await Promise.all([closeServer(server), metricsServer.close()]);
    },
  };
}
