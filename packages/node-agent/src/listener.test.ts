import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { classifyFirstBytes, normaliseIp } from "./listener.ts";
import { parseTarget } from "./proxy/client-h1.ts";

const PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

describe("protocol sniffing", () => {
  it("recognises the HTTP/2 preface, HTTP/1 request lines and anything else", () => {
    expect(classifyFirstBytes(Buffer.from(`${PREFACE}\x00\x00`, "latin1"))).toBe("h2");
    expect(classifyFirstBytes(Buffer.from("GET / HTTP/1.1\r\n"))).toBe("h1");
    expect(classifyFirstBytes(Buffer.from("M-SEARCH * HTTP/1.1"))).toBe("h1");
    expect(classifyFirstBytes(Buffer.from([0x16, 0x03, 0x01]))).toBe("tcp");
    expect(classifyFirstBytes(Buffer.from(" GET"))).toBe("tcp");
    expect(classifyFirstBytes(Buffer.from("GE"))).toBe("more");
  });

  it("waits for more bytes on every proper prefix of the preface, then decides h2", () => {
    for (let n = 1; n < PREFACE.length; n++) {
      expect(classifyFirstBytes(Buffer.from(PREFACE.slice(0, n), "latin1"))).toBe("more");
    }
  });

  it("always decides within 33 bytes of a non-preface start", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 33, maxLength: 64 }), (bytes) => {
        const buf = Buffer.from(bytes);
        fc.pre(!buf.subarray(0, 24).equals(Buffer.from(PREFACE, "latin1")));
        expect(classifyFirstBytes(buf)).not.toBe("more");
      }),
    );
  });

  it("normalises IPv4-mapped IPv6 source addresses", () => {
    expect(normaliseIp("::ffff:127.0.0.2")).toBe("127.0.0.2");
    expect(normaliseIp("10.0.0.1")).toBe("10.0.0.1");
    expect(normaliseIp(undefined)).toBe("");
  });
});

describe("HTTP/1.1 request targets", () => {
  it("splits origin-form, accepts absolute-form and asterisk-form, rejects the rest", () => {
    expect(parseTarget("/a/b?x=1&y")).toEqual({ path: "/a/b", query: "x=1&y", authority: null });
    expect(parseTarget("/")).toEqual({ path: "/", query: "", authority: null });
    expect(parseTarget("http://svc.ns:8080/p?q")).toEqual({
      path: "/p",
      query: "q",
      authority: "svc.ns:8080",
    });
    expect(parseTarget("http://svc.ns")).toEqual({ path: "/", query: "", authority: "svc.ns" });
    expect(parseTarget("*")).toEqual({ path: "*", query: "", authority: null });
    expect(parseTarget("nopath")).toBeNull();
  });

  it("path + query always reassemble to the origin-form target", () => {
    fc.assert(
      fc.property(fc.webPath(), fc.option(fc.webQueryParameters(), { nil: undefined }), (p, q) => {
        const path = p === "" ? "/" : p;
        const target = q === undefined ? path : `${path}?${q}`;
        const t = parseTarget(target);
        expect(t).not.toBeNull();
        expect(t?.query === "" && q === undefined ? t.path : `${t?.path}?${t?.query}`).toBe(target);
      }),
    );
  });
});
