// HTTP/1.1 on the wire through the agent's own HTTP/1.1 engine: framing,
// connection management and streaming cases that a high-level client hides.

import http from "node:http";
import net from "node:net";
import { Protocol } from "@trellis/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "./agent.ts";
import {
  backend,
  closeClientAgents,
  type HttpBackend,
  request,
  startHttpBackend,
  table,
  testAgent,
} from "./testing/loopback.ts";

let h: HttpBackend;
let agent: Agent;
let port: number;

beforeAll(async () => {
  h = await startHttpBackend("h");
  h.handler = (req, res, body) => {
    const url = new URL(req.url ?? "/", "http://x");
    switch (url.pathname) {
      case "/chunked": {
        // No content-length: Node sends it chunked, in several pieces.
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("one,");
        setTimeout(() => {
          res.write("two,");
          res.end("three");
        }, 5);
        return;
      }
      case "/big": {
        const n = Number(url.searchParams.get("n"));
        res.writeHead(200, { "content-length": String(n) });
        const chunk = Buffer.alloc(64 * 1024, 97);
        let sent = 0;
        const pump = (): void => {
          while (sent < n) {
            const len = Math.min(chunk.length, n - sent);
            sent += len;
            if (!res.write(chunk.subarray(0, len))) {
              res.once("drain", pump);
              return;
            }
          }
          res.end();
        };
        pump();
        return;
      }
      case "/status": {
        const code = Number(url.searchParams.get("code"));
        res.writeHead(code, code === 304 ? {} : { "x-status": String(code) });
        res.end();
        return;
      }
      case "/close": {
        res.writeHead(200, { connection: "close", "content-length": "5" });
        res.end("bye!\n");
        return;
      }
      default: {
        const out = JSON.stringify({
          method: req.method,
          url: req.url,
          body: body.length > 100 ? `${body.length} bytes` : body,
          te: req.headers["transfer-encoding"] ?? null,
          cl: req.headers["content-length"] ?? null,
          upgrade: req.headers.upgrade ?? null,
          expect: req.headers.expect ?? null,
        });
        res.writeHead(200, {
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength(out)),
        });
        res.end(out);
      }
    }
  };
  agent = testAgent();
  await agent.apply(
    table({
      services: [
        {
          namespace: "w",
          name: "web",
          clusterIps: ["10.96.7.1"],
          ports: [{ port: 80, protocol: Protocol.PROTOCOL_HTTP1, defaultBackendId: "w/web:80" }],
        },
      ],
      backends: [backend("w/web:80", [h.port], Protocol.PROTOCOL_HTTP1)],
    }),
  );
  port = agent.listenerPorts().get("w/web:80") as number;
});

afterAll(async () => {
  closeClientAgents();
  await agent.close();
  await h.close();
});

/** Sends raw bytes and collects the reply until the server closes or `until` matches. */
function exchange(
  data: string | Buffer,
  until?: (s: string) => boolean,
  timeoutMs = 3_000,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let text = "";
    const finish = (closed: boolean): void => {
      clearTimeout(t);
      s.destroy();
      resolve({ text, closed });
    };
    const t = setTimeout(() => finish(false), timeoutMs);
    s.on("data", (d: Buffer) => {
      text += d.toString("latin1");
      if (until?.(text)) finish(false);
    });
    s.on("close", () => finish(true));
    s.on("error", () => {});
    s.write(data);
  });
}

const count = (s: string, sub: string): number => s.split(sub).length - 1;

