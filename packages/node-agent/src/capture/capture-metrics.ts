// Capture and CNI metrics, on the agent's Registry.
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { CaptureState } from "./nft-script.ts";

export class CaptureMetrics {
  readonly #programs: Counter<string>;
  readonly #capturedPods: Gauge<string>;
  readonly #servicePorts: Gauge<string>;
  readonly #cniRequests: Counter<string>;
  readonly #cniDuration: Histogram<string>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#programs = new Counter({
      name: "trellis_capture_programs_total",
      help: "nftables transactions the agent ran to program capture, by result.",
      labelNames: ["result"],
      registers,
    });
    this.#capturedPods = new Gauge({
      name: "trellis_capture_pod_addresses",
      help: "Pod addresses whose traffic to meshed service ports is captured on this node.",
      registers,
    });
    this.#servicePorts = new Gauge({
      name: "trellis_capture_service_ports",
      help: "Service address and port pairs redirected to agent listeners.",
      registers,
    });
    this.#cniRequests = new Counter({
      name: "trellis_cni_requests_total",
      help: "Requests from the CNI shim, by command and result (captured, uncaptured, refused).",
      labelNames: ["command", "result"],
      registers,
    });
    this.#cniDuration = new Histogram({
      name: "trellis_cni_request_duration_seconds",
      help: "Time the agent took to answer the CNI shim (for ADD: until capture was programmed).",
      labelNames: ["command"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  programmed(state: CaptureState, changed: boolean): void {
    if (changed) this.#programs.inc({ result: "ok" });
    this.#capturedPods.set(state.capturedIps.length);
    this.#servicePorts.set(state.servicePorts.length);
  }

  programFailed(): void {
    this.#programs.inc({ result: "error" });
  }

  cniRequest(command: string, result: "captured" | "uncaptured" | "refused", seconds: number): void {
    this.#cniRequests.inc({ command, result });
    this.#cniDuration.observe({ command }, seconds);
  }
}
