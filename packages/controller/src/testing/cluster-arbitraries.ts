// fast-check arbitraries for whole clusters as Kubernetes JSON: small name and
// address pools so routes, parents, backends and endpoints collide often, and
// a mix of valid and invalid route content. Object keys are unique, so input
// order is the only thing shuffles change.
import fc from "fast-check";

const NAMESPACES = ["ns-a", "ns-b", "ns-c"];
const NODES = ["node-1", "node-2"];
const SERVICES = ["s0", "s1", "s2", "s3"];
const PORTS = [
  { name: "http", port: 80, targetPort: 8080 },
  { name: "grpc", port: 81, targetPort: "grpc-port" },
  { name: "", port: 82, targetPort: 8082 },
  { name: "tcp-db", port: 83, targetPort: 5432 },
];
const TIMES = ["2025-01-01T00:00:00Z", "2025-01-01T00:00:01Z", "2025-01-02T00:00:00Z", undefined];

/** One of the values, with explicit odds (constantFrom's bias favours the ends of its list). */
function weighted<T>(...choices: readonly (readonly [number, T])[]): fc.Arbitrary<T> {
  return fc.oneof(...choices.map(([weight, value]) => ({ weight, arbitrary: fc.constant(value) })));
}

// Biased towards values that bind and resolve, so most runs program routes.
const namespaceName = weighted([6, "ns-a"], [1, "ns-b"], [1, "ns-c"]);
const serviceName = weighted([3, "s0"], [3, "s1"], [3, "s2"], [3, "s3"], [1, "missing"]);
const portNumber = weighted([6, 80], [2, 81], [1, 82], [1, 83], [1, 99]);
const sometimes = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { freq: 3, nil: undefined });
const withoutUndefined = (obj: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined));

const parentRef = fc
  .record({
    group: weighted<string | undefined>(
      [24, ""],
      [2, "core"],
      [1, "gateway.networking.k8s.io"],
      [1, "example.com"],
      [1, undefined],
    ),
    kind: weighted([8, "Service"], [1, "Gateway"]),
    name: serviceName,
    namespace: sometimes(weighted([3, "ns-a"], [1, "ns-b"])),
    port: fc.option(portNumber, { freq: 4, nil: undefined }),
    sectionName: fc.option(weighted([2, "http"], [1, "grpc"], [1, "nope"]), { freq: 6, nil: undefined }),
  })
  .map(withoutUndefined);

const backendRef = fc
  .record({
    group: weighted<string | undefined>([6, undefined], [2, ""], [1, "core"], [1, "example.com"]),
    kind: weighted<string | undefined>([6, undefined], [2, "Service"], [1, "Widget"]),
    name: serviceName,
    namespace: sometimes(namespaceName),
    port: fc.option(portNumber, { freq: 8, nil: undefined }),
    weight: fc.option(fc.integer({ min: 0, max: 5 }), { freq: 2, nil: undefined }),
  })
  .map(withoutUndefined);

const pathMatch = fc.record({
  type: fc.constantFrom("Exact", "PathPrefix", "PathPrefix", "PathPrefix", "RegularExpression", "Glob"),
  value: fc.constantFrom("/", "/a", "/a/", "/a/b", "/ab", "/", "/a", "a", "/a(", "/[a-z]+"),
});

const headerMatch = fc.record({
  type: fc.constantFrom("Exact", "RegularExpression"),
  name: fc.constantFrom("x-user", "X-User", "x-canary", "x-user", "x-canary", "bad header"),
  value: fc.constantFrom("heart", "h.*", "heart", "heart", "("),
});

