// Capped exponential backoff, as kubelet uses for crash loops, sandbox
// creation and API retries. Pure: the caller owns timers and clocks.

export type BackoffOptions = {
  initialMs: number;
  maxMs: number;
  /** Fraction of the delay added as random jitter (0 = none). */
  jitter?: number;
  /** A success that lasted this long forgets earlier failures. */
  resetAfterMs?: number;
};

export class Backoff {
  readonly #opts: BackoffOptions;
  #failures = 0;
  readonly #random: () => number;

  constructor(opts: BackoffOptions, random: () => number = Math.random) {
    this.#opts = opts;
    this.#random = random;
  }

  get failures(): number {
    return this.#failures;
  }

  /** Delay before the next attempt after one more failure. */
  next(): number {
    const base = Math.min(this.#opts.maxMs, this.#opts.initialMs * 2 ** this.#failures);
    this.#failures++;
    const jitter = this.#opts.jitter ?? 0;
    return Math.round(base + base * jitter * this.#random());
  }

  /** Delay the next attempt would get, without counting a failure. */
  peek(): number {
    return Math.min(this.#opts.maxMs, this.#opts.initialMs * 2 ** this.#failures);
  }

  reset(): void {
    this.#failures = 0;
  }

  /** Call when a run ended: forgets failures if the run lasted long enough. */
  ranFor(ms: number): void {
    if (this.#opts.resetAfterMs !== undefined && ms >= this.#opts.resetAfterMs) this.reset();
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
