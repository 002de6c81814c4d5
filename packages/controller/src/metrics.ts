// The controller's Prometheus metrics, on its own Registry.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export function makeControllerMetrics() {
  const registry = new Registry();
  const metrics = {
    registry,
    recomputeSeconds: new Histogram({
      name: "trellis_controller_recompute_duration_seconds",
      help: "Time to apply a batch of watched-object changes: resolve what they affect, rebuild the affected node tables and version them.",
      // Incremental recomputes take milliseconds; a cold start up to a second.
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    watchedObjects: new Gauge({
      name: "trellis_controller_watched_objects",
      help: "Objects currently held from the Kubernetes API, by kind.",
      labelNames: ["kind"] as const,
      registers: [registry],
    }),
    tables: new Gauge({
      name: "trellis_controller_node_tables",
      help: "Node tables currently compiled.",
      registers: [registry],
    }),
    tableVersions: new Counter({
      name: "trellis_controller_table_versions_total",
      help: "New node table versions produced (one per node whose table changed).",
      registers: [registry],
    }),
    statusPatches: new Counter({
      name: "trellis_controller_status_patches_total",
      help: "Route status PATCH requests, by result (ok, conflict, error).",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: "trellis_controller_errors_total",
      help: "Errors by stage (watch, recompute, status).",
      labelNames: ["stage"] as const,
      registers: [registry],
    }),
    agentNacks: new Counter({
      name: "trellis_controller_agent_nacks_total",
      help: "Tables an agent refused to apply, by node.",
      labelNames: ["node"] as const,
      registers: [registry],
    }),
    leader: new Gauge({
      name: "trellis_controller_leader",
      help: "1 when this replica holds the status-writer lease.",
      registers: [registry],
    }),
  };
  // Export every series from the start, so rates and absence alerts work
  // before the first event.
  for (const result of ["ok", "conflict", "error"]) metrics.statusPatches.inc({ result }, 0);
  for (const stage of ["watch", "recompute", "status"]) metrics.errors.inc({ stage }, 0);
  return metrics;
}

export type ControllerMetrics = ReturnType<typeof makeControllerMetrics>;
