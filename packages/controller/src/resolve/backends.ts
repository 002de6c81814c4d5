// Backend references → backend ids, and the one Backend per (Service, port)
// that every rule referring to it shares. Cross-namespace references need no
// ReferenceGrant: in the mesh the client could reach the Service directly
// anyway (GEP-1294).
import type { Backend } from "@trellis/api";
import {
  type BackendObjectRefSpec,
  type EndpointSliceObject,
  objectKey,
  type RouteKindName,
  type ServiceObject,
  type ServicePortObject,
} from "../snapshot/snapshot.ts";
import { endpointsOf } from "./endpoints.ts";
import { backendProtocol, protocolLabel, routeKindFits } from "./protocol.ts";
import { article } from "./wording.ts";

export type BackendRefResult =
  | { readonly ok: true; readonly backendId: string }
  | {
      readonly ok: false;
      readonly reason: "BackendNotFound" | "InvalidKind" | "UnsupportedProtocol";
      readonly message: string;
    };

export function backendId(namespace: string, name: string, port: number): string {
  return `${objectKey(namespace, name)}:${port}`;
}

export function describePorts(service: ServiceObject): string {
  const tcp = service.ports.filter((p) => p.protocol === "TCP");
  return tcp.map((p) => (p.name ? `${p.port} (${p.name})` : `${p.port}`)).join(", ") || "none";
}

/** "<namespace>/<name>:<port>" → the Service key and port it names. */
export function parseBackendId(id: string): { readonly serviceKey: string; readonly port: number } {
  const colon = id.lastIndexOf(":");
  return { serviceKey: id.slice(0, colon), port: Number(id.slice(colon + 1)) };
}

/** The one Backend of a Service port: its endpoints from the Service's EndpointSlices. */
export function buildBackend(
  service: ServiceObject,
  port: ServicePortObject,
  slices: readonly EndpointSliceObject[],
): Backend {
  return {
    id: backendId(service.namespace, service.name, port.port),
    serviceNamespace: service.namespace,
    serviceName: service.name,
    servicePort: port.port,
    protocol: backendProtocol(port).protocol,
    endpoints: endpointsOf(port, slices),
  };
}

/**
 * Resolves one route's backendRefs against the Services, and remembers what
 * it looked at: which Services (found or not) the result depends on, and
 * which backends it handed out. That record is what lets a route's compiled
 * form be reused until one of those Services changes.
 */
export class BackendRefResolver {
  readonly #services: ReadonlyMap<string, ServiceObject>;
  readonly #lookedUp = new Map<string, ServiceObject | undefined>();
  readonly #backendIds = new Set<string>();

  constructor(services: ReadonlyMap<string, ServiceObject>) {
    this.#services = services;
  }

  /** Every Service key looked up, with what was found then. */
  get lookedUp(): ReadonlyMap<string, ServiceObject | undefined> {
    return this.#lookedUp;
  }

  /** Every backend id handed out. */
  get backendIds(): ReadonlySet<string> {
    return this.#backendIds;
  }

  resolve(ref: BackendObjectRefSpec, routeKind: RouteKindName): BackendRefResult {
    if ((ref.group !== "" && ref.group !== "core") || ref.kind !== "Service") {
      const kind = ref.group === "" ? ref.kind : `${ref.group}/${ref.kind}`;
      return {
        ok: false,
        reason: "InvalidKind",
        message: `${ref.field}: kind ${kind} is not supported; Trellis forwards to Services (group "", kind Service)`,
      };
    }
    const name = objectKey(ref.namespace, ref.name);
    const service = this.#services.get(name);
    this.#lookedUp.set(name, service);
    if (!service) {
      return {
        ok: false,
        reason: "BackendNotFound",
        message: `${ref.field}: Service ${name} not found; create it or fix name/namespace of the backendRef`,
      };
    }
    if (service.type === "ExternalName") {
      return {
        ok: false,
        reason: "BackendNotFound",
        message: `${ref.field}: Service ${name} is type ExternalName and has no endpoints to forward to; refer to a Service with a selector or EndpointSlices`,
      };
    }
    if (ref.port === undefined) {
      return {
        ok: false,
        reason: "BackendNotFound",
        message: `${ref.field}: port is required for a Service backend; set it to one of the ports of the Service: ${describePorts(service)}`,
      };
    }
    const port = service.ports.find((p) => p.port === ref.port && p.protocol === "TCP");
    if (!port) {
      return {
        ok: false,
        reason: "BackendNotFound",
        message: `${ref.field}: Service ${name} has no TCP port ${ref.port}; its ports are ${describePorts(service)}`,
      };
    }
    const protocol = backendProtocol(port);
    if (!routeKindFits(routeKind, protocol.protocol)) {
      return {
        ok: false,
        reason: "UnsupportedProtocol",
        message: `${ref.field}: port ${port.port} of Service ${name} is ${protocolLabel(protocol.protocol)} by its ${protocol.source}, which ${article(routeKind)} cannot forward; ${
          routeKind === "GRPCRoute"
            ? "set appProtocol: kubernetes.io/h2c (or grpc) or name the port grpc"
            : "declare HTTP with appProtocol: http or a port name starting with http"
        }`,
      };
    }
    const id = backendId(service.namespace, service.name, port.port);
    this.#backendIds.add(id);
    return { ok: true, backendId: id };
  }
}
