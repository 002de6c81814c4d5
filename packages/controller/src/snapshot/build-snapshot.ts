// Kubernetes objects (as JSON, in any order) → Snapshot. Never throws: objects
// that cannot be read are skipped and reported as issues, fields that cannot
// be read are reported and read as absent.
import { compareStrings } from "../sort-order.ts";
import { parseRoute } from "./parse-route.ts";
import {
  booleanField,
  describeJsonType,
  integerField,
  isJsonObject,
  type JsonObject,
  objectField,
  objectListField,
  stringField,
  stringListField,
  stringMapField,
} from "./read-json.ts";
import {
  type EndpointSliceObject,
  type FieldProblem,
  type NamespaceObject,
  type NodeObject,
  objectKey,
  type PodObject,
  type ReferenceGrantObject,
  type RouteObject,
  type ServiceObject,
  type Snapshot,
  type SnapshotIssue,
} from "./snapshot.ts";

const PORT = { min: 1, max: 65535 };
const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export function buildSnapshot(objects: readonly unknown[]): Snapshot {
  const issues: SnapshotIssue[] = [];
  const byIdentity = new Map<string, ReadObject>();
  for (const { obj, where } of flattenObjects(objects)) {
    const read = readObject(obj, where);
    issues.push(...read.issues);
    if (!read.identity || !read.value) continue;
    if (byIdentity.has(read.identity.key)) {
      issues.push({ object: read.identity.label, message: "appears twice; the last one is used" });
    }
    byIdentity.set(read.identity.key, read);
  }
  return snapshotOf(byIdentity.values(), issues);
}

/** Documents as read from YAML, with `kind: *List` wrappers (as `kubectl get -o yaml` writes them) unwrapped. */
export function flattenObjects(objects: readonly unknown[]): { obj: unknown; where: string }[] {
  const flat: { obj: unknown; where: string }[] = [];
  objects.forEach((obj, index) => {
    if (
      isJsonObject(obj) &&
      typeof obj.kind === "string" &&
      obj.kind.endsWith("List") &&
      Array.isArray(obj.items)
    ) {
      obj.items.forEach((item, i) => {
        flat.push({ obj: item, where: `document ${index + 1} item ${i + 1}` });
      });
    } else {
      flat.push({ obj, where: `document ${index + 1}` });
    }
  });
  return flat;
}

/** The Snapshot of objects with distinct identities. */
export function snapshotOf(objects: Iterable<ReadObject>, issues: SnapshotIssue[]): Snapshot {
  const namespaces = new Map<string, NamespaceObject>();
  const services = new Map<string, ServiceObject>();
  const slices = new Map<string, EndpointSliceObject>();
  const pods = new Map<string, PodObject>();
  const nodes = new Map<string, NodeObject>();
  const routes = new Map<string, RouteObject>();
  const grants = new Map<string, ReferenceGrantObject>();
  for (const { value } of objects) {
    if (!value) continue;
    switch (value.kind) {
      case "Namespace":
        namespaces.set(value.object.name, value.object);
        break;
      case "Service":
        services.set(objectKey(value.object.namespace, value.object.name), value.object);
        break;
      case "EndpointSlice":
        slices.set(objectKey(value.object.namespace, value.object.name), value.object);
        break;
      case "Pod":
        pods.set(objectKey(value.object.namespace, value.object.name), value.object);
        break;
      case "Node":
        nodes.set(value.object.name, value.object);
        break;
      case "Route":
        routes.set(routeKey(value.object), value.object);
        break;
      case "ReferenceGrant":
        grants.set(objectKey(value.object.namespace, value.object.name), value.object);
        break;
    }
  }
  const slicesByService = new Map<string, EndpointSliceObject[]>();
  for (const slice of sortedValues(slices)) {
    if (slice.serviceName === "") continue;
    const key = objectKey(slice.namespace, slice.serviceName);
    const list = slicesByService.get(key) ?? [];
    list.push(slice);
    slicesByService.set(key, list);
  }
  return {
    namespaces: new Map(sortedEntries(namespaces)),
    services: new Map(sortedEntries(services)),
    endpointSlices: new Map([...slicesByService].sort(byKey)),
    pods: sortedValues(pods),
    nodes: sortedValues(nodes),
    routes: sortedValues(routes),
    referenceGrants: sortedValues(grants),
    issues: issues.sort((a, b) => compareStrings(a.object, b.object) || compareStrings(a.message, b.message)),
  };
}

