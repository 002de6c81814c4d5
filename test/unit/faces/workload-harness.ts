// Shared bits of the faces unit tests: a config for in-process workloads on
// loopback, and small HTTP/gRPC helpers over real sockets.
import { createLogger, type Logger } from "../../faces/lib/logger.ts";
import type { WorkloadConfig } from "../../faces/lib/workload-config.ts";
import { freePort } from "../../support/free-port.ts";

export const quiet: Logger = createLogger("test", "test-pod", "silent");

export async function loopbackConfig(overrides: Partial<WorkloadConfig> = {}): Promise<WorkloadConfig> {
  return {
    host: "127.0.0.1",
    port: await freePort(),
    metricsPort: 0,
    pod: "test-pod",
    delayBuckets: [0],
    errorFraction: 0,
    ...overrides,
  };
}

export type HttpAnswer = { status: number; headers: Headers; body: string; ms: number };

export async function get(url: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  const started = performance.now();
  const res = await fetch(url, { headers });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, ms: performance.now() - started };
}
