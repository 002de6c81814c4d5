// A synthetic cluster as the API server would serve it: Namespaces, Nodes,
// Services with EndpointSlices and Pods, HTTPRoutes and GRPCRoutes. Seeded,
// so every run measures the same cluster.
//
// Shape (defaults: the issue's 1,000 services, 10,000 endpoints, 2,000 routes,
// 100 nodes): services spread over 50 namespaces (45 captured), 80 % HTTP and
// 20 % gRPC, each with a second "metrics" port; one pod per endpoint, placed
// at random on the nodes; two routes per service: a canary split to a sibling
// service, and a route with path/header (HTTP) or method (gRPC) matches,
// filters, timeouts and retries. One in twenty of the second routes is a
// consumer route from another namespace.

export interface ClusterShape {
  readonly services: number;
  readonly endpointsPerService: number;
  readonly routesPerService: 2;
  readonly nodes: number;
  readonly namespaces: number;
  readonly seed: number;
}

export const ISSUE_SHAPE: ClusterShape = {
  services: 1000,
  endpointsPerService: 10,
  routesPerService: 2,
  nodes: 100,
  namespaces: 50,
  seed: 42,
};

type Json = Record<string, unknown>;

/** mulberry32: small, fast, good enough for picking. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let resourceVersion = 1000;
const nextVersion = () => String(++resourceVersion);

function uid(rand: () => number): string {
  const hex = () =>
    Math.floor(rand() * 0x10000)
      .toString(16)
      .padStart(4, "0");
  return `${hex()}${hex()}-${hex()}-${hex()}-${hex()}-${hex()}${hex()}${hex()}`;
}

export interface SyntheticCluster {
  readonly objects: Json[];
  readonly routes: Json[];
  readonly slices: Json[];
  readonly counts: Record<string, number>;
}

export function syntheticCluster(shape: ClusterShape = ISSUE_SHAPE): SyntheticCluster {
  const rand = random(shape.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  const created = "2026-01-01T00:00:00Z";

  const namespaces = Array.from({ length: shape.namespaces }, (_, i) => `team-${String(i).padStart(2, "0")}`);
  const nodes = Array.from({ length: shape.nodes }, (_, i) => `node-${String(i).padStart(3, "0")}`);
  const objects: Json[] = [];
  const routes: Json[] = [];
  const slices: Json[] = [];

  namespaces.forEach((name, i) => {
    objects.push({
      apiVersion: "v1",
      kind: "Namespace",
      metadata: {
        name,
        uid: uid(rand),
        resourceVersion: nextVersion(),
        creationTimestamp: created,
        labels: {
          "kubernetes.io/metadata.name": name,
          ...(i % 10 !== 9 ? { "trellis.dev/capture": "enabled" } : {}),
        },
      },
      spec: { finalizers: ["kubernetes"] },
      status: { phase: "Active" },
    });
  });
  nodes.forEach((name, i) => {
    objects.push({
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name,
        uid: uid(rand),
        resourceVersion: nextVersion(),
        creationTimestamp: created,
        labels: {
          "kubernetes.io/hostname": name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
        },
      },
      spec: { podCIDR: `10.${128 + Math.floor(i / 256)}.${i % 256}.0/24` },
      status: {
        addresses: [
          { type: "InternalIP", address: `10.240.${Math.floor(i / 250)}.${(i % 250) + 1}` },
          { type: "Hostname", address: name },
        ],
        conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", lastHeartbeatTime: created }],
        capacity: { cpu: "16", memory: "64Gi", pods: "110" },
      },
    });
  });

  const perNamespace = Math.ceil(shape.services / shape.namespaces);
  interface Svc {
    ns: string;
    name: string;
    grpc: boolean;
  }
  const services: Svc[] = [];
  for (let i = 0; i < shape.services; i++) {
    const ns = namespaces[Math.floor(i / perNamespace)]!;
    services.push({ ns, name: `svc-${String(i % perNamespace).padStart(2, "0")}`, grpc: i % 5 === 4 });
  }
  const podIp = new Map<string, number>();
  services.forEach((s, i) => {
    const portName = s.grpc ? "grpc" : "http";
    objects.push({
      apiVersion: "v1",
      kind: "Service",
      metadata: {
        name: s.name,
        namespace: s.ns,
        uid: uid(rand),
        resourceVersion: nextVersion(),
        creationTimestamp: created,
        labels: { app: s.name, "app.kubernetes.io/part-of": s.ns },
      },
      spec: {
        type: "ClusterIP",
        clusterIP: `10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        clusterIPs: [`10.96.${Math.floor(i / 250)}.${(i % 250) + 1}`],
        ipFamilies: ["IPv4"],
        selector: { app: s.name },
        ports: [
          { name: portName, port: 80, protocol: "TCP", targetPort: 8080 },
          { name: "metrics", port: 9090, protocol: "TCP", targetPort: "metrics" },
        ],
        sessionAffinity: "None",
      },
      status: { loadBalancer: {} },
    });
    const endpoints: Json[] = [];
    for (let e = 0; e < shape.endpointsPerService; e++) {
      const node = pick(nodes);
      const nodeIndex = nodes.indexOf(node);
      const host = (podIp.get(node) ?? 1) + 1;
      podIp.set(node, host);
      const ip = `10.${128 + Math.floor(nodeIndex / 256)}.${nodeIndex % 256}.${host}`;
      const podName = `${s.name}-7d9f8c6b5-${uid(rand).slice(0, 5)}`;
      objects.push(pod(s, podName, node, ip, rand, created));
      endpoints.push({
        addresses: [ip],
        conditions: { ready: true, serving: true, terminating: false },
        nodeName: node,
        targetRef: { kind: "Pod", namespace: s.ns, name: podName, uid: uid(rand) },
      });
    }
    const slice: Json = {
      apiVersion: "discovery.k8s.io/v1",
      kind: "EndpointSlice",
      metadata: {
        name: `${s.name}-abcde`,
        namespace: s.ns,
        uid: uid(rand),
        resourceVersion: nextVersion(),
        creationTimestamp: created,
        labels: {
          "kubernetes.io/service-name": s.name,
          "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        },
        ownerReferences: [
          { apiVersion: "v1", kind: "Service", name: s.name, uid: uid(rand), controller: true },
        ],
      },
      addressType: "IPv4",
      ports: [
        { name: portName, port: 8080, protocol: "TCP" },
        { name: "metrics", port: 9100, protocol: "TCP" },
      ],
      endpoints,
    };
    objects.push(slice);
    slices.push(slice);
  });

  // Two routes per service: a canary to a sibling, and a match-heavy route.
  services.forEach((s, i) => {
    const siblings = services.filter((o) => o.ns === s.ns && o.grpc === s.grpc && o !== s);
    const sibling = siblings.length > 0 ? pick(siblings) : s;
    const other = siblings.length > 1 ? pick(siblings) : s;
    const canary = route(s, s.ns, `${s.name}-canary`, false, created, [
      {
        backendRefs: [
          { name: s.name, port: 80, weight: 90 },
          { name: sibling.name, port: 80, weight: 10 },
        ],
      },
    ]);
    // One in twenty match routes is a consumer route from another namespace.
    const consumer = i % 20 === 7;
    const routeNs = consumer ? namespaces[(namespaces.indexOf(s.ns) + 1) % namespaces.length]! : s.ns;
    const rules: Json[] = s.grpc
      ? [
          {
            matches: [{ method: { type: "Exact", service: "shop.v1.Cart", method: "Checkout" } }],
            backendRefs: [{ name: other.name, namespace: s.ns, port: 80 }],
          },
          {
            matches: [
              { method: { service: "shop.v1.Cart" }, headers: [{ name: "x-tenant", value: "beta" }] },
            ],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { set: [{ name: "x-route", value: "beta" }] },
              },
            ],
            backendRefs: [{ name: sibling.name, namespace: s.ns, port: 80 }],
          },
        ]
      : [
          {
            matches: [
              { path: { type: "PathPrefix", value: "/api/v2" } },
              { headers: [{ name: "x-canary", value: "always" }] },
            ],
            filters: [
              {
                type: "RequestHeaderModifier",
                requestHeaderModifier: { add: [{ name: "x-route", value: "v2" }] },
              },
            ],
            backendRefs: [{ name: other.name, namespace: s.ns, port: 80 }],
            timeouts: { request: "2s", backendRequest: "500ms" },
            retry: { codes: [502, 503], attempts: 2, backoff: "50ms" },
          },
          {
            matches: [{ path: { type: "Exact", value: "/healthz" }, method: "GET" }],
            backendRefs: [{ name: s.name, namespace: s.ns, port: 80 }],
          },
          {
            matches: [{ path: { type: "PathPrefix", value: "/static" } }],
            filters: [
              {
                type: "URLRewrite",
                urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/" } },
              },
            ],
            backendRefs: [{ name: sibling.name, namespace: s.ns, port: 80 }],
          },
        ];
    const matchRoute = route(
      s,
      routeNs,
      `${s.name}-${consumer ? "consumer" : "match"}`,
      consumer,
      created,
      rules,
    );
    for (const r of [canary, matchRoute]) {
      objects.push(r);
      routes.push(r);
    }
  });

  const counts: Record<string, number> = {};
  for (const o of objects) counts[String(o.kind)] = (counts[String(o.kind)] ?? 0) + 1;
  counts.Endpoint = slices.reduce((n, s) => n + (s.endpoints as unknown[]).length, 0);
  return { objects, routes, slices, counts };
}

function route(
  s: { ns: string; name: string; grpc: boolean },
  ns: string,
  name: string,
  consumer: boolean,
  created: string,
  rules: Json[],
): Json {
  const spec = {
    parentRefs: [
      { group: "", kind: "Service", name: s.name, port: 80, ...(consumer ? { namespace: s.ns } : {}) },
    ],
    rules,
  };
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: s.grpc ? "GRPCRoute" : "HTTPRoute",
    metadata: {
      name,
      namespace: ns,
      uid: `route-${ns}-${name}`,
      generation: 1,
      resourceVersion: nextVersion(),
      creationTimestamp: created,
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ spec }) },
    },
    spec,
    status: { parents: [] },
  };
}

function pod(
  s: { ns: string; name: string },
  name: string,
  node: string,
  ip: string,
  rand: () => number,
  created: string,
): Json {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: s.ns,
      uid: uid(rand),
      resourceVersion: nextVersion(),
      creationTimestamp: created,
      generateName: `${s.name}-7d9f8c6b5-`,
      labels: { app: s.name, "pod-template-hash": "7d9f8c6b5" },
      ownerReferences: [
        {
          apiVersion: "apps/v1",
          kind: "ReplicaSet",
          name: `${s.name}-7d9f8c6b5`,
          uid: "rs",
          controller: true,
        },
      ],
    },
    spec: {
      nodeName: node,
      serviceAccountName: "default",
      containers: [
        {
          name: "app",
          image: `registry.example.com/${s.ns}/${s.name}:1.4.2`,
          ports: [
            { name: "http", containerPort: 8080, protocol: "TCP" },
            { name: "metrics", containerPort: 9100, protocol: "TCP" },
          ],
          env: [
            { name: "SERVICE_NAME", value: s.name },
            { name: "LOG_LEVEL", value: "info" },
          ],
          resources: { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "256Mi" } },
          readinessProbe: { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 5 },
        },
      ],
    },
    status: {
      phase: "Running",
      hostIP: "10.240.0.1",
      podIP: ip,
      podIPs: [{ ip }],
      startTime: created,
      conditions: [
        { type: "Initialized", status: "True", lastTransitionTime: created },
        { type: "Ready", status: "True", lastTransitionTime: created },
        { type: "ContainersReady", status: "True", lastTransitionTime: created },
        { type: "PodScheduled", status: "True", lastTransitionTime: created },
      ],
      containerStatuses: [
        {
          name: "app",
          ready: true,
          restartCount: 0,
          image: `registry.example.com/${s.ns}/${s.name}:1.4.2`,
          started: true,
        },
      ],
    },
  };
}

/** The next version of a route: a canary step (weights move by 10) or, for match routes, another header value. */
export function changedRoute(route: Json, step: number): Json {
  const meta = route.metadata as Json;
  const spec = structuredClone(route.spec) as { rules: Json[] };
  const first = spec.rules[0]!;
  const refs = first.backendRefs as { weight?: number }[];
  if (refs.length === 2 && refs[0]?.weight !== undefined) {
    const w = 10 + ((step * 10) % 90);
    refs[0].weight = 100 - w;
    refs[1]!.weight = w;
  } else {
    first.filters = [
      {
        type: "RequestHeaderModifier",
        requestHeaderModifier: { set: [{ name: "x-step", value: String(step) }] },
      },
    ];
  }
  return {
    ...route,
    metadata: { ...meta, generation: Number(meta.generation) + 1, resourceVersion: nextVersion() },
    spec,
  };
}

/** The next version of an EndpointSlice: one endpoint flips between ready and terminating. */
export function changedSlice(slice: Json, step: number): Json {
  const endpoints = structuredClone(slice.endpoints) as {
    conditions: { ready: boolean; terminating: boolean };
  }[];
  const e = endpoints[step % endpoints.length]!;
  e.conditions = { ...e.conditions, ready: !e.conditions.ready, terminating: e.conditions.ready };
  return { ...slice, metadata: { ...(slice.metadata as Json), resourceVersion: nextVersion() }, endpoints };
}
