import { MatchType } from "@trellis/api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  compileGrpcMatch,
  compileHttpMatch,
  firstQueryValue,
  pathHasPrefix,
  type RequestView,
  splitGrpcPath,
} from "./match.ts";

function view(path: string, o: { method?: string; headers?: Record<string, string> } = {}): RequestView {
  const q = path.indexOf("?");
  const headers = o.headers ?? {};
  return {
    method: o.method ?? "GET",
    path: q === -1 ? path : path.slice(0, q),
    query: q === -1 ? "" : path.slice(q + 1),
    header: (n) => headers[n],
  };
}

const http = (m: Parameters<typeof compileHttpMatch>[0] extends infer T ? Partial<T> : never) =>
  compileHttpMatch({ path: undefined, method: "", headers: [], queryParams: [], ...m });

describe("path matching", () => {
  it("prefix is segment-aware", () => {
    expect(pathHasPrefix("/abc", "/abc")).toBe(true);
    expect(pathHasPrefix("/abc/", "/abc")).toBe(true);
    expect(pathHasPrefix("/abc/x", "/abc")).toBe(true);
    expect(pathHasPrefix("/abcd", "/abc")).toBe(false);
    expect(pathHasPrefix("/ab", "/abc")).toBe(false);
    expect(pathHasPrefix("/anything", "/")).toBe(true);
  });

  it("prefix matches exactly the paths equal to it or below it", () => {
    const seg = fc.stringMatching(/^[a-c]{1,3}$/);
    fc.assert(
      fc.property(fc.array(seg, { minLength: 1, maxLength: 3 }), fc.array(seg, { maxLength: 4 }), (p, q) => {
        const prefix = `/${p.join("/")}`;
        const path = `/${q.join("/")}`;
        const expected = q.length >= p.length && p.every((s, i) => q[i] === s);
        expect(pathHasPrefix(path, prefix)).toBe(expected);
      }),
    );
  });

  it("exact, prefix and regex paths ignore the query string; regex is anchored", () => {
    const exact = http({ path: { type: MatchType.MATCH_TYPE_EXACT, value: "/a" } });
    expect(exact.test(view("/a?x=1"))).toBe(true);
    expect(exact.test(view("/a/"))).toBe(false);
    const prefix = http({ path: { type: MatchType.MATCH_TYPE_PREFIX, value: "/api" } });
    expect(prefix.test(view("/api/v1?q"))).toBe(true);
    expect(prefix.prefix).toBe("/api");
    const re = http({ path: { type: MatchType.MATCH_TYPE_REGEX, value: "/v[0-9]+" } });
    expect(re.test(view("/v12"))).toBe(true);
    expect(re.test(view("/v12/x"))).toBe(false);
    expect(re.test(view("/x/v12"))).toBe(false);
  });

  it("regex alternations are anchored as a whole", () => {
    const re = http({ path: { type: MatchType.MATCH_TYPE_REGEX, value: "/a|/b" } });
    expect(re.test(view("/a"))).toBe(true);
    expect(re.test(view("/b"))).toBe(true);
    expect(re.test(view("/ab"))).toBe(false);
    expect(re.test(view("/xa"))).toBe(false);
  });
});

describe("method, header and query matching", () => {
  it("ANDs all conditions", () => {
    const m = http({
      method: "POST",
      headers: [{ name: "x-env", type: MatchType.MATCH_TYPE_EXACT, value: "Canary" }],
      queryParams: [{ name: "debug", type: MatchType.MATCH_TYPE_EXACT, value: "1" }],
    });
    expect(m.test(view("/?debug=1", { method: "POST", headers: { "x-env": "Canary" } }))).toBe(true);
    expect(m.test(view("/?debug=1", { method: "GET", headers: { "x-env": "Canary" } }))).toBe(false);
    expect(m.test(view("/?debug=1", { method: "POST", headers: { "x-env": "canary" } }))).toBe(false);
    expect(m.test(view("/?debug=2", { method: "POST", headers: { "x-env": "Canary" } }))).toBe(false);
    expect(m.test(view("/", { method: "POST", headers: { "x-env": "Canary" } }))).toBe(false);
  });

  it("header names are looked up lower-case; regex values are anchored", () => {
    const m = http({ headers: [{ name: "X-Version", type: MatchType.MATCH_TYPE_REGEX, value: "v[12]" }] });
    expect(m.test(view("/", { headers: { "x-version": "v1" } }))).toBe(true);
    expect(m.test(view("/", { headers: { "x-version": "v10" } }))).toBe(false);
    expect(m.test(view("/"))).toBe(false);
  });

  it("query uses the first occurrence and decodes values", () => {
    expect(firstQueryValue("a=1&a=2", "a")).toBe("1");
    expect(firstQueryValue("x=a%20b+c", "x")).toBe("a b c");
    expect(firstQueryValue("flag&x=1", "flag")).toBe("");
    expect(firstQueryValue("x=%zz", "x")).toBe("%zz");
    expect(firstQueryValue("A=1", "a")).toBeUndefined();
    expect(firstQueryValue("", "a")).toBeUndefined();
  });

  it("firstQueryValue agrees with URLSearchParams on well-formed queries", () => {
    const key = fc.constantFrom("a", "b", "c");
    const val = fc.stringMatching(/^[a-z0-9 ]{0,4}$/);
    fc.assert(
      fc.property(fc.array(fc.tuple(key, val), { maxLength: 6 }), key, (pairs, k) => {
        const qs = new URLSearchParams(pairs).toString();
        expect(firstQueryValue(qs, k) ?? null).toBe(new URLSearchParams(qs).get(k));
      }),
    );
  });
});

describe("gRPC matching", () => {
  it("splits /service/method", () => {
    expect(splitGrpcPath("/pkg.Svc/Do")).toEqual({ service: "pkg.Svc", method: "Do" });
    expect(splitGrpcPath("/pkg.Svc")).toEqual({ service: "", method: "" });
    expect(splitGrpcPath("/a/b/c")).toEqual({ service: "", method: "" });
  });

  const g = (m: Partial<Parameters<typeof compileGrpcMatch>[0]>) =>
    compileGrpcMatch({ type: MatchType.MATCH_TYPE_EXACT, service: "", method: "", headers: [], ...m });

  it("service only, method only, both, regex, headers", () => {
    expect(g({ service: "pkg.Svc" }).test(view("/pkg.Svc/Any"))).toBe(true);
    expect(g({ service: "pkg.Svc" }).test(view("/pkg.Other/Any"))).toBe(false);
    expect(g({ method: "Get" }).test(view("/any.Svc/Get"))).toBe(true);
    expect(g({ method: "Get" }).test(view("/any.Svc/Put"))).toBe(false);
    expect(g({ service: "a.S", method: "M" }).test(view("/a.S/M"))).toBe(true);
    expect(g({ service: "a.S", method: "M" }).test(view("/a.S/N"))).toBe(false);
    expect(g({ type: MatchType.MATCH_TYPE_REGEX, service: "a\\..*" }).test(view("/a.Foo/M"))).toBe(true);
    expect(g({}).test(view("/whatever/X"))).toBe(true);
    const h = g({ headers: [{ name: "x-user", type: MatchType.MATCH_TYPE_EXACT, value: "bob" }] });
    expect(h.test(view("/a/b", { headers: { "x-user": "bob" } }))).toBe(true);
    expect(h.test(view("/a/b"))).toBe(false);
  });
});
