// Settings every faces workload reads from its environment (see test/faces/README.md).
import { type DelayBuckets, parseDelayBuckets } from "./delay.ts";
import { parseErrorFraction } from "./error-fraction.ts";
import { podName } from "./pod-name.ts";

export type WorkloadConfig = {
  /** Address to listen on (HOST, default all IPv4 addresses). */
  host: string;
  /** PORT, default 8000. */
  port: number;
  /** METRICS_PORT, default 9090; 0 picks a free port. */
  metricsPort: number;
  /** X-Faces-Pod: POD_NAME or the hostname. */
  pod: string;
  delayBuckets: DelayBuckets;
  /** Percent of requests that fail on purpose. */
  errorFraction: number;
};

export function parsePort(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`${name}: "${raw}" is not a port`);
  return port;
}

export function readWorkloadConfig(env: NodeJS.ProcessEnv = process.env): WorkloadConfig {
  return {
    host: env.HOST || "0.0.0.0",
    port: parsePort("PORT", env.PORT, 8000),
    metricsPort: parsePort("METRICS_PORT", env.METRICS_PORT, 9090),
    pod: podName(env),
    delayBuckets: parseDelayBuckets(env.DELAY_BUCKETS),
    errorFraction: parseErrorFraction(env.ERROR_FRACTION),
  };
}
