// Weighted choice among a rule's backends: share = weight / sum(weights).

export interface Weighted<T> {
  readonly weight: number;
  readonly value: T;
}

export class WeightedPicker<T> {
  readonly #values: T[];
  readonly #cumulative: number[];
  readonly total: number;

  /** Entries with weight 0 are dropped; throws when nothing has weight. */
  constructor(entries: readonly Weighted<T>[]) {
    this.#values = [];
    this.#cumulative = [];
    let total = 0;
    for (const e of entries) {
      if (!(e.weight > 0)) continue;
      total += e.weight;
      this.#values.push(e.value);
      this.#cumulative.push(total);
    }
    if (total === 0) throw new Error("no entry with weight > 0");
    this.total = total;
  }

  get size(): number {
    return this.#values.length;
  }

  /** `r` uniform in [0, 1). */
  pick(r: number): T {
    const values = this.#values;
    if (values.length === 1) return values[0] as T;
    const target = r * this.total;
    const cum = this.#cumulative;
    // Rules rarely have more than a handful of backends: a linear scan beats a binary search.
    for (let i = 0; i < cum.length; i++) {
      if (target < (cum[i] as number)) return values[i] as T;
    }
    return values[values.length - 1] as T;
  }
}
