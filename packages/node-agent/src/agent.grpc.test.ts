// gRPC (h2c) through the agent with real @grpc/grpc-js servers and clients.

import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { MatchType, Protocol, RouteKind } from "@trellis/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Agent } from "./agent.ts";
import {
  type EchoClientT,
  echoClient,
  type GrpcBackend,
  type Msg,
  startGrpcBackend,
  unary,
} from "./testing/grpc.ts";
import {
  backend,
  closeClientAgents,
  forwardTo,
  grpcMatch,
  type HttpBackend,
  request,
  startHttpBackend,
  table,
  testAgent,
} from "./testing/loopback.ts";

let g1: GrpcBackend;
let g2: GrpcBackend;
let h: HttpBackend;
let agent: Agent;
let grpcPort: number;
let sniffPort: number;
let webPort: number;
let client: EchoClientT;
const clients: EchoClientT[] = [];

const route = { kind: RouteKind.ROUTE_KIND_GRPC, namespace: "rpc", name: "echo" };

beforeAll(async () => {
  [g1, g2, h] = await Promise.all([startGrpcBackend("g1"), startGrpcBackend("g2"), startHttpBackend("h")]);
  agent = testAgent({ debugHeaders: true });
  await agent.apply(
    table({
      services: [
        {
          namespace: "rpc",
          name: "echo",
          clusterIps: ["10.96.1.1"],
          ports: [
            {
              port: 9000,
              name: "grpc",
              protocol: Protocol.PROTOCOL_GRPC,
              defaultBackendId: "rpc/echo:9000",
              routeSets: [
                {
                  clientNamespace: "*",
                  kind: RouteKind.ROUTE_KIND_GRPC,
                  rules: [
                    {
                      route,
                      ruleIndex: 0,
                      action: forwardTo(["rpc/echo-v2:9000", 1]),
                      requestHeaders: { set: [{ name: "x-routed", value: "v2" }] },
                      responseHeaders: { add: [{ name: "x-resp", value: "v2" }] },
                    },
                    { route, ruleIndex: 1, action: forwardTo(["rpc/echo:9000", 1]) },
                    { route, ruleIndex: 2, action: forwardTo(["rpc/none:9000", 1]) },
                    {
                      route,
                      ruleIndex: 3,
                      action: forwardTo([
                        { httpStatus: 500, grpcStatus: 14, message: "backend not found" },
                        1,
                      ]),
                    },
                  ],
                  matches: [
                    grpcMatch(0, {
                      type: MatchType.MATCH_TYPE_EXACT,
                      service: "test.Echo",
                      headers: [{ name: "x-version", type: MatchType.MATCH_TYPE_EXACT, value: "2" }],
                    }),
                    grpcMatch(1, { type: MatchType.MATCH_TYPE_EXACT, service: "test.Echo" }),
                    grpcMatch(2, { type: MatchType.MATCH_TYPE_EXACT, service: "test.Empty" }),
                    grpcMatch(3, { type: MatchType.MATCH_TYPE_EXACT, service: "test.Invalid" }),
                  ],
                },
              ],
            },
          ],
        },
        {
          namespace: "rpc",
          name: "mixed",
          clusterIps: ["10.96.1.2"],
          ports: [{ port: 7000, protocol: Protocol.PROTOCOL_SNIFF, defaultBackendId: "rpc/mixed:7000" }],
        },
        {
          namespace: "rpc",
          name: "web",
          clusterIps: ["10.96.1.3"],
          ports: [{ port: 80, protocol: Protocol.PROTOCOL_SNIFF, defaultBackendId: "rpc/web:80" }],
        },
      ],
      backends: [
        backend("rpc/echo:9000", [g1.port], Protocol.PROTOCOL_GRPC),
        backend("rpc/echo-v2:9000", [g2.port], Protocol.PROTOCOL_GRPC),
        backend("rpc/none:9000", [], Protocol.PROTOCOL_GRPC),
        // SNIFF backend: the agent speaks to it what the client spoke.
        backend("rpc/mixed:7000", [g1.port], Protocol.PROTOCOL_SNIFF),
        // HTTP/1.1 backend behind a SNIFF port: HTTP/2 clients are translated.
        backend("rpc/web:80", [h.port], Protocol.PROTOCOL_HTTP1),
      ],
    }),
  );
  grpcPort = agent.listenerPorts().get("rpc/echo:9000") as number;
  sniffPort = agent.listenerPorts().get("rpc/mixed:7000") as number;
  webPort = agent.listenerPorts().get("rpc/web:80") as number;
  client = echoClient(grpcPort);
  clients.push(client);
});

afterAll(async () => {
  for (const c of clients) c.close();
  closeClientAgents();
  await agent.close();
  await Promise.all([g1.close(), g2.close(), h.close()]);
});