/** Sort key of a route: routes are ordered by kind, then namespace/name. */
export function routeKey(route: {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}): string {
  return `${route.kind}/${objectKey(route.namespace, route.name)}`;
}

/** One watched object, read. */
export type ReadValue =
  | { readonly kind: "Namespace"; readonly object: NamespaceObject }
  | { readonly kind: "Service"; readonly object: ServiceObject }
  | { readonly kind: "EndpointSlice"; readonly object: EndpointSliceObject }
  | { readonly kind: "Pod"; readonly object: PodObject }
  | { readonly kind: "Node"; readonly object: NodeObject }
  | { readonly kind: "Route"; readonly object: RouteObject }
  | { readonly kind: "ReferenceGrant"; readonly object: ReferenceGrantObject };

export interface ReadObject {
  /** Undefined when the object has no usable kind/name/namespace (an issue says why). */
  readonly identity: ObjectIdentity | undefined;
  /** Undefined for kinds Trellis does not watch (an issue says so). */
  readonly value: ReadValue | undefined;
  readonly issues: readonly SnapshotIssue[];
}

export interface ObjectIdentity {
  /** "<api group>/<kind>/<namespace>/<name>": two objects with one key are the same object. */
  readonly key: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** "Service app/web", for issues. */
  readonly label: string;
}

/** Reads one object. Never throws; `where` names it in issues when it has no identity. */
export function readObject(obj: unknown, where: string): ReadObject {
  const issues: SnapshotIssue[] = [];
  if (!isJsonObject(obj)) {
    issues.push({ object: where, message: `is ${describeJsonType(obj)}, not a Kubernetes object` });
    return { identity: undefined, value: undefined, issues };
  }
  const id = identify(obj, where, issues);
  if (!id) return { identity: undefined, value: undefined, issues };
  const problems: FieldProblem[] = [];
  let value: ReadValue | undefined;
  switch (`${apiGroup(obj.apiVersion)}/${id.kind}`) {
    case "/Namespace":
      value = { kind: "Namespace", object: { name: id.name, labels: labelsOf(obj, problems) } };
      break;
    case "/Service":
      value = { kind: "Service", object: readService(obj, id, problems) };
      break;
    case "discovery.k8s.io/EndpointSlice":
      value = { kind: "EndpointSlice", object: readEndpointSlice(obj, id, problems) };
      break;
    case "/Pod":
      value = { kind: "Pod", object: readPod(obj, id, problems) };
      break;
    case "/Node":
      value = { kind: "Node", object: { name: id.name } };
      break;
    case "gateway.networking.k8s.io/HTTPRoute":
    case "gateway.networking.k8s.io/GRPCRoute": {
      const kind = id.kind === "HTTPRoute" ? "HTTPRoute" : "GRPCRoute";
      const meta = objectField(obj, "metadata", "", problems) ?? {};
      const route = parseRoute(
        kind,
        {
          namespace: id.namespace,
          name: id.name,
          generation: integerField(meta, "generation", "metadata", problems, { min: 0, max: 2 ** 53 }) ?? 0,
          creationTimestamp: stringField(meta, "creationTimestamp", "metadata", problems) ?? "",
        },
        obj,
      );
      value = { kind: "Route", object: route };
      break;
    }
    case "gateway.networking.k8s.io/ReferenceGrant":
      value = { kind: "ReferenceGrant", object: readReferenceGrant(obj, id, problems) };
      break;
    default:
      issues.push({
        object: id.label,
        message: `kind ${String(obj.apiVersion)}/${id.kind} is not watched by Trellis`,
      });
  }
  for (const p of problems) issues.push({ object: id.label, message: `${p.field}: ${p.message}` });
  return { identity: id, value, issues };
}

