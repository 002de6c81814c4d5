// Scriptable stand-ins for smiley and color on loopback (real HTTP and gRPC
// servers) that record what face sent them, for the face tests.
import http from "node:http";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import type { ColorResponse } from "../../faces/lib/color-messages.ts";
import { colorServiceDefinition } from "../../faces/lib/color-service.ts";

export type StubAnswer = { status: number; body: string; headers?: Record<string, string> };

export type SmileyStub = {
  address: string;
  seen: Array<{ path: string; headers: http.IncomingHttpHeaders }>;
  answer: StubAnswer;
  close(): Promise<void>;
};

export async function smileyStub(answer: StubAnswer): Promise<SmileyStub> {
  const server = http.createServer((req, res) => {
    stub.seen.push({ path: req.url ?? "", headers: req.headers });
    res.writeHead(stub.answer.status, { "content-type": "application/json", ...stub.answer.headers });
    res.end(stub.answer.body);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const stub: SmileyStub = {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen: [],
    answer,
    close: () =>
      new Promise((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
  return stub;
}

export type ColorStubAnswer =
  | { response: ColorResponse; headers?: Record<string, string> }
  | { error: grpc.status; details: string; trailers?: Record<string, string> };

export type ColorStub = {
  address: string;
  seen: Array<{ method: string; row: number; column: number; user: string | undefined }>;
  close(): Promise<void>;
};

function metadataOf(values: Record<string, string> = {}): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(values)) md.set(k, v);
  return md;
}

export async function colorStub(answer: ColorStubAnswer): Promise<ColorStub> {
  const seen: ColorStub["seen"] = [];
  const handler =
    (method: string): grpc.handleUnaryCall<{ row: number; column: number }, ColorResponse> =>
    (call, callback) => {
      const user = call.metadata.get("x-faces-user")[0];
      seen.push({ method, row: call.request.row, column: call.request.column, user: user?.toString() });
      if ("response" in answer) {
        call.sendMetadata(metadataOf(answer.headers));
        callback(null, answer.response);
      } else {
        callback({ code: answer.error, details: answer.details, metadata: metadataOf(answer.trailers) });
      }
    };
  const server = new grpc.Server();
  server.addService(colorServiceDefinition, { Center: handler("Center"), Edge: handler("Edge") });
  const port = await new Promise<number>((done, fail) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? fail(err) : done(p),
    ),
  );
  return { address: `127.0.0.1:${port}`, seen, close: async () => server.forceShutdown() };
}
