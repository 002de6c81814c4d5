// Malformed and hostile input: each case gets a proper error or a closed
// connection, and the agent keeps serving everyone else.

import http2 from "node:http2";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { Protocol } from "@trellis/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "./agent.ts";
import {
  type EchoClientT,
  echoClient,
  type GrpcBackend,
  type Msg,
  startGrpcBackend,
} from "./testing/grpc.ts";
import {
  backend,
  closeClientAgents,
  type HttpBackend,
  request,
  sleep,
  startHttpBackend,
  table,
  testAgent,
} from "./testing/loopback.ts";

let h: HttpBackend;
let g: GrpcBackend;
let agent: Agent;
let web: number;
let rpc: number;
let client: EchoClientT;
let upstreamClosed = 0;

beforeAll(async () => {
  [h, g] = await Promise.all([startHttpBackend("h"), startGrpcBackend("g")]);
  h.handler = (req, res) => {
    if (req.url?.startsWith("/stream")) {
      // Streams forever until the client goes away.
      res.writeHead(200, { "content-type": "text/plain" });
      const t = setInterval(() => res.write("x".repeat(1024)), 5);
      res.on("close", () => {
        clearInterval(t);
        upstreamClosed++;
      });
      return;
    }
    res.end("ok");
  };
  agent = testAgent({ headersTimeoutMs: 300 });
  await agent.apply(
    table({
      services: [
        {
          namespace: "m",
          name: "web",
          clusterIps: ["10.96.5.1"],
          ports: [{ port: 80, protocol: Protocol.PROTOCOL_HTTP1, defaultBackendId: "m/web:80" }],
        },
        {
          namespace: "m",
          name: "rpc",
          clusterIps: ["10.96.5.2"],
          ports: [{ port: 9000, protocol: Protocol.PROTOCOL_GRPC, defaultBackendId: "m/rpc:9000" }],
        },
      ],
      backends: [backend("m/web:80", [h.port]), backend("m/rpc:9000", [g.port], Protocol.PROTOCOL_GRPC)],
    }),
  );
  web = agent.listenerPorts().get("m/web:80") as number;
  rpc = agent.listenerPorts().get("m/rpc:9000") as number;
  client = echoClient(rpc);
});

afterAll(async () => {
  client.close();
  closeClientAgents();
  await agent.close();
  await Promise.all([h.close(), g.close()]);
});

/** Writes raw bytes, returns whatever comes back until the server closes (or timeout). */
function raw(port: number, data: string | Buffer, waitMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let out = "";
    const done = (): void => {
      clearTimeout(t);
      resolve(out);
    };
    const t = setTimeout(() => {
      s.destroy();
      resolve(`${out}<timeout>`);
    }, waitMs);
    s.on("data", (d: Buffer) => {
      out += d.toString("latin1");
    });
    s.on("close", done);
    s.on("error", () => {});
    s.write(data);
  });
}

async function stillServing(): Promise<void> {
  expect((await request(web, { path: "/ok" })).body).toBe("ok");
}

