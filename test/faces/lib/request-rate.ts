// Requests per second over the last `windowSeconds` seconds (color reports it as `rate`).
export class RequestRate {
  readonly #counts: number[];
  readonly #seconds: number[];

  constructor(windowSeconds = 10) {
    this.#counts = new Array<number>(windowSeconds).fill(0);
    this.#seconds = new Array<number>(windowSeconds).fill(-1);
  }

  hit(nowMs = Date.now()): void {
    const second = Math.floor(nowMs / 1000);
    const slot = second % this.#counts.length;
    if (this.#seconds[slot] !== second) {
      this.#seconds[slot] = second;
      this.#counts[slot] = 0;
    }
    this.#counts[slot] = (this.#counts[slot] ?? 0) + 1;
  }

  perSecond(nowMs = Date.now()): number {
    const now = Math.floor(nowMs / 1000);
    let total = 0;
    this.#seconds.forEach((second, slot) => {
      if (second > now - this.#counts.length && second <= now) total += this.#counts[slot] ?? 0;
    });
    return total / this.#counts.length;
  }
}
