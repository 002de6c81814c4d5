import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { HTTPMatchSpec } from "../snapshot/snapshot.ts";
import { translateHttpMatch } from "./matches.ts";
import { compareRankedMatches, type MatchRank, type RankedMatch } from "./precedence.ts";

const httpRank = fc.record({
  kind: fc.constant("http" as const),
  pathType: fc.constantFrom("exact" as const, "prefix" as const, "regex" as const),
  pathLength: fc.integer({ min: 1, max: 6 }),
  hasMethod: fc.boolean(),
  headers: fc.nat(2),
  queryParams: fc.nat(2),
});
const grpcRank = fc.record({
  kind: fc.constant("grpc" as const),
  serviceLength: fc.nat(4),
  serviceRegex: fc.boolean(),
  methodLength: fc.nat(4),
  methodRegex: fc.boolean(),
  headers: fc.nat(2),
});
const ranked: fc.Arbitrary<RankedMatch> = fc.record({
  rank: fc.oneof(httpRank, grpcRank) as fc.Arbitrary<MatchRank>,
  origin: fc.record({
    createdAtMs: fc.constantFrom(0, 1000, Number.POSITIVE_INFINITY),
    namespace: fc.constantFrom("a", "a-b", "b"),
    name: fc.constantFrom("x", "y"),
    ruleIndex: fc.nat(2),
    matchIndex: fc.nat(1),
  }),
  text: fc.constantFrom("p", "q"),
});

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

describe("precedence is a total order", () => {
  it("is reflexive and antisymmetric, and equal only for identical entries", () => {
    fc.assert(
      fc.property(ranked, ranked, (a, b) => {
        expect(compareRankedMatches(a, a)).toBe(0);
        expect(sign(compareRankedMatches(a, b))).toBe(-sign(compareRankedMatches(b, a)));
        if (compareRankedMatches(a, b) === 0) expect(a).toEqual(b);
      }),
      { numRuns: 2000 },
    );
  });

  it("is transitive", () => {
    fc.assert(
      fc.property(ranked, ranked, ranked, (a, b, c) => {
        if (compareRankedMatches(a, b) <= 0 && compareRankedMatches(b, c) <= 0) {
          expect(compareRankedMatches(a, c)).toBeLessThanOrEqual(0);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("sorts the same whatever the input order", () => {
    fc.assert(
      fc.property(fc.array(ranked, { maxLength: 12 }), fc.func(fc.integer()), (list, key) => {
        const shuffled = [...list].sort((a, b) => key(a) - key(b));
        expect([...shuffled].sort(compareRankedMatches)).toEqual([...list].sort(compareRankedMatches));
      }),
    );
  });
});

function entry(spec: Partial<HTTPMatchSpec>, origin: Partial<RankedMatch["origin"]> = {}): RankedMatch {
  const result = translateHttpMatch({
    field: "m",
    path: { type: "PathPrefix", value: "/" },
    method: undefined,
    headers: [],
    queryParams: [],
    ...spec,
  });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return {
    rank: result.rank,
    text: result.text,
    origin: { createdAtMs: 0, namespace: "ns", name: "r", ruleIndex: 0, matchIndex: 0, ...origin },
  };
}

describe("precedence follows GAMMA.md", () => {
  const wins = (a: RankedMatch, b: RankedMatch) => expect(compareRankedMatches(a, b)).toBeLessThan(0);
  const header = (name: string) => ({ field: "h", type: "Exact", name, value: "v" });

  it("ranks Exact over any prefix, longer prefixes first, trailing slash ignored", () => {
    wins(
      entry({ path: { type: "Exact", value: "/a" } }),
      entry({ path: { type: "PathPrefix", value: "/a/b/c" } }),
    );
    wins(
      entry({ path: { type: "PathPrefix", value: "/abc" } }),
      entry({ path: { type: "PathPrefix", value: "/ab" } }),
    );
    expect(entry({ path: { type: "PathPrefix", value: "/abc/" } }).rank).toEqual(
      entry({ path: { type: "PathPrefix", value: "/abc" } }).rank,
    );
  });

  it("ranks a regex after a prefix of the same length", () => {
    wins(
      entry({ path: { type: "PathPrefix", value: "/abcd" } }),
      entry({ path: { type: "RegularExpression", value: "/a.*" } }),
    );
    wins(
      entry({ path: { type: "RegularExpression", value: "/a.*" } }),
      entry({ path: { type: "PathPrefix", value: "/ab" } }),
    );
  });

  it("then method, then more headers, then more query params", () => {
    const q = { field: "q", type: "Exact", name: "q", value: "1" };
    wins(entry({ method: "GET" }), entry({ headers: [header("a"), header("b")] }));
    wins(
      entry({ headers: [header("a"), header("b")] }),
      entry({ headers: [header("a")], queryParams: [q, q] }),
    );
    wins(entry({ queryParams: [q] }), entry({}));
  });

  it("then the oldest route, then namespace/name, then rule order", () => {
    wins(entry({}, { createdAtMs: 1, name: "z" }), entry({}, { createdAtMs: 2, name: "a" }));
    wins(
      entry({}, { createdAtMs: 5, namespace: "a", name: "z" }),
      entry({}, { createdAtMs: 5, namespace: "b", name: "a" }),
    );
    wins(entry({}, { ruleIndex: 0, matchIndex: 3 }), entry({}, { ruleIndex: 1, matchIndex: 0 }));
    wins(entry({}, { createdAtMs: 0 }), entry({}, { createdAtMs: Number.POSITIVE_INFINITY }));
  });

  // The request sees the first entry that matches: an Exact match for its
  // path if there is one, else the longest segment-aware prefix.
  it("makes the first matching path the most specific one", () => {
    const segment = fc.constantFrom("a", "ab", "b", "");
    const pathValue = fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => `/${s.join("/")}`);
    const candidate = fc.record({ type: fc.constantFrom("Exact", "PathPrefix"), value: pathValue });
    fc.assert(
      fc.property(fc.array(candidate, { minLength: 1, maxLength: 6 }), pathValue, (candidates, path) => {
        const entries = candidates.map((c, i) => ({ c, e: entry({ path: c }, { ruleIndex: i }) }));
        entries.sort((x, y) => compareRankedMatches(x.e, y.e));
        const norm = (v: string) => v.replace(/\/+$/, "") || "/";
        const matches = (c: { type: string; value: string }) =>
          c.type === "Exact"
            ? c.value === path
            : norm(c.value) === "/" || path === norm(c.value) || path.startsWith(`${norm(c.value)}/`);
        const first = entries.find((x) => matches(x.c));
        const matching = candidates.filter(matches);
        if (!first) {
          expect(matching).toEqual([]);
          return;
        }
        if (matching.some((c) => c.type === "Exact")) expect(first.c.type).toBe("Exact");
        else expect(norm(first.c.value).length).toBe(Math.max(...matching.map((c) => norm(c.value).length)));
      }),
      { numRuns: 1000 },
    );
  });
});
