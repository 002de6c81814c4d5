// Which protocol a service port speaks (GAMMA.md "Protocol per service port"):
// appProtocol first, then the port name prefix, then the kind of route
// attached, else sniffing.
import { Protocol } from "@trellis/api";
import type { RouteKindName, ServicePortObject } from "../snapshot/snapshot.ts";

export interface ProtocolChoice {
  readonly protocol: Protocol;
  /** Said in tables and messages so users see why. */
  readonly source: string;
}

const APP_PROTOCOLS: Readonly<Record<string, Protocol>> = {
  "kubernetes.io/h2c": Protocol.PROTOCOL_HTTP2,
  grpc: Protocol.PROTOCOL_GRPC,
  http: Protocol.PROTOCOL_HTTP1,
  http2: Protocol.PROTOCOL_HTTP2,
  "kubernetes.io/ws": Protocol.PROTOCOL_HTTP1,
  tcp: Protocol.PROTOCOL_TCP,
  // Encrypted traffic cannot be routed on HTTP fields: pass it through.
  https: Protocol.PROTOCOL_TCP,
  tls: Protocol.PROTOCOL_TCP,
  "kubernetes.io/wss": Protocol.PROTOCOL_TCP,
};

const NAME_PREFIXES: Readonly<Record<string, Protocol>> = {
  http: Protocol.PROTOCOL_HTTP1,
  http2: Protocol.PROTOCOL_HTTP2,
  h2c: Protocol.PROTOCOL_HTTP2,
  grpc: Protocol.PROTOCOL_GRPC,
  tcp: Protocol.PROTOCOL_TCP,
  https: Protocol.PROTOCOL_TCP,
  tls: Protocol.PROTOCOL_TCP,
};

/** The protocol the Service itself declares, if any. */
export function declaredProtocol(port: ServicePortObject): ProtocolChoice | undefined {
  if (port.appProtocol !== undefined) {
    const fromApp = APP_PROTOCOLS[port.appProtocol.toLowerCase()];
    if (fromApp !== undefined) return { protocol: fromApp, source: `appProtocol ${port.appProtocol}` };
  }
  const prefix = port.name.toLowerCase().split("-")[0] ?? "";
  const fromName = NAME_PREFIXES[prefix];
  if (fromName !== undefined) return { protocol: fromName, source: `port name ${port.name}` };
  return undefined;
}

export function servicePortProtocol(
  port: ServicePortObject,
  attachedKinds: ReadonlySet<RouteKindName>,
): ProtocolChoice {
  const declared = declaredProtocol(port);
  if (declared) return declared;
  if (attachedKinds.has("GRPCRoute"))
    return { protocol: Protocol.PROTOCOL_GRPC, source: "GRPCRoute attached" };
  return { protocol: Protocol.PROTOCOL_SNIFF, source: "not declared: sniffed" };
}

/** A backend speaks what it declares, else whatever the client spoke. */
export function backendProtocol(port: ServicePortObject): ProtocolChoice {
  return (
    declaredProtocol(port) ?? { protocol: Protocol.PROTOCOL_SNIFF, source: "not declared: as the client" }
  );
}

/**
 * Whether a route of this kind can carry traffic of a port that declares this
 * protocol. Undeclared (sniffed) ports take any route kind.
 */
export function routeKindFits(kind: RouteKindName, protocol: Protocol): boolean {
  if (protocol === Protocol.PROTOCOL_TCP) return false;
  if (kind === "GRPCRoute") return protocol !== Protocol.PROTOCOL_HTTP1;
  return true;
}

export function protocolLabel(protocol: Protocol): string {
  switch (protocol) {
    case Protocol.PROTOCOL_HTTP1:
      return "HTTP/1.1";
    case Protocol.PROTOCOL_HTTP2:
      return "HTTP/2";
    case Protocol.PROTOCOL_GRPC:
      return "gRPC";
    case Protocol.PROTOCOL_TCP:
      return "TCP";
    default:
      return "sniffed";
  }
}