/** The identity of an object (as for removal), without reading the rest of it. */
export function objectIdentity(obj: unknown): ObjectIdentity | undefined {
  return isJsonObject(obj) ? identify(obj, "", []) : undefined;
}

function identify(obj: JsonObject, where: string, issues: SnapshotIssue[]): ObjectIdentity | undefined {
  const kind = typeof obj.kind === "string" ? obj.kind : "";
  const meta = isJsonObject(obj.metadata) ? obj.metadata : {};
  const name = typeof meta.name === "string" ? meta.name : "";
  const namespace = typeof meta.namespace === "string" ? meta.namespace : "";
  if (kind === "" || name === "") {
    issues.push({ object: where, message: "has no kind or metadata.name; skipped" });
    return undefined;
  }
  const clusterScoped = kind === "Namespace" || kind === "Node";
  if (!clusterScoped && namespace === "") {
    // Objects read from the API server always carry their namespace; a user's
    // YAML without one would land in the kubectl context's namespace, which a
    // pure function cannot know.
    issues.push({ object: `${kind} ${name}`, message: "has no metadata.namespace; skipped" });
    return undefined;
  }
  return {
    key: `${apiGroup(obj.apiVersion)}/${kind}/${namespace}/${name}`,
    kind,
    namespace,
    name,
    label: clusterScoped ? `${kind} ${name}` : `${kind} ${namespace}/${name}`,
  };
}

function apiGroup(apiVersion: unknown): string {
  if (typeof apiVersion !== "string") return "";
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}

function labelsOf(obj: JsonObject, problems: FieldProblem[]): Readonly<Record<string, string>> {
  const meta = objectField(obj, "metadata", "", problems) ?? {};
  return stringMapField(meta, "labels", "metadata", problems);
}

function readService(obj: JsonObject, id: ObjectIdentity, problems: FieldProblem[]): ServiceObject {
  const spec = objectField(obj, "spec", "", problems) ?? {};
  const type = stringField(spec, "type", "spec", problems) ?? "ClusterIP";
  const clusterIP = stringField(spec, "clusterIP", "spec", problems);
  const listed = stringListField(spec, "clusterIPs", "spec", problems);
  const all = listed.length > 0 ? listed : clusterIP !== undefined ? [clusterIP] : [];
  const headless = clusterIP === "None" || all[0] === "None";
  const ports = objectListField(spec, "ports", "spec", problems).flatMap(({ item, field }) => {
    const port = integerField(item, "port", field, problems, PORT);
    if (port === undefined) {
      problems.push({ field: `${field}.port`, message: "is required; port skipped" });
      return [];
    }
    const target = item.targetPort;
    let targetPort: number | string = port;
    if (typeof target === "string" && target !== "")
      targetPort = /^[0-9]+$/.test(target) ? Number(target) : target;
    else if (typeof target === "number" && Number.isInteger(target)) targetPort = target;
    else if (target !== undefined && target !== null)
      problems.push({ field: `${field}.targetPort`, message: "must be a port number or name" });
    return [
      {
        name: stringField(item, "name", field, problems) ?? "",
        port,
        protocol: stringField(item, "protocol", field, problems) ?? "TCP",
        appProtocol: stringField(item, "appProtocol", field, problems),
        targetPort,
      },
    ];
  });
  return {
    namespace: id.namespace,
    name: id.name,
    type,
    headless,
    clusterIPs: type === "ExternalName" || headless ? [] : all.filter((ip) => ip !== "" && ip !== "None"),
    ports: ports.sort((a, b) => a.port - b.port || compareStrings(a.protocol, b.protocol)),
  };
}