const httpMatch = fc.record(
  {
    path: pathMatch,
    method: fc.constantFrom("GET", "POST", "FETCH"),
    headers: fc.array(headerMatch, { maxLength: 2 }),
    queryParams: fc.array(headerMatch, { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

const grpcMatch = fc.record(
  {
    method: fc.record(
      {
        type: fc.constantFrom("Exact", "RegularExpression"),
        service: fc.constantFrom("ColorService", "pkg.Color", "Color.*", "bad name"),
        method: fc.constantFrom("Center", "Edge", "E.*"),
      },
      { requiredKeys: [] },
    ),
    headers: fc.array(headerMatch, { maxLength: 2 }),
  },
  { requiredKeys: [] },
);

const filter = fc.constantFrom<Record<string, unknown>>(
  { type: "RequestHeaderModifier", requestHeaderModifier: { set: [{ name: "x-a", value: "1" }] } },
  { type: "ResponseHeaderModifier", responseHeaderModifier: { remove: ["x-b"] } },
  { type: "RequestRedirect", requestRedirect: { scheme: "https", statusCode: 301 } },
  { type: "URLRewrite", urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/v2" } } },
  { type: "RequestMirror", requestMirror: { backendRef: { name: "s1", port: 80 }, percent: 50 } },
  { type: "ExtensionRef", extensionRef: { group: "x", kind: "Y", name: "z" } },
  { type: "CORS", cors: {} },
);

const duration = fc.constantFrom("1s", "300ms", "0s", "2h", "1s", "300ms", "1.5s", "soon");

function rule(kind: "HTTPRoute" | "GRPCRoute"): fc.Arbitrary<Record<string, unknown>> {
  const common = {
    backendRefs: fc.array(backendRef, { maxLength: 3 }),
    filters: fc.oneof(
      { weight: 3, arbitrary: fc.constant([]) },
      { weight: 1, arbitrary: fc.array(filter, { maxLength: 2 }) },
    ),
  };
  if (kind === "GRPCRoute") {
    return fc.record({ ...common, matches: fc.array(grpcMatch, { maxLength: 2 }) }, { requiredKeys: [] });
  }
  return fc.record(
    {
      ...common,
      matches: fc.array(httpMatch, { maxLength: 2 }),
      timeouts: fc.record({ request: duration, backendRequest: duration }, { requiredKeys: [] }),
      retry: fc.record(
        {
          codes: fc.array(fc.constantFrom(500, 503, 504, 200), { maxLength: 2 }),
          attempts: fc.nat(3),
          backoff: duration,
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  );
}

function route(index: number) {
  return fc.constantFrom("HTTPRoute" as const, "GRPCRoute" as const).chain((kind) =>
    fc
      .record({
        namespace: namespaceName,
        created: fc.constantFrom(...TIMES),
        generation: fc.integer({ min: 1, max: 5 }),
        parentRefs: fc.array(parentRef, { minLength: 1, maxLength: 3 }),
        rules: fc.array(rule(kind), { maxLength: 3 }),
      })
      .map((r) => ({
        apiVersion: "gateway.networking.k8s.io/v1",
        kind,
        metadata: {
          name: `r${index}`,
          namespace: r.namespace,
          generation: r.generation,
          ...(r.created ? { creationTimestamp: r.created } : {}),
        },
        spec: { parentRefs: r.parentRefs, rules: r.rules },
      })),
  );
}

const endpoint = fc.record({
  ip: fc.constantFrom("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.1"),
  node: fc.constantFrom(...NODES),
  ready: fc.constantFrom(true, false, undefined),
  serving: fc.constantFrom(true, false, undefined),
  terminating: fc.constantFrom(true, false, undefined),
});

function service(index: number) {
  return fc
    .record({
      // Routes in the other namespaces make consumer routes and cross-namespace backends.
      namespace: fc.constant("ns-a"),
      type: weighted([8, "ClusterIP"], [1, "headless"], [1, "ExternalName"]),
      ports: fc.subarray(PORTS.slice(1)).map((more) => [PORTS[0]!, ...more]),
      appProtocol: fc.constantFrom(undefined, "kubernetes.io/h2c", "http"),
      slices: fc.array(fc.array(endpoint, { maxLength: 3 }), { maxLength: 2 }),
      portNumbers: fc.constantFrom(8080, 9090),
    })
    .map((s) => {
      const name = SERVICES[index] ?? `s${index}`;
      const svc = {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name, namespace: s.namespace },
        spec:
          s.type === "ExternalName"
            ? { type: "ExternalName", externalName: "example.com" }
            : {
                type: "ClusterIP",
                clusterIP: s.type === "headless" ? "None" : `10.96.0.${index + 1}`,
                ports: s.ports.map((p, i) =>
                  i === 0 && s.appProtocol ? { ...p, appProtocol: s.appProtocol } : p,
                ),
              },
      };
      const slices = s.slices.map((endpoints, j) => ({
        apiVersion: "discovery.k8s.io/v1",
        kind: "EndpointSlice",
        metadata: {
          name: `${name}-${j}`,
          namespace: s.namespace,
          labels: { "kubernetes.io/service-name": name },
        },
        addressType: "IPv4",
        ports: s.ports.map((p) => ({
          name: p.name,
          port: typeof p.targetPort === "number" ? p.targetPort : s.portNumbers + j,
          protocol: "TCP",
        })),
        endpoints: endpoints.map((e) => ({
          addresses: [e.ip],
          nodeName: e.node,
          conditions: Object.fromEntries(
            Object.entries({ ready: e.ready, serving: e.serving, terminating: e.terminating }).filter(
              ([, v]) => v !== undefined,
            ),
          ),
        })),
      }));
      return [svc, ...slices];
    });
}

const pod = (index: number) =>
  fc
    .record({
      namespace: namespaceName,
      node: fc.constantFrom(...NODES),
      optOut: fc.boolean(),
      hostNetwork: fc.boolean(),
    })
    .map((p) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: `p${index}`,
        namespace: p.namespace,
        labels: p.optOut ? { "trellis.dev/capture": "disabled" } : {},
      },
      spec: { nodeName: p.node, ...(p.hostNetwork ? { hostNetwork: true } : {}) },
      status: { phase: "Running", podIP: `10.244.0.${index + 1}` },
    }));

/** A cluster: namespaces (randomly captured), nodes, services with slices, pods and routes. */
export const clusterArbitrary: fc.Arbitrary<unknown[]> = fc
  .record({
    captured: fc.subarray(NAMESPACES),
    services: fc.constant(SERVICES.length),
    pods: fc.integer({ min: 0, max: 5 }),
    routes: fc.integer({ min: 1, max: 5 }),
  })
  .chain(({ captured, services, pods, routes }) =>
    fc
      .tuple(
        fc.tuple(...Array.from({ length: services }, (_, i) => service(i))),
        fc.tuple(...Array.from({ length: pods }, (_, i) => pod(i))),
        fc.tuple(...Array.from({ length: routes }, (_, i) => route(i))),
      )
      .map(([svcs, podList, routeList]) => [
        ...NAMESPACES.map((name) => ({
          apiVersion: "v1",
          kind: "Namespace",
          metadata: { name, labels: captured.includes(name) ? { "trellis.dev/capture": "enabled" } : {} },
        })),
        ...NODES.map((name) => ({ apiVersion: "v1", kind: "Node", metadata: { name } })),
        ...svcs.flat(),
        ...podList,
        ...routeList,
      ]),
  );

/** Replaces random parts of the objects with arbitrary JSON (or drops them). */
export const corruptedClusterArbitrary: fc.Arbitrary<unknown[]> = clusterArbitrary.chain((objects) =>
  fc
    .tuple(
      ...objects.map((obj) =>
        fc.oneof(
          { weight: 6, arbitrary: fc.constant(obj) },
          { weight: 2, arbitrary: corruptOnce(obj) },
          { weight: 1, arbitrary: fc.anything() },
        ),
      ),
    )
    .chain((list) => fc.tuple(fc.constant(list), fc.array(fc.anything(), { maxLength: 2 })))
    .map(([list, extra]) => [...list, ...extra]),
);

function corruptOnce(obj: unknown): fc.Arbitrary<unknown> {
  const paths = jsonPaths(obj).filter((p) => p.length > 0);
  if (paths.length === 0) return fc.constant(obj);
  return fc.tuple(fc.constantFrom(...paths), fc.anything()).map(([path, value]) => setAt(obj, path, value));
}

function jsonPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push(...jsonPaths(v, [...prefix, i]));
    });
  } else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) out.push(...jsonPaths(v, [...prefix, k]));
  }
  return out;
}

function setAt(value: unknown, path: readonly (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const [head, ...rest] = path;
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? setAt(v, rest, replacement) : v));
  if (typeof value === "object" && value !== null && head !== undefined) {
    return { ...value, [head]: setAt((value as Record<string, unknown>)[head], rest, replacement) };
  }
  return value;
}

/** Fisher–Yates with a fast-check–supplied seed list, so shrinking stays deterministic. */
export function permute<T>(items: readonly T[], keys: readonly number[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (keys[i % Math.max(keys.length, 1)] ?? 0) % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
