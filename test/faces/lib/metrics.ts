// Prometheus metrics of one workload: an own Registry with the process
// defaults, requests by outcome and their durations, and the requests a
// workload makes to its upstreams (face only).
import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

export type FacesMetrics = {
  registry: Registry;
  /** Requests served; `code` is the HTTP status or gRPC status name. */
  requests: Counter<"workload" | "kind" | "code">;
  duration: Histogram<"workload" | "kind">;
  /** Calls to upstreams (smiley, color) and how they ended. */
  upstream: Counter<"upstream" | "outcome">;
};

const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5];

export function createMetrics(): FacesMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new Counter({
      name: "faces_requests_total",
      help: "Requests served, by workload, kind (center, edge, other; page, proxy for faces-gui) and status code.",
      labelNames: ["workload", "kind", "code"],
      registers: [registry],
    }),
    duration: new Histogram({
      name: "faces_request_duration_seconds",
      help: "Time to answer a request, including the configured delay.",
      labelNames: ["workload", "kind"],
      buckets: SECONDS_BUCKETS,
      registers: [registry],
    }),
    upstream: new Counter({
      name: "faces_upstream_requests_total",
      help: "Calls to upstream workloads, by upstream and outcome (ok, timeout, error).",
      labelNames: ["upstream", "outcome"],
      registers: [registry],
    }),
  };
}

/** "center" and "edge" are the only kinds; anything else is "other" (keeps label cardinality fixed). */
export function cellKind(path: string): "center" | "edge" | "other" {
  if (path === "/center" || path.startsWith("/center/") || path.startsWith("/center?")) return "center";
  if (path === "/edge" || path.startsWith("/edge/") || path.startsWith("/edge?")) return "edge";
  return "other";
}
