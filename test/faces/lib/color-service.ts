// The package-less gRPC ColorService (proto/color.proto) for @grpc/grpc-js:
// the service definition a server registers, and a small typed client that
// also hands back the response metadata (where a mesh puts its debug headers).
import * as grpc from "@grpc/grpc-js";
import {
  type ColorRequest,
  type ColorResponse,
  decodeColorRequest,
  decodeColorResponse,
  encodeColorRequest,
  encodeColorResponse,
} from "./color-messages.ts";

export type ColorMethod = "Center" | "Edge";

function method(name: ColorMethod): grpc.MethodDefinition<ColorRequest, ColorResponse> {
  return {
    path: `/ColorService/${name}`,
    originalName: name,
    requestStream: false,
    responseStream: false,
    requestSerialize: encodeColorRequest,
    requestDeserialize: decodeColorRequest,
    responseSerialize: encodeColorResponse,
    responseDeserialize: decodeColorResponse,
  };
}

export const colorServiceDefinition = {
  Center: method("Center"),
  Edge: method("Edge"),
} satisfies grpc.ServiceDefinition;

export type ColorServiceImplementation = {
  Center: grpc.handleUnaryCall<ColorRequest, ColorResponse>;
  Edge: grpc.handleUnaryCall<ColorRequest, ColorResponse>;
};

/** How one call ended: the response or the error, with the metadata seen either way. */
export type ColorCallResult =
  | { ok: true; response: ColorResponse; headers: grpc.Metadata; trailers: grpc.Metadata }
  | { ok: false; error: grpc.ServiceError; headers: grpc.Metadata; trailers: grpc.Metadata };

/**
 * One long-lived channel to a ColorService. No deadline and no retries: those
 * belong to the mesh. Keepalive pings only detect dead connections.
 */
export class ColorClient {
  readonly #client: grpc.Client;

  constructor(target: string) {
    this.#client = new grpc.Client(target, grpc.credentials.createInsecure(), {
      // No TXT lookups: the cluster-in-a-box resolves names from /etc/hosts only.
      "grpc.service_config_disable_resolution": 1,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 10_000,
    });
  }

  call(name: ColorMethod, request: ColorRequest, metadata: grpc.Metadata): Promise<ColorCallResult> {
    const def = colorServiceDefinition[name];
    return new Promise((done) => {
      let headers = new grpc.Metadata();
      let trailers = new grpc.Metadata();
      let outcome: { response: ColorResponse } | { error: grpc.ServiceError } | undefined;
      const finish = () => {
        if (outcome === undefined) return;
        if ("response" in outcome) done({ ok: true, response: outcome.response, headers, trailers });
        else done({ ok: false, error: outcome.error, headers, trailers });
      };
      const call = this.#client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        request,
        metadata,
        (error, response) => {
          if (error) outcome = { error };
          else outcome = { response: response ?? { color: "", rate: "", errors: [] } };
        },
      );
      call.on("metadata", (m) => {
        headers = m;
      });
      // grpc-js emits "status" (with the trailers) right after calling the callback
      call.on("status", (s) => {
        trailers = s.metadata;
        finish();
      });
    });
  }

  close(): void {
    this.#client.close();
  }
}