function readEndpointSlice(
  obj: JsonObject,
  id: ObjectIdentity,
  problems: FieldProblem[],
): EndpointSliceObject {
  const meta = objectField(obj, "metadata", "", problems) ?? {};
  const labels = stringMapField(meta, "labels", "metadata", problems);
  const ports = objectListField(obj, "ports", "", problems).map(({ item, field }) => ({
    name: stringField(item, "name", field, problems) ?? "",
    port: integerField(item, "port", field, problems, PORT),
    protocol: stringField(item, "protocol", field, problems) ?? "TCP",
  }));
  const endpoints = objectListField(obj, "endpoints", "", problems).flatMap(({ item, field }) => {
    const addresses = stringListField(item, "addresses", field, problems);
    const address = addresses[0];
    if (address === undefined) {
      problems.push({ field: `${field}.addresses`, message: "is empty; endpoint skipped" });
      return [];
    }
    const conditions = objectField(item, "conditions", field, problems) ?? {};
    const cf = `${field}.conditions`;
    // EndpointConditions: an unknown ready state counts as ready, an unknown
    // serving state as equal to ready, an unknown terminating state as false.
    const ready = booleanField(conditions, "ready", cf, problems) ?? true;
    const targetRef = objectField(item, "targetRef", field, problems);
    const podName =
      targetRef && targetRef.kind === "Pod"
        ? stringField(targetRef, "name", `${field}.targetRef`, problems)
        : undefined;
    const podNamespace =
      (targetRef && stringField(targetRef, "namespace", `${field}.targetRef`, problems)) ?? id.namespace;
    return [
      {
        address,
        ready,
        serving: booleanField(conditions, "serving", cf, problems) ?? ready,
        terminating: booleanField(conditions, "terminating", cf, problems) ?? false,
        nodeName: stringField(item, "nodeName", field, problems) ?? "",
        pod: podName ? objectKey(podNamespace, podName) : "",
      },
    ];
  });
  return {
    namespace: id.namespace,
    name: id.name,
    serviceName: labels[SERVICE_NAME_LABEL] ?? "",
    addressType: stringField(obj, "addressType", "", problems) ?? "IPv4",
    ports,
    endpoints,
  };
}

function readPod(obj: JsonObject, id: ObjectIdentity, problems: FieldProblem[]): PodObject {
  const spec = objectField(obj, "spec", "", problems) ?? {};
  const status = objectField(obj, "status", "", problems) ?? {};
  const podIPs = objectListField(status, "podIPs", "status", problems).flatMap(({ item, field }) => {
    const ip = stringField(item, "ip", field, problems);
    return ip ? [ip] : [];
  });
  const podIP = stringField(status, "podIP", "status", problems);
  return {
    namespace: id.namespace,
    name: id.name,
    nodeName: stringField(spec, "nodeName", "spec", problems) ?? "",
    hostNetwork: booleanField(spec, "hostNetwork", "spec", problems) ?? false,
    ips: podIPs.length > 0 ? podIPs : podIP ? [podIP] : [],
    labels: labelsOf(obj, problems),
    phase: stringField(status, "phase", "status", problems) ?? "",
  };
}

function readReferenceGrant(
  obj: JsonObject,
  id: ObjectIdentity,
  problems: FieldProblem[],
): ReferenceGrantObject {
  const spec = objectField(obj, "spec", "", problems) ?? {};
  return {
    namespace: id.namespace,
    name: id.name,
    from: objectListField(spec, "from", "spec", problems).map(({ item, field }) => ({
      group: stringField(item, "group", field, problems) ?? "",
      kind: stringField(item, "kind", field, problems) ?? "",
      namespace: stringField(item, "namespace", field, problems) ?? "",
    })),
    to: objectListField(spec, "to", "spec", problems).map(({ item, field }) => ({
      group: stringField(item, "group", field, problems) ?? "",
      kind: stringField(item, "kind", field, problems) ?? "",
      name: stringField(item, "name", field, problems) ?? "",
    })),
  };
}

function byKey<T>(a: readonly [string, T], b: readonly [string, T]): number {
  return compareStrings(a[0], b[0]);
}

function sortedEntries<T>(map: ReadonlyMap<string, T>): [string, T][] {
  return [...map].sort(byKey);
}

function sortedValues<T>(map: ReadonlyMap<string, T>): T[] {
  return sortedEntries(map).map(([, v]) => v);
}
