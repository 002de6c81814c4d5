// What resolve hands to compile and to the status writer.
import type { Backend, Protocol, RouteSet } from "@trellis/api";
import type { RouteKindName } from "../snapshot/snapshot.ts";

export const CONTROLLER_NAME = "trellis.dev/gamma-controller";

export type AcceptedReason =
  | "Accepted"
  | "NoMatchingParent"
  | "UnsupportedValue"
  | "Conflicted"
  | "IncompatibleFilters";
export type ResolvedRefsReason =
  | "ResolvedRefs"
  | "BackendNotFound"
  | "InvalidKind"
  | "RefNotPermitted"
  | "UnsupportedProtocol";
export type InvalidRuleReason = "UnsupportedValue" | "IncompatibleFilters";

export interface RouteCondition {
  readonly type: "Accepted" | "ResolvedRefs" | "PartiallyInvalid";
  readonly status: "True" | "False";
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
}

/** The parentRef as the route spells it (defaults applied for group and kind), to match status entries. */
export interface StatusParentRef {
  readonly group: string;
  readonly kind: string;
  readonly namespace?: string;
  readonly name: string;
  readonly port?: number;
  readonly sectionName?: string;
}

export interface RouteParentStatus {
  readonly parentRef: StatusParentRef;
  readonly controllerName: string;
  readonly conditions: readonly RouteCondition[];
}

export interface RouteStatus {
  readonly kind: RouteKindName;
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  /** One entry per distinct Service parentRef; parentRefs to other kinds belong to other controllers. */
  readonly parents: readonly RouteParentStatus[];
}

export interface ResolvedServicePort {
  readonly port: number;
  readonly name: string;
  readonly protocol: Protocol;
  readonly protocolSource: string;
  readonly defaultBackendId: string;
  /** Producer set ("*") first, then consumer sets by client namespace. */
  readonly routeSets: readonly RouteSet[];
}

export interface ResolvedService {
  readonly namespace: string;
  readonly name: string;
  readonly clusterIPs: readonly string[];
  /** Every TCP port of the Service. */
  readonly ports: readonly ResolvedServicePort[];
}

export interface Resolution {
  /** Services with a cluster IP, sorted by namespace/name. */
  readonly services: readonly ResolvedService[];
  /** Default backends of every service port plus every backend a route references, by id. */
  readonly backends: ReadonlyMap<string, Backend>;
  /** Sorted by kind, namespace, name. */
  readonly statuses: readonly RouteStatus[];
}