describe("malformed HTTP/1.1", () => {
  it("a bad request line gets 400 and the connection is closed", async () => {
    const out = await raw(web, "GARBAGE\r\n\r\n");
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    expect(out).not.toContain("<timeout>");
    await stillServing();
  });

  it("oversized headers get 431", async () => {
    const out = await raw(web, `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(40_000)}\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1\.1 431/);
    await stillServing();
  });

  it("Content-Length together with Transfer-Encoding (smuggling) gets 400", async () => {
    const out = await raw(
      web,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    expect(h.requests.some((r) => r.url === "/smuggled")).toBe(false);
    await stillServing();
  });

  it("two different Content-Length values get 400", async () => {
    const out = await raw(
      web,
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    );
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    await stillServing();
  });

  it("an unusable request target gets 400", async () => {
    const out = await raw(web, "GET nopath HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(out).toMatch(/^HTTP\/1\.1 400/);
    await stillServing();
  });

  it("a client that never finishes its headers is cut after the headers timeout", async () => {
    const t0 = performance.now();
    const out = await raw(web, "GET / HTTP/1.1\r\nHost: x\r\n", 5_000);
    expect(out).not.toContain("<timeout>");
    expect(performance.now() - t0).toBeLessThan(3_000);
    await stillServing();
  });

  it("a client that goes away mid-response aborts the upstream request", async () => {
    const before = upstreamClosed;
    await new Promise<void>((resolve) => {
      const s = net.connect(web, "127.0.0.1");
      let got = 0;
      s.on("data", (d: Buffer) => {
        got += d.length;
        if (got > 20_000) {
          s.destroy();
          resolve();
        }
      });
      s.on("error", () => {});
      s.write("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    });
    for (let i = 0; i < 100 && upstreamClosed === before; i++) await sleep(10);
    expect(upstreamClosed).toBe(before + 1);
    await stillServing();
  });

  it("an HTTP/1.1 request on an HTTP/2 port is refused without harm", async () => {
    const out = await raw(rpc, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(out).not.toContain("<timeout>");
    await stillServing();
  });
});

describe("malformed HTTP/2", () => {
  it("a bad connection preface closes the connection", async () => {
    const out = await raw(rpc, Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\nnonsense-frames-here"));
    expect(out).not.toContain("<timeout>");
  });

  it("garbage frames after a valid preface get GOAWAY and a close", async () => {
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
    // A frame header announcing a 16 MB HEADERS frame on stream 0: a protocol error.
    const bad = Buffer.from([0xff, 0xff, 0xff, 0x01, 0x04, 0, 0, 0, 0]);
    const out = await raw(rpc, Buffer.concat([preface, bad, Buffer.alloc(64)]));
    expect(out).not.toContain("<timeout>");
    // GOAWAY is frame type 0x07.
    expect(Buffer.from(out, "latin1").includes(Buffer.from([0x07]))).toBe(true);
  });

  it("a client resetting a streaming call mid-stream leaves other calls working", async () => {
    await new Promise<void>((resolve) => {
      const call = client.makeServerStreamRequest<Msg, Msg>(
        "/test.Echo/List",
        (m: Msg) => Buffer.from(JSON.stringify(m)),
        (b: Buffer) => JSON.parse(b.toString()) as Msg,
        { n: 100_000 },
        new grpc.Metadata(),
        {},
      );
      let n = 0;
      call.on("data", () => {
        if (++n === 100) {
          call.cancel();
          resolve();
        }
      });
      call.on("error", () => {});
    });
    // Raw h2 reset right after sending headers and part of a body.
    const session = http2.connect(`http://127.0.0.1:${rpc}`);
    const s = session.request({
      ":method": "POST",
      ":path": "/test.Echo/Sum",
      "content-type": "application/grpc",
      te: "trailers",
    });
    s.on("error", () => {});
    s.write(Buffer.from([0, 0, 0, 0, 10, 1, 2]));
    await sleep(20);
    s.close(http2.constants.NGHTTP2_CANCEL);
    session.close();
    const ok = await new Promise<Msg>((resolve, reject) =>
      client.makeUnaryRequest<Msg, Msg>(
        "/test.Echo/Unary",
        (m: Msg) => Buffer.from(JSON.stringify(m)),
        (b: Buffer) => JSON.parse(b.toString()) as Msg,
        { text: "after" },
        new grpc.Metadata(),
        {},
        (err: grpc.ServiceError | null, r?: Msg) => (err ? reject(err) : resolve(r as Msg)),
      ),
    );
    expect(ok.text).toBe("after");
    await stillServing();
  });
});

describe("many bad connections at once", () => {
  it("do not affect a concurrent good client", async () => {
    const bad = Array.from({ length: 30 }, (_, i) =>
      raw(i % 2 === 0 ? web : rpc, i % 3 === 0 ? "\x00\x01\x02\r\n\r\n" : "BAD / HTTP/9.9\r\n\r\n", 1_000),
    );
    const good = Array.from({ length: 20 }, () => request(web, { path: "/ok" }));
    const results = await Promise.all(good);
    await Promise.all(bad);
    for (const r of results) expect(r.body).toBe("ok");
  });
});
