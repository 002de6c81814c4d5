// Which Service ports a parentRef binds a route to (GAMMA.md "Binding"), and
// for which clients: producer routes live in the Service's namespace and apply
// to every client ("*"); consumer routes apply to their own namespace only.
import {
  objectKey,
  type ParentRefSpec,
  type RouteObject,
  type ServiceObject,
  type ServicePortObject,
} from "../snapshot/snapshot.ts";
import { declaredProtocol, protocolLabel, routeKindFits } from "./protocol.ts";
import { article } from "./wording.ts";

export const PRODUCER_GROUP = "*";

export type ParentRefOwner = "trellis" | "trellis-misgrouped" | "other";

export type ParentBinding =
  | {
      readonly ok: true;
      readonly service: ServiceObject;
      readonly ports: readonly ServicePortObject[];
      readonly clientGroup: string;
      /** Ports of the Service the parentRef covers but the route cannot use, said in the Accepted message. */
      readonly skipped: readonly string[];
    }
  | {
      readonly ok: false;
      readonly reason: "NoMatchingParent" | "UnsupportedValue";
      readonly message: string;
    };

/**
 * Service parents are ours. The Gateway API CRD defaults an omitted parentRef
 * group to gateway.networking.k8s.io, which has no Service kind: that is a
 * user who forgot `group: ""`, and we say so instead of ignoring the route.
 */
export function parentRefOwner(ref: ParentRefSpec): ParentRefOwner {
  if (ref.kind !== "Service") return "other";
  if (ref.group === "" || ref.group === "core") return "trellis";
  if (ref.group === "gateway.networking.k8s.io") return "trellis-misgrouped";
  return "other";
}

export function bindParent(
  route: RouteObject,
  ref: ParentRefSpec,
  services: ReadonlyMap<string, ServiceObject>,
): ParentBinding {
  if (parentRefOwner(ref) === "trellis-misgrouped") {
    return {
      ok: false,
      reason: "UnsupportedValue",
      message: `${ref.field}: group "gateway.networking.k8s.io" (the default when group is omitted) has no kind Service; set group: "" to attach to the Service`,
    };
  }
  const namespace = ref.namespace ?? route.namespace;
  const serviceName = objectKey(namespace, ref.name);
  const service = services.get(serviceName);
  if (!service) {
    return {
      ok: false,
      reason: "NoMatchingParent",
      message: `${ref.field}: Service ${serviceName} not found; create it or fix name/namespace of the parentRef`,
    };
  }
  if (service.type === "ExternalName") {
    return {
      ok: false,
      reason: "UnsupportedValue",
      message: `${ref.field}: Service ${serviceName} is type ExternalName and has no cluster IP to route; attach the route to a ClusterIP Service`,
    };
  }
  if (!service.headless && service.clusterIPs.length === 0) {
    return {
      ok: false,
      reason: "UnsupportedValue",
      message: `${ref.field}: Service ${serviceName} has no cluster IP yet, so there is no address Trellis could route; wait for the API server to allocate one`,
    };
  }
  if (service.headless) {
    return {
      ok: false,
      reason: "UnsupportedValue",
      message: `${ref.field}: Service ${serviceName} is headless (clusterIP: None), so no traffic goes through a cluster IP Trellis could route; attach the route to a ClusterIP Service`,
    };
  }

  const selected = service.ports.filter(
    (p) =>
      (ref.port === undefined || p.port === ref.port) &&
      (ref.sectionName === undefined || p.name === ref.sectionName),
  );
  if (selected.length === 0) {
    const wanted =
      ref.port !== undefined && ref.sectionName !== undefined
        ? `port ${ref.port} named "${ref.sectionName}"`
        : ref.port !== undefined
          ? `port ${ref.port}`
          : `port named "${ref.sectionName}"`;
    const available =
      service.ports.map((p) => (p.name ? `${p.port} (${p.name})` : `${p.port}`)).join(", ") || "none";
    return {
      ok: false,
      reason: "NoMatchingParent",
      message: `${ref.field}: Service ${serviceName} has no ${wanted}; its ports are ${available}. Fix port/sectionName (sectionName is the name of a Service port)`,
    };
  }

  const usable: ServicePortObject[] = [];
  const refusals: string[] = [];
  for (const port of selected) {
    const declared = declaredProtocol(port);
    if (port.protocol !== "TCP") {
      refusals.push(`port ${port.port} is ${port.protocol}; Trellis routes TCP only`);
    } else if (declared && !routeKindFits(route.kind, declared.protocol)) {
      const fix =
        route.kind === "GRPCRoute"
          ? "gRPC needs HTTP/2: set appProtocol: kubernetes.io/h2c (or grpc) or name the port grpc"
          : "declare HTTP: set appProtocol: http or name the port http";
      refusals.push(
        `port ${port.port} is ${protocolLabel(declared.protocol)} by its ${declared.source}, which ${article(route.kind)} cannot route; ${fix}`,
      );
    } else {
      usable.push(port);
    }
  }
  if (usable.length === 0) {
    return {
      ok: false,
      reason: "UnsupportedValue",
      message: `${ref.field}: Service ${serviceName}: ${refusals.join("; ")}`,
    };
  }
  return {
    ok: true,
    service,
    ports: usable,
    clientGroup: namespace === route.namespace ? PRODUCER_GROUP : route.namespace,
    skipped: refusals,
  };
}
