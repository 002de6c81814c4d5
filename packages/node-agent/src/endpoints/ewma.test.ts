import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PeakEwma, pickP2C } from "./ewma.ts";

describe("peak EWMA", () => {
  it("jumps to a slower observation at once and decays towards faster ones", () => {
    const e = new PeakEwma(1_000, 1, 0);
    e.observe(100, 0);
    expect(e.estimate(0)).toBe(100);
    e.observe(10, 1);
    expect(e.estimate(1)).toBeGreaterThan(90);
    for (let t = 2; t < 10_000; t += 10) e.observe(10, t);
    expect(e.estimate(10_000)).toBeLessThan(11);
  });

  it("cost grows with outstanding requests; idle estimates decay", () => {
    const e = new PeakEwma(1_000, 1, 0);
    e.observe(10, 0);
    const idle = e.cost(0);
    e.pending = 3;
    expect(e.cost(0)).toBe(idle * 4);
    expect(e.estimate(5_000)).toBeLessThan(e.estimate(0) / 100);
  });

  it("an endpoint without an estimate is free when idle and expensive while its first requests run", () => {
    const e = new PeakEwma(1_000, 0, 0);
    expect(e.cost(0)).toBe(0);
    e.pending = 1;
    expect(e.cost(0)).toBeGreaterThan(1e5);
    e.observe(2, 1);
    expect(e.cost(1)).toBe(4);
  });

  it("the estimate stays within the range of observations and the initial value", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({ min: 0, max: 1000, noNaN: true }), fc.integer({ min: 0, max: 500 })), {
          minLength: 1,
        }),
        (obs) => {
          const e = new PeakEwma(1_000, 1, 0);
          let t = 0;
          let max = 1;
          for (const [rtt, dt] of obs) {
            t += dt;
            e.observe(rtt, t);
            max = Math.max(max, rtt);
          }
          const est = e.estimate(t);
          expect(est).toBeGreaterThanOrEqual(0);
          expect(est).toBeLessThanOrEqual(max + 1e-9);
        },
      ),
    );
  });
});

describe("power of two choices", () => {
  it("returns the cheaper of two distinct candidates", () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 100, noNaN: true }), { minLength: 2, maxLength: 10 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (costs, r1, r2) => {
          const idx = costs.map((_, i) => i);
          const picked = pickP2C(idx, (i) => costs[i] as number, r1, r2);
          const i = Math.floor(r1 * costs.length);
          let j = Math.floor(r2 * (costs.length - 1));
          if (j >= i) j++;
          expect(i).not.toBe(j);
          expect(picked === i || picked === j).toBe(true);
          expect(costs[picked]).toBe(Math.min(costs[i] as number, costs[j] as number));
        },
      ),
    );
  });

  it("never picks the most expensive of several candidates when costs differ", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, r1, r2) => {
          const idx = Array.from({ length: n }, (_, i) => i);
          expect(pickP2C(idx, (i) => i, r1, r2)).not.toBe(n - 1);
        },
      ),
    );
  });

  it("with one candidate returns it", () => {
    expect(pickP2C(["only"], () => 1, 0.3, 0.9)).toBe("only");
  });
});
