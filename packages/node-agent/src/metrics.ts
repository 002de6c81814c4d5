// Prometheus metrics on the agent's own Registry. Label sets are bounded by
// configuration (namespaces, services, routes, backends), never by pod IP or
// path. Per-request children are cached, because prom-client's label hashing
// would otherwise be a noticeable share of the forwarding cost.

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { BackendStatsRecorder } from "./backend-stats.ts";

export interface RequestLabels {
  sourceNamespace: string;
  destination: string;
  route: string;
  rule: string;
  backend: string;
  code: number;
  grpcStatus: string;
}

interface Children {
  count: Counter.Internal;
  duration: Histogram.Internal<string>;
}

export interface GaugeSources {
  upstreamConnections(): Record<string, number>;
  breakerStates(): { backend: string; state: string; count: number }[];
  listeners(): number;
}

export class AgentMetrics {
  readonly registry = new Registry();
  /** Per-backend deltas the agent reports to the controller (BackendStats), fed by request(). */
  readonly backendStats = new BackendStatsRecorder();
  readonly #requests: Counter<string>;
  readonly #duration: Histogram<string>;
  readonly #tableVersion: Gauge<string>;
  readonly #tableApplies: Counter<string>;
  readonly #tcpConnections: Counter<string>;
  readonly #clientErrors: Counter<string>;
  readonly #children = new Map<string, Children>();
  #sources: GaugeSources | null = null;

  constructor() {
    const registers = [this.registry];
    this.#requests = new Counter({
      name: "trellis_requests_total",
      help: "Requests handled by the agent, by client namespace, destination service port, route, rule, backend and outcome.",
      labelNames: [
        "source_namespace",
        "destination_service",
        "route",
        "rule",
        "backend",
        "code",
        "grpc_status",
      ],
      registers,
    });
    this.#duration = new Histogram({
      name: "trellis_request_duration_seconds",
      help: "Time from receiving a request to the end of its response, retries included.",
      labelNames: ["source_namespace", "destination_service", "route", "backend"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.#tableVersion = new Gauge({
      name: "trellis_table_version",
      help: "Number of the applied NodeTable version, labelled by its epoch.",
      labelNames: ["epoch"],
      registers,
    });
    this.#tableApplies = new Counter({
      name: "trellis_table_applies_total",
      help: "Attempts to apply a NodeTable, by result (ok, rejected).",
      labelNames: ["result"],
      registers,
    });
    this.#tcpConnections = new Counter({
      name: "trellis_tcp_connections_total",
      help: "TCP passthrough connections, by destination service port and result.",
      labelNames: ["destination_service", "result"],
      registers,
    });
    this.#clientErrors = new Counter({
      name: "trellis_client_errors_total",
      help: "Connections rejected for malformed input, by protocol and reason.",
      labelNames: ["protocol", "reason"],
      registers,
    });
    const self = this;
    new Gauge({
      name: "trellis_upstream_connections",
      help: "Open connections (HTTP/1.1) and sessions (HTTP/2) to endpoints.",
      labelNames: ["protocol"],
      registers,
      collect() {
        this.reset();
        const src = self.#sources;
        if (src === null) return;
        for (const [protocol, n] of Object.entries(src.upstreamConnections())) this.set({ protocol }, n);
      },
    });
    new Gauge({
      name: "trellis_breaker_endpoints",
      help: "Endpoints per backend by circuit breaker state (closed, open, half_open).",
      labelNames: ["backend", "state"],
      registers,
      collect() {
        this.reset();
        const src = self.#sources;
        if (src === null) return;
        for (const s of src.breakerStates()) this.set({ backend: s.backend, state: s.state }, s.count);
      },
    });
    new Gauge({
      name: "trellis_listeners",
      help: "Listeners open, one per meshed service port.",
      registers,
      collect() {
        this.set(self.#sources?.listeners() ?? 0);
      },
    });
  }

  setSources(sources: GaugeSources): void {
    this.#sources = sources;
  }

  request(l: RequestLabels, seconds: number): void {
    const key = `${l.sourceNamespace}\0${l.destination}\0${l.route}\0${l.rule}\0${l.backend}\0${l.code}\0${l.grpcStatus}`;
    let c = this.#children.get(key);
    if (c === undefined) {
      c = {
        count: this.#requests.labels(
          l.sourceNamespace,
          l.destination,
          l.route,
          l.rule,
          l.backend,
          String(l.code),
          l.grpcStatus,
        ),
        duration: this.#duration.labels(l.sourceNamespace, l.destination, l.route, l.backend),
      };
      // Bounded by configuration, but a long-lived agent sees many table versions: cap the cache.
      if (this.#children.size > 10_000) this.#children.clear();
      this.#children.set(key, c);
    }
    c.count.inc();
    c.duration.observe(seconds);
    if (l.backend !== "")
      this.backendStats.record(
        l.backend,
        l.code >= 500 || (l.grpcStatus !== "" && l.grpcStatus !== "0"),
        seconds * 1000,
      );
  }

  tableApplied(epoch: number, number: number): void {
    this.#tableVersion.reset();
    this.#tableVersion.set({ epoch: String(epoch) }, number);
    this.#tableApplies.inc({ result: "ok" });
  }

  tableRejected(): void {
    this.#tableApplies.inc({ result: "rejected" });
  }

  tcpConnection(destination: string, result: "ok" | "no_endpoint" | "connect_failed"): void {
    this.#tcpConnections.inc({ destination_service: destination, result });
  }

  clientError(protocol: string, reason: string): void {
    this.#clientErrors.inc({ protocol, reason });
  }
}
