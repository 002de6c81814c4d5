// The typed, immutable view of the watched Kubernetes objects that resolve and
// compile work from. Only the fields Trellis reads are kept; defaults that the
// API server would apply (CRD and core defaults) are already filled in.

export type Labels = Readonly<Record<string, string>>;

export interface NamespaceObject {
  readonly name: string;
  readonly labels: Labels;
}

export interface ServicePortObject {
  readonly name: string;
  readonly port: number;
  /** TCP, UDP or SCTP. */
  readonly protocol: string;
  readonly appProtocol: string | undefined;
  readonly targetPort: number | string;
}

export interface ServiceObject {
  readonly namespace: string;
  readonly name: string;
  /** ClusterIP, NodePort, LoadBalancer or ExternalName. */
  readonly type: string;
  /** `clusterIP: None`. */
  readonly headless: boolean;
  /** Empty for headless and ExternalName Services. */
  readonly clusterIPs: readonly string[];
  readonly ports: readonly ServicePortObject[];
}

export interface EndpointSlicePortObject {
  readonly name: string;
  readonly port: number | undefined;
  readonly protocol: string;
}

export interface EndpointObject {
  /** The first address; Kubernetes treats the others as fungible. */
  readonly address: string;
  readonly ready: boolean;
  readonly serving: boolean;
  readonly terminating: boolean;
  readonly nodeName: string;
  /** "<namespace>/<name>" of the target Pod, or "". */
  readonly pod: string;
}

export interface EndpointSliceObject {
  readonly namespace: string;
  readonly name: string;
  readonly serviceName: string;
  /** IPv4, IPv6 or FQDN. */
  readonly addressType: string;
  readonly ports: readonly EndpointSlicePortObject[];
  readonly endpoints: readonly EndpointObject[];
}

export interface PodObject {
  readonly namespace: string;
  readonly name: string;
  readonly nodeName: string;
  readonly hostNetwork: boolean;
  readonly ips: readonly string[];
  readonly labels: Labels;
  readonly phase: string;
}

export interface NodeObject {
  readonly name: string;
}

export interface ReferenceGrantObject {
  readonly namespace: string;
  readonly name: string;
  readonly from: readonly { readonly group: string; readonly kind: string; readonly namespace: string }[];
  readonly to: readonly { readonly group: string; readonly kind: string; readonly name: string }[];
}

/** Where in an object something is, e.g. `spec.rules[1].filters[0]`, and what is wrong there. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

export interface ParentRefSpec {
  readonly field: string;
  readonly group: string;
  readonly kind: string;
  /** As written; undefined means the route's namespace. */
  readonly namespace: string | undefined;
  readonly name: string;
  readonly port: number | undefined;
  readonly sectionName: string | undefined;
}

export interface StringMatchSpec {
  readonly field: string;
  /** Exact, RegularExpression (or PathPrefix for paths); validated by resolve. */
  readonly type: string;
  readonly name: string;
  readonly value: string;
}

export interface HTTPMatchSpec {
  readonly field: string;
  readonly path: { readonly type: string; readonly value: string };
  readonly method: string | undefined;
  readonly headers: readonly StringMatchSpec[];
  readonly queryParams: readonly StringMatchSpec[];
}

export interface GRPCMatchSpec {
  readonly field: string;
  readonly method:
    | { readonly type: string; readonly service: string | undefined; readonly method: string | undefined }
    | undefined;
  readonly headers: readonly StringMatchSpec[];
}

export interface HeaderModifierSpec {
  readonly set: readonly { readonly name: string; readonly value: string }[];
  readonly add: readonly { readonly name: string; readonly value: string }[];
  readonly remove: readonly string[];
}

export interface PathModifierSpec {
  readonly type: string;
  readonly replaceFullPath: string | undefined;
  readonly replacePrefixMatch: string | undefined;
}

