// Stops a workload on SIGTERM/SIGINT: closes its listeners, then exits 0
// (or after a grace period, whichever comes first).
import type { Logger } from "./logger.ts";
import type { RunningWorkload } from "./running-workload.ts";

export function exitOnSignals(workload: RunningWorkload, logger: Logger, graceMs = 5_000): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    setTimeout(() => process.exit(0), graceMs).unref();
    workload.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "close failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
