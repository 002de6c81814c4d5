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

interface Identity {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly label: string;
}

export function buildSnapshot(objects: readonly unknown[]): Snapshot {
  const issues: SnapshotIssue[] = [];
  const namespaces = new Map<string, NamespaceObject>();
  const services = new Map<string, ServiceObject>();
  const slices = new Map<string, EndpointSliceObject>();
  const pods = new Map<string, PodObject>();
  const nodes = new Map<string, NodeObject>();
  const routes = new Map<string, RouteObject>();
  const grants = new Map<string, ReferenceGrantObject>();

  const flat: { obj: unknown; where: string }[] = [];
  objects.forEach((obj, index) => {
    // `kubectl get -o yaml` wraps objects in a List.
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

  for (const { obj, where } of flat) {
    if (!isJsonObject(obj)) {
      issues.push({ object: where, message: `is ${describeJsonType(obj)}, not a Kubernetes object` });
      continue;
    }
    const id = identify(obj, where, issues);
    if (!id) continue;
    const problems: FieldProblem[] = [];
    const store = <T>(map: Map<string, T>, key: string, value: T) => {
      if (map.has(key)) issues.push({ object: id.label, message: "appears twice; the last one is used" });
      map.set(key, value);
    };
    const group = apiGroup(obj.apiVersion);
    switch (`${group}/${id.kind}`) {
      case "/Namespace":
        store(namespaces, id.name, { name: id.name, labels: labelsOf(obj, problems) });
        break;
      case "/Service":
        store(services, objectKey(id.namespace, id.name), readService(obj, id, problems));
        break;
      case "discovery.k8s.io/EndpointSlice":
        store(slices, objectKey(id.namespace, id.name), readEndpointSlice(obj, id, problems));
        break;
      case "/Pod":
        store(pods, objectKey(id.namespace, id.name), readPod(obj, id, problems));
        break;
      case "/Node":
        store(nodes, id.name, { name: id.name });
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
        store(routes, `${kind}/${objectKey(id.namespace, id.name)}`, route);
        break;
      }
      case "gateway.networking.k8s.io/ReferenceGrant":
        store(grants, objectKey(id.namespace, id.name), readReferenceGrant(obj, id, problems));
        break;
      default:
        issues.push({
          object: id.label,
          message: `kind ${obj.apiVersion}/${id.kind} is not watched by Trellis`,
        });
        continue;
    }
    for (const p of problems) issues.push({ object: id.label, message: `${p.field}: ${p.message}` });
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

function identify(obj: JsonObject, where: string, issues: SnapshotIssue[]): Identity | undefined {
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
  return { kind, namespace, name, label: clusterScoped ? `${kind} ${name}` : `${kind} ${namespace}/${name}` };
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

function readService(obj: JsonObject, id: Identity, problems: FieldProblem[]): ServiceObject {
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

function readEndpointSlice(obj: JsonObject, id: Identity, problems: FieldProblem[]): EndpointSliceObject {
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

function readPod(obj: JsonObject, id: Identity, problems: FieldProblem[]): PodObject {
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

function readReferenceGrant(obj: JsonObject, id: Identity, problems: FieldProblem[]): ReferenceGrantObject {
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