export interface BackendObjectRefSpec {
  readonly field: string;
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  /** Defaulted to the route's namespace. */
  readonly namespace: string;
  readonly port: number | undefined;
}

export interface FilterSpec {
  readonly field: string;
  readonly type: string;
  readonly requestHeaderModifier?: HeaderModifierSpec;
  readonly responseHeaderModifier?: HeaderModifierSpec;
  readonly requestRedirect?: {
    readonly scheme: string | undefined;
    readonly hostname: string | undefined;
    readonly port: number | undefined;
    readonly path: PathModifierSpec | undefined;
    readonly statusCode: number;
  };
  readonly urlRewrite?: {
    readonly hostname: string | undefined;
    readonly path: PathModifierSpec | undefined;
  };
  readonly requestMirror?: {
    readonly backendRef: BackendObjectRefSpec;
    readonly percent: number | undefined;
    readonly fraction: { readonly numerator: number; readonly denominator: number } | undefined;
  };
}

export interface BackendRefSpec extends BackendObjectRefSpec {
  readonly weight: number;
  readonly filters: readonly FilterSpec[];
}

interface RuleSpecCommon {
  readonly index: number;
  readonly field: string;
  readonly name: string;
  readonly filters: readonly FilterSpec[];
  readonly backendRefs: readonly BackendRefSpec[];
  /** Shape problems (wrong types, unsupported fields): each makes the rule invalid. */
  readonly problems: readonly FieldProblem[];
}

export interface HTTPRouteRuleSpec extends RuleSpecCommon {
  readonly matches: readonly HTTPMatchSpec[];
  readonly timeouts:
    | { readonly request: string | undefined; readonly backendRequest: string | undefined }
    | undefined;
  readonly retry:
    | {
        readonly codes: readonly number[];
        readonly attempts: number | undefined;
        readonly backoff: string | undefined;
      }
    | undefined;
}

export interface GRPCRouteRuleSpec extends RuleSpecCommon {
  readonly matches: readonly GRPCMatchSpec[];
}

interface RouteCommon {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly creationTimestamp: string;
  /** creationTimestamp in ms; +Infinity when missing, so such a route counts as the newest. */
  readonly createdAtMs: number;
  readonly parentRefs: readonly ParentRefSpec[];
  /** Fields that are valid but have no effect on Service parents, said in the Accepted message. */
  readonly notes: readonly string[];
  /** Problems with the route as a whole: it is not accepted anywhere. */
  readonly problems: readonly FieldProblem[];
}

export interface HTTPRouteObject extends RouteCommon {
  readonly kind: "HTTPRoute";
  readonly rules: readonly HTTPRouteRuleSpec[];
}

export interface GRPCRouteObject extends RouteCommon {
  readonly kind: "GRPCRoute";
  readonly rules: readonly GRPCRouteRuleSpec[];
}

export type RouteObject = HTTPRouteObject | GRPCRouteObject;
export type RouteKindName = RouteObject["kind"];

export interface SnapshotIssue {
  /** "HTTPRoute faces/smiley" or "document 3" when the object has no usable identity. */
  readonly object: string;
  readonly message: string;
}

/** Every collection is sorted by namespace/name, so iteration order never depends on watch order. */
export interface Snapshot {
  readonly namespaces: ReadonlyMap<string, NamespaceObject>;
  /** Keyed by "<namespace>/<name>". */
  readonly services: ReadonlyMap<string, ServiceObject>;
  /** Keyed by the Service's "<namespace>/<name>" (label kubernetes.io/service-name). */
  readonly endpointSlices: ReadonlyMap<string, readonly EndpointSliceObject[]>;
  readonly pods: readonly PodObject[];
  readonly nodes: readonly NodeObject[];
  readonly routes: readonly RouteObject[];
  readonly referenceGrants: readonly ReferenceGrantObject[];
  /** Objects or fields that could not be read; they never make building fail. */
  readonly issues: readonly SnapshotIssue[];
}

export function objectKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