describe("gRPC through the agent", () => {
  it("unary: metadata and trailers pass through", async () => {
    const { msg, trailers } = await unary(client, { text: "hi" }, { metadata: { "x-user": "ann" } });
    expect(msg.text).toBe("hi");
    expect(msg.from).toBe("g1");
    expect(msg.metadata?.["x-user"]).toBe("ann");
    expect(trailers["x-trailer"]).toBe("g1");
  });

  it("routes by gRPC service and metadata, with header modifiers", async () => {
    const { msg } = await unary(client, { text: "v2?" }, { metadata: { "x-version": "2" } });
    expect(msg.from).toBe("g2");
    expect(msg.metadata?.["x-routed"]).toBe("v2");
  });

  it("passes a backend's error status and percent-encoded message through (trailers-only)", async () => {
    g1.failWith = grpc.status.NOT_FOUND;
    try {
      await expect(unary(client, { text: "x" })).rejects.toMatchObject({
        code: grpc.status.NOT_FOUND,
        details: "failed by g1: 100% sure",
      });
    } finally {
      g1.failWith = null;
    }
  });

  it("server streaming delivers every message", async () => {
    const got: Msg[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.makeServerStreamRequest<Msg, Msg>(
        "/test.Echo/List",
        (m: Msg) => Buffer.from(JSON.stringify(m)),
        (b: Buffer) => JSON.parse(b.toString()) as Msg,
        { n: 500 },
        new grpc.Metadata(),
        {},
      );
      call.on("data", (m: Msg) => got.push(m));
      call.on("error", reject);
      call.on("end", resolve);
    });
    expect(got.length).toBe(500);
    expect(got[499]?.n).toBe(499);
  });

  it("client streaming sums what the client sent", async () => {
    const res = await new Promise<Msg>((resolve, reject) => {
      const call = client.makeClientStreamRequest<Msg, Msg>(
        "/test.Echo/Sum",
        (m: Msg) => Buffer.from(JSON.stringify(m)),
        (b: Buffer) => JSON.parse(b.toString()) as Msg,
        new grpc.Metadata(),
        {},
        (err: grpc.ServiceError | null, r?: Msg) => (err ? reject(err) : resolve(r as Msg)),
      );
      for (let i = 1; i <= 200; i++) call.write({ n: i });
      call.end();
    });
    expect(res.n).toBe(20_100);
    expect(res.text).toBe("200");
  });

  it("bidirectional streaming interleaves both ways", async () => {
    const replies: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const call = client.makeBidiStreamRequest<Msg, Msg>(
        "/test.Echo/Chat",
        (m: Msg) => Buffer.from(JSON.stringify(m)),
        (b: Buffer) => JSON.parse(b.toString()) as Msg,
        new grpc.Metadata(),
        {},
      );
      let i = 0;
      // Send the next message only after the previous reply: proves no buffering until end.
      call.on("data", (m: Msg) => {
        replies.push(m.text ?? "");
        if (++i < 20) call.write({ text: String(i) });
        else call.end();
      });
      call.on("error", reject);
      call.on("end", resolve);
      call.write({ text: "0" });
    });
    expect(replies.length).toBe(20);
    expect(replies[19]).toBe("echo:19");
  });

  it("no matching rule → UNIMPLEMENTED; no endpoints and invalid backends → UNAVAILABLE", async () => {
    const call = (path: string) =>
      new Promise<grpc.ServiceError>((resolve) => {
        client.makeUnaryRequest<Msg, Msg>(
          path,
          (m: Msg) => Buffer.from(JSON.stringify(m)),
          (b: Buffer) => JSON.parse(b.toString()) as Msg,
          {},
          new grpc.Metadata(),
          {},
          (err: grpc.ServiceError | null) => resolve(err as grpc.ServiceError),
        );
      });
    expect(await call("/test.Other/X")).toMatchObject({
      code: grpc.status.UNIMPLEMENTED,
      details: "no route matched",
    });
    expect(await call("/test.Empty/X")).toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(await call("/test.Invalid/X")).toMatchObject({
      code: grpc.status.UNAVAILABLE,
      details: "backend not found",
    });
  });

  it("agent-made errors are trailers-only responses with a percent-encoded grpc-message", async () => {
    const session = http2.connect(`http://127.0.0.1:${grpcPort}`);
    try {
      const res = await new Promise<{ headers: http2.IncomingHttpHeaders; flags: number }>(
        (resolve, reject) => {
          const s = session.request({
            ":method": "POST",
            ":path": "/test.Invalid/X",
            "content-type": "application/grpc",
            te: "trailers",
          });
          s.on("response", (headers, flags) => resolve({ headers, flags }));
          s.on("error", reject);
          s.end(Buffer.from([0, 0, 0, 0, 0]));
        },
      );
      expect(res.flags & http2.constants.NGHTTP2_FLAG_END_STREAM).toBeTruthy();
      expect(res.headers[":status"]).toBe(200);
      expect(res.headers["content-type"]).toBe("application/grpc");
      expect(res.headers["grpc-status"]).toBe("14");
      expect(res.headers["grpc-message"]).toBe("backend not found");
    } finally {
      session.close();
    }
  });

  it("a SNIFF port detects the HTTP/2 preface and forwards gRPC as HTTP/2", async () => {
    const c = echoClient(sniffPort);
    clients.push(c);
    const { msg } = await unary(c, { text: "sniffed" });
    expect(msg.from).toBe("g1");
  });

  it("a SNIFF port serves HTTP/1.1 and h2c clients; h2c is translated for an HTTP/1.1 backend", async () => {
    const r1 = await request(webPort, { path: "/h1?x=1" });
    expect(r1.status).toBe(200);
    expect(JSON.parse(r1.body).url).toBe("/h1?x=1");
    const session = http2.connect(`http://127.0.0.1:${webPort}`);
    try {
      const r2 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const s = session.request({
          ":method": "POST",
          ":path": "/h2?y=2",
          ":authority": "web.rpc",
          "x-h2": "1",
        });
        let status = 0;
        let body = "";
        s.on("response", (hd) => {
          status = Number(hd[":status"]);
        });
        s.setEncoding("utf8");
        s.on("data", (d: string) => {
          body += d;
        });
        s.on("end", () => resolve({ status, body }));
        s.on("error", reject);
        s.end("h2 body");
      });
      expect(r2.status).toBe(200);
      const echo = JSON.parse(r2.body) as {
        method: string;
        url: string;
        body: string;
        headers: Record<string, string>;
      };
      expect(echo).toMatchObject({ method: "POST", url: "/h2?y=2", body: "h2 body" });
      expect(echo.headers.host).toBe("web.rpc");
      expect(echo.headers["x-h2"]).toBe("1");
    } finally {
      session.close();
    }
  });
});
