// color: the gRPC ColorService over h2c. Center and Edge both answer the
// configured colour after a delay from DELAY_BUCKETS, failing ERROR_FRACTION %
// of calls with INTERNAL. Every answer carries x-faces-pod metadata.
import * as grpc from "@grpc/grpc-js";
import type { ColorName } from "../lib/catalog.ts";
import { COLORS } from "../lib/catalog.ts";
import type { ColorRequest, ColorResponse } from "../lib/color-messages.ts";
import { type ColorMethod, colorServiceDefinition } from "../lib/color-service.ts";
import { delayRequest } from "../lib/delay.ts";
import { shouldFail } from "../lib/error-fraction.ts";
import type { Logger } from "../lib/logger.ts";
import { createMetrics } from "../lib/metrics.ts";
import { startMetricsServer } from "../lib/metrics-server.ts";
import { RequestRate } from "../lib/request-rate.ts";
import type { RunningWorkload } from "../lib/running-workload.ts";
import type { WorkloadConfig } from "../lib/workload-config.ts";

export type ColorOptions = WorkloadConfig & { color: ColorName; logger: Logger };

export async function startColor(o: ColorOptions): Promise<RunningWorkload> {
  const metrics = createMetrics();
  const rate = new RequestRate();
  const hex = COLORS[o.color];

  const handler =
    (method: ColorMethod): grpc.handleUnaryCall<ColorRequest, ColorResponse> =>
    async (call, callback) => {
      const kind = method === "Center" ? "center" : "edge";
      const timer = metrics.duration.startTimer({ workload: "color", kind });
      rate.hit();
      const delayMs = await delayRequest(o.delayBuckets);
      const md = new grpc.Metadata();
      md.set("x-faces-pod", o.pod);
      const fail = shouldFail(o.errorFraction);
      if (fail) {
        callback({
          code: grpc.status.INTERNAL,
          details: `color failed on purpose (ERROR_FRACTION=${o.errorFraction})`,
          metadata: md,
        });
      } else {
        call.sendMetadata(md);
        callback(null, { color: hex, rate: rate.perSecond().toFixed(1), errors: [] });
      }
      timer();
      metrics.requests.inc({ workload: "color", kind, code: fail ? "INTERNAL" : "OK" });
      o.logger.debug(
        {
          method,
          row: call.request.row,
          column: call.request.column,
          fail,
          delayMs,
          user: call.metadata.get("x-faces-user")[0],
        },
        "call",
      );
    };

  const server = new grpc.Server();
  server.addService(colorServiceDefinition, { Center: handler("Center"), Edge: handler("Edge") });
  const port = await new Promise<number>((done, fail) =>
    server.bindAsync(`${o.host}:${o.port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? fail(err) : done(bound),
    ),
  );
  const metricsServer = await startMetricsServer(metrics.registry, o.metricsPort, o.host);
  o.logger.info(
    {
      port,
      metricsPort: metricsServer.port,
      color: o.color,
      hex,
      errorFraction: o.errorFraction,
      delayBuckets: o.delayBuckets,
    },
    "color listening",
  );
  return {
    port,
    metricsPort: metricsServer.port,
    close: async () => {
      await Promise.all([
        new Promise<void>((done) => {
          const force = setTimeout(() => server.forceShutdown(), 2_000);
          server.tryShutdown(() => {
            clearTimeout(force);
            done();
          });
        }),
        metricsServer.close(),
      ]);
    },
  };
}
