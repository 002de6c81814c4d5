// Per-endpoint circuit breaker on opossum. The proxy owns deadlines and the
// request flow, so opossum is used for what it is good at: the rolling error
// window, the open → half-open → closed state machine and its timers. Outcomes
// are recorded after each try ends (fire() with an action that settles at
// once), which keeps promises out of the forwarding path itself. Consecutive
// failures, which opossum does not count, open the breaker too.

import { EventEmitter } from "node:events";
import CircuitBreaker from "opossum";

export interface BreakerSettings {
  /** Open after this many failures in a row (0 disables). */
  consecutiveFailures: number;
  /** Open when the error rate in the window exceeds this percentage... */
  errorThresholdPercentage: number;
  /** ...once the window holds at least this many requests. */
  volumeThreshold: number;
  /** Open → half-open after this long; one probe request then decides. */
  resetTimeoutMs: number;
  rollingWindowMs: number;
  rollingBuckets: number;
}

export const DEFAULT_BREAKER_SETTINGS: BreakerSettings = {
  consecutiveFailures: 5,
  errorThresholdPercentage: 50,
  volumeThreshold: 20,
  resetTimeoutMs: 5_000,
  rollingWindowMs: 10_000,
  rollingBuckets: 10,
};

export type BreakerState = "closed" | "open" | "half_open";

const FAILED = new Error("endpoint failure");
const succeed = (ok: boolean): Promise<void> => (ok ? Promise.resolve() : Promise.reject(FAILED));
const ignore = (): void => {};
const NO_ARGS: unknown[] = [];

/** Shares one bucket-rotation timer between all breakers, as opossum recommends when there are many. */
export class BreakerGroup {
  readonly settings: BreakerSettings;
  readonly #rotate = new EventEmitter();
  readonly #timer: NodeJS.Timeout;

  constructor(settings: Partial<BreakerSettings> = {}) {
    this.settings = { ...DEFAULT_BREAKER_SETTINGS, ...settings };
    this.#rotate.setMaxListeners(0);
    const interval = Math.max(10, Math.floor(this.settings.rollingWindowMs / this.settings.rollingBuckets));
    this.#timer = setInterval(() => this.#rotate.emit("rotate"), interval);
    this.#timer.unref();
  }

  create(name: string): EndpointBreaker {
    const s = this.settings;
    const breaker = new CircuitBreaker(succeed, {
      name,
      timeout: false,
      resetTimeout: s.resetTimeoutMs,
      errorThresholdPercentage: s.errorThresholdPercentage,
      volumeThreshold: s.volumeThreshold,
      rollingCountTimeout: s.rollingWindowMs,
      rollingCountBuckets: s.rollingBuckets,
      rotateBucketController: this.#rotate,
      enableSnapshots: false,
      rollingPercentilesEnabled: false,
    });
    return new EndpointBreaker(breaker, s.consecutiveFailures);
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

export class EndpointBreaker {
  readonly #breaker: CircuitBreaker<[boolean], void>;
  readonly #consecutiveLimit: number;
  #consecutive = 0;
  #probing = false;

  constructor(breaker: CircuitBreaker<[boolean], void>, consecutiveLimit: number) {
    this.#breaker = breaker;
    this.#consecutiveLimit = consecutiveLimit;
    // A half-open breaker admits exactly one probe; a new half-open period starts a new probe.
    const release = (): void => {
      this.#probing = false;
    };
    breaker.on("halfOpen", release);
    breaker.on("close", release);
  }

  get state(): BreakerState {
    const b = this.#breaker;
    if (b.closed) return "closed";
    return b.halfOpen ? "half_open" : "open";
  }

  /** Whether the picker may send a request to this endpoint now. */
  allows(): boolean {
    const b = this.#breaker;
    if (b.closed) return true;
    return b.halfOpen && !this.#probing;
  }

  /** Called when a request is actually sent; claims the half-open probe slot. */
  onSend(): void {
    if (this.#breaker.halfOpen) this.#probing = true;
  }

  record(ok: boolean): void {
    const b = this.#breaker;
    if (b.isShutdown) return;
    if (ok) this.#consecutive = 0;
    else this.#consecutive++;
    if (b.opened && !b.halfOpen) return;
    if (ok && b.closed) {
      // A success on a closed breaker only adds to the window's counts. fire() would get there
      // through a new Promise, the action's promise, then/catch and our own then (≈ 5 µs and
      // four promises per request, measured): emit the two events it ends with instead, which
      // is what opossum's Status counts ("fires", and "successes" with the action's latency,
      // 0 ms for an action that settles at once).
      b.emit("fire", NO_ARGS);
      b.emit("success", undefined, 0);
      return;
    }
    b.fire(ok).then(ignore, ignore);
    if (!ok && this.#consecutiveLimit > 0 && this.#consecutive >= this.#consecutiveLimit && b.closed) {
      b.open();
    }
  }

  /** A request ended without an outcome (the client went away): free the probe slot. */
  abandon(): void {
    if (this.#breaker.halfOpen) this.#probing = false;
  }

  shutdown(): void {
    this.#breaker.shutdown();
  }
}
