import { PathRewriteType, type RequestRedirect } from "@trellis/api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hostWithoutPort, redirectLocation, redirectStatus, replacePrefix } from "./rewrite.ts";

describe("ReplacePrefixMatch", () => {
  // The table from the Gateway API HTTPPathModifier documentation.
  const cases: [string, string, string, string][] = [
    ["/foo", "/foo/bar", "/xyz", "/xyz/bar"],
    ["/foo", "/foo/bar", "/xyz/", "/xyz/bar"],
    ["/foo", "/foo", "/xyz", "/xyz"],
    ["/foo", "/foo/", "/xyz", "/xyz/"],
    ["/foo", "/foo/", "/xyz/", "/xyz/"],
    ["/foo", "/foo", "", "/"],
    ["/foo", "/foo/", "", "/"],
    ["/foo", "/foo", "/", "/"],
    ["/foo", "/foo/", "/", "/"],
    ["/foo", "/foo/bar", "/", "/bar"],
    ["/foo", "/foo/bar", "", "/bar"],
    ["/", "/x/y", "/v2", "/v2/x/y"],
    ["/", "/x", "/", "/x"],
  ];
  it.each(cases)("prefix %s path %s → %s gives %s", (prefix, path, repl, want) => {
    expect(replacePrefix(path, prefix, repl)).toBe(want);
  });

  it("keeps everything after the prefix and always yields an absolute path", () => {
    const seg = fc.stringMatching(/^[a-z]{1,3}$/);
    fc.assert(
      fc.property(
        fc.array(seg, { minLength: 1, maxLength: 2 }),
        fc.array(seg, { maxLength: 3 }),
        fc.array(seg, { maxLength: 2 }),
        (p, rest, r) => {
          const prefix = `/${p.join("/")}`;
          const suffix = rest.length === 0 ? "" : `/${rest.join("/")}`;
          const replacement = r.length === 0 ? "/" : `/${r.join("/")}`;
          const out = replacePrefix(prefix + suffix, prefix, replacement);
          expect(out.startsWith("/")).toBe(true);
          expect(out.includes("//")).toBe(false);
          expect(out.endsWith(suffix)).toBe(true);
        },
      ),
    );
  });
});

describe("redirects", () => {
  const redirect = (r: Partial<RequestRedirect>): RequestRedirect => ({
    scheme: "",
    hostname: "",
    port: 0,
    path: undefined,
    statusCode: 0,
    ...r,
  });
  const req = {
    scheme: "http",
    authority: "svc.ns:8080",
    path: "/a/b",
    query: "x=1",
    servicePort: 8080,
    matchedPrefix: "/a",
  };

  it("keeps the request's host, the service port and the query by default; 302", () => {
    expect(redirectLocation(redirect({}), req)).toBe("http://svc.ns:8080/a/b?x=1");
    expect(redirectStatus(redirect({}))).toBe(302);
    expect(redirectStatus(redirect({ statusCode: 301 }))).toBe(301);
  });

  it("a scheme change implies the scheme's well-known port, left out of Location", () => {
    expect(redirectLocation(redirect({ scheme: "https" }), req)).toBe("https://svc.ns/a/b?x=1");
    expect(redirectLocation(redirect({ scheme: "https", port: 8443 }), req)).toBe(
      "https://svc.ns:8443/a/b?x=1",
    );
  });

  it("port 80 on http is left out; hostname and paths are replaced", () => {
    expect(redirectLocation(redirect({ hostname: "other", port: 80 }), req)).toBe("http://other/a/b?x=1");
    const full = redirect({ path: { type: PathRewriteType.PATH_REWRITE_TYPE_FULL_PATH, value: "/new" } });
    expect(redirectLocation(full, { ...req, query: "" })).toBe("http://svc.ns:8080/new");
    const pre = redirect({ path: { type: PathRewriteType.PATH_REWRITE_TYPE_PREFIX_MATCH, value: "/z" } });
    expect(redirectLocation(pre, req)).toBe("http://svc.ns:8080/z/b?x=1");
  });

  it("hostWithoutPort handles IPv6 literals", () => {
    expect(hostWithoutPort("[::1]:80")).toBe("[::1]");
    expect(hostWithoutPort("a.b")).toBe("a.b");
    expect(hostWithoutPort("a.b:1")).toBe("a.b");
  });
});
