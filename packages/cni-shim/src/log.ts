// pino JSON lines on stderr (stdout belongs to the CNI result) and, when the
// config names one, appended to a log file: runtimes often drop a plugin's
// stderr, so the file is what an operator can read after a failed sandbox.

import pino, { type Logger } from "pino";
import type { LogLevel } from "./net-conf.ts";

export type Log = Pick<Logger, "debug" | "info" | "warn" | "error" | "child">;

export function createLog(level: LogLevel, logFile: string | undefined): Log {
  const opts = { level, base: { plugin: "trellis-cni" }, timestamp: pino.stdTimeFunctions.isoTime };
  if (level === "silent") return pino(opts);
  // Synchronous writes: the process exits right after printing its result and must not lose the last lines.
  const streams: pino.StreamEntry[] = [{ level, stream: pino.destination({ dest: 2, sync: true }) }];
  let fileProblem: string | undefined;
  if (logFile !== undefined) {
    try {
      streams.push({
        level,
        stream: pino.destination({ dest: logFile, sync: true, append: true, mkdir: true }),
      });
    } catch (e) {
      // A log file we cannot open must not fail the pod.
      fileProblem = (e as Error).message;
    }
  }
  const log = pino(opts, pino.multistream(streams));
  if (fileProblem !== undefined)
    log.warn({ logFile, err: fileProblem }, "cannot open log file; logging to stderr only");
  return log;
}
