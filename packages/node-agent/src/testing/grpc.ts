// A small gRPC service for tests, served and called with @grpc/grpc-js and
// JSON-encoded messages (generic service definitions, no codegen).

import * as grpc from "@grpc/grpc-js";

export interface Msg {
  text?: string;
  n?: number;
  from?: string;
  metadata?: Record<string, string>;
}

const ser = (m: Msg): Buffer => Buffer.from(JSON.stringify(m));
const de = (b: Buffer): Msg => JSON.parse(b.toString("utf8")) as Msg;

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: ser,
    requestDeserialize: de,
    responseSerialize: ser,
    responseDeserialize: de,
  };
}

export const echoService = {
  Unary: method("Unary", false, false),
  List: method("List", false, true),
  Sum: method("Sum", true, false),
  Chat: method("Chat", true, true),
} satisfies grpc.ServiceDefinition;

export const EchoClient = grpc.makeGenericClientConstructor(echoService, "Echo");
export type EchoClientT = InstanceType<typeof EchoClient>;

export interface GrpcBackend {
  name: string;
  port: number;
  calls: number;
  /** Delay before answering Unary, ms. */
  delayMs: number;
  /** When set, Unary fails with this status. */
  failWith: grpc.status | null;
  close(): Promise<void>;
}

function metadataObject(md: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(md.getMap())) out[k] = String(v);
  return out;
}

export async function startGrpcBackend(name: string): Promise<GrpcBackend> {
  const server = new grpc.Server();
  const b: GrpcBackend = {
    name,
    port: 0,
    calls: 0,
    delayMs: 0,
    failWith: null,
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  };
  server.addService(echoService, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      b.calls++;
      const md = metadataObject(call.metadata);
      const answer = (): void => {
        if (b.failWith !== null) {
          cb({ code: b.failWith, details: `failed by ${name}: 100% sure` });
          return;
        }
        const trailer = new grpc.Metadata();
        trailer.set("x-trailer", name);
        call.sendMetadata(new grpc.Metadata());
        cb(null, { text: call.request.text, from: name, metadata: md }, trailer);
      };
      if (b.delayMs > 0) setTimeout(answer, b.delayMs);
      else answer();
    },
    List: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      b.calls++;
      const n = call.request.n ?? 0;
      for (let i = 0; i < n; i++) call.write({ n: i, from: name });
      call.end();
    },
    Sum: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      b.calls++;
      let sum = 0;
      let count = 0;
      call.on("data", (m: Msg) => {
        sum += m.n ?? 0;
        count++;
      });
      call.on("end", () => cb(null, { n: sum, text: String(count), from: name }));
    },
    Chat: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      b.calls++;
      call.on("data", (m: Msg) => call.write({ text: `echo:${m.text}`, from: name }));
      call.on("end", () => call.end());
    },
  });
  b.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  return b;
}

export function echoClient(port: number): EchoClientT {
  return new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

export function unary(
  c: EchoClientT,
  msg: Msg,
  o: { metadata?: Record<string, string>; deadlineMs?: number } = {},
): Promise<{ msg: Msg; trailers: Record<string, string> }> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(o.metadata ?? {})) md.set(k, v);
  const options: grpc.CallOptions = o.deadlineMs === undefined ? {} : { deadline: Date.now() + o.deadlineMs };
  return new Promise((resolve, reject) => {
    let trailers: Record<string, string> = {};
    const call = c.makeUnaryRequest<Msg, Msg>(
      echoService.Unary.path,
      ser,
      de,
      msg,
      md,
      options,
      (err: grpc.ServiceError | null, res?: Msg) => {
        if (err !== null) reject(err);
        else setImmediate(() => resolve({ msg: res as Msg, trailers }));
      },
    );
    call.on("status", (s: grpc.StatusObject) => {
      trailers = metadataObject(s.metadata);
    });
  });
}
