import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { WeightedPicker } from "./weighted.ts";

describe("WeightedPicker", () => {
  it("never picks a weight-0 entry and throws when nothing has weight", () => {
    const p = new WeightedPicker([
      { weight: 0, value: "zero" },
      { weight: 3, value: "a" },
    ]);
    for (let i = 0; i < 100; i++) expect(p.pick(i / 100)).toBe("a");
    expect(() => new WeightedPicker([{ weight: 0, value: "x" }])).toThrow();
  });

  it("splits the unit interval exactly by weight", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 6 }), (weights) => {
        fc.pre(weights.some((w) => w > 0));
        const p = new WeightedPicker(weights.map((weight, i) => ({ weight, value: i })));
        const total = weights.reduce((a, b) => a + b, 0);
        // One probe at the middle of each unit of weight lands exactly weight times on each entry.
        const counts = new Array<number>(weights.length).fill(0);
        for (let k = 0; k < total; k++) counts[p.pick((k + 0.5) / total)]! += 1;
        expect(counts).toEqual(weights);
      }),
    );
  });

  it("always returns an entry for r in [0, 1)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 6 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (weights, r) => {
          const p = new WeightedPicker(weights.map((weight, i) => ({ weight, value: i })));
          const v = p.pick(r);
          expect(v).toBeGreaterThanOrEqual(0);
          expect(v).toBeLessThan(weights.length);
        },
      ),
    );
  });
});