describe("HTTP/1.1 framing through the agent", () => {
  it("answers pipelined requests in order on one connection", async () => {
    const reqs = ["/p1", "/p2", "/p3"].map((p) => `GET ${p} HTTP/1.1\r\nHost: w\r\n\r\n`).join("");
    const { text } = await exchange(reqs, (s) => count(s, "HTTP/1.1 200") === 3 && s.includes('"/p3"'));
    expect(count(text, "HTTP/1.1 200")).toBe(3);
    expect(text.indexOf('"/p1"')).toBeLessThan(text.indexOf('"/p2"'));
    expect(text.indexOf('"/p2"')).toBeLessThan(text.indexOf('"/p3"'));
  });

  it("HTTP/1.0 without keep-alive gets its answer and a closed connection", async () => {
    const { text, closed } = await exchange("GET /old HTTP/1.0\r\nHost: w\r\n\r\n");
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text.toLowerCase()).toContain("connection: close");
    expect(closed).toBe(true);
  });

  it("HTTP/1.0 gets an unchunked, close-delimited body when the length is unknown", async () => {
    const { text, closed } = await exchange("GET /chunked HTTP/1.0\r\nHost: w\r\n\r\n");
    expect(text.toLowerCase()).not.toContain("transfer-encoding");
    expect(text.endsWith("one,two,three")).toBe(true);
    expect(closed).toBe(true);
  });

  it("re-chunks a response of unknown length for HTTP/1.1 clients", async () => {
    const r = await request(port, { path: "/chunked" });
    expect(r.headers["transfer-encoding"]).toBe("chunked");
    expect(r.body).toBe("one,two,three");
  });

  it("forwards a chunked request body re-framed, and a Content-Length body as is", async () => {
    const chunked = await exchange(
      "POST /up HTTP/1.1\r\nHost: w\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      (s) => s.includes("}"),
    );
    const echo = JSON.parse(chunked.text.slice(chunked.text.indexOf("{"))) as Record<string, string | null>;
    expect(echo).toMatchObject({ method: "POST", body: "hello world", te: "chunked", cl: null });
    const r = await request(port, { method: "PUT", path: "/up", body: "abc" });
    expect(JSON.parse(r.body)).toMatchObject({ method: "PUT", body: "abc", cl: "3", te: null });
  });

  it("HEAD keeps Content-Length and sends no body; 204 and 304 have no body", async () => {
    const head = await exchange(
      "HEAD /big?n=1000 HTTP/1.1\r\nHost: w\r\n\r\nGET /status?code=204 HTTP/1.1\r\nHost: w\r\n\r\nGET /status?code=304 HTTP/1.1\r\nHost: w\r\n\r\n",
      (s) => count(s, "HTTP/1.1 ") === 3 && s.endsWith("\r\n\r\n"),
    );
    const parts = head.text.split("HTTP/1.1 ").filter((p) => p !== "");
    expect(parts[0]).toMatch(/^200/);
    expect(parts[0]?.toLowerCase()).toContain("content-length: 1000");
    expect(parts[0]?.endsWith("\r\n\r\n")).toBe(true);
    expect(parts[1]).toMatch(/^204/);
    expect(parts[2]).toMatch(/^304/);
  });

  it("answers Expect: 100-continue itself and then forwards the body", async () => {
    const s = net.connect(port, "127.0.0.1");
    let text = "";
    await new Promise<void>((resolve) => {
      s.on("data", (d: Buffer) => {
        text += d.toString("latin1");
        if (text.startsWith("HTTP/1.1 100 Continue\r\n\r\n") && !text.includes("200")) s.write("12345");
        if (text.includes("}")) resolve();
      });
      s.write("POST /c HTTP/1.1\r\nHost: w\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    });
    s.destroy();
    expect(text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/);
    expect(JSON.parse(text.slice(text.indexOf("{")))).toMatchObject({ body: "12345", expect: null });
  });

  it("an Upgrade request is forwarded as a plain request and the connection closed after it", async () => {
    const { text, closed } = await exchange(
      "GET /ws HTTP/1.1\r\nHost: w\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(JSON.parse(text.slice(text.indexOf("{")))).toMatchObject({ upgrade: null });
    expect(closed).toBe(true);
  });

  it("streams large bodies both ways intact", async () => {
    const r = await request(port, { path: "/big?n=5000000", timeoutMs: 20_000 });
    expect(r.body.length).toBe(5_000_000);
    const big = "z".repeat(3_000_000);
    const up = await request(port, { method: "POST", path: "/up", body: big, timeoutMs: 20_000 });
    expect(JSON.parse(up.body)).toMatchObject({ body: "3000000 bytes" });
  });

  it("a slow reader applies backpressure instead of buffering the whole response", async () => {
    const got = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: "/big?n=20000000", agent: false }, (res) => {
        let n = 0;
        res.pause();
        // Read slowly at first, then drain the rest.
        setTimeout(() => {
          res.on("data", (d: Buffer) => {
            n += d.length;
          });
          res.on("end", () => resolve(n));
          res.resume();
        }, 300);
      });
      req.on("error", reject);
    });
    expect(got).toBe(20_000_000);
  });

  it("does not reuse an upstream connection the backend closed", async () => {
    for (let i = 0; i < 5; i++) {
      const r = await request(port, { path: "/close" });
      expect(r.body).toBe("bye!\n");
      const r2 = await request(port, { path: `/after-${i}` });
      expect(r2.status).toBe(200);
    }
  });
});
