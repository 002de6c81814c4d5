// JSON logs on stdout (pino); LOG_LEVEL picks the level (default info).
import { type Logger, pino } from "pino";

export type { Logger } from "pino";

export function createLogger(workload: string, pod: string, level = process.env.LOG_LEVEL || "info"): Logger {
  return pino({ level, base: { workload, pod } });
}
