import { dirname } from "node:path";
import { describe, expect, it } from "vitest";
import {
  EnvError,
  type EnvInput,
  envReferences,
  kubernetesEnv,
  processEnv,
  serviceEnvVars,
} from "../../cluster/sim/env.ts";
import type { Container, Pod, Service } from "../../cluster/sim/k8s-types.ts";

const services: Service[] = [
  {
    metadata: { namespace: "default", name: "kubernetes" },
    spec: { clusterIP: "10.96.0.1", ports: [{ name: "https", port: 443, protocol: "TCP" }] },
  },
  {
    metadata: { namespace: "shop", name: "cart-api" },
    spec: { clusterIP: "10.96.0.20", ports: [{ name: "http", port: 80 }] },
  },
  { metadata: { namespace: "other", name: "foo" }, spec: { clusterIP: "10.96.0.30", ports: [{ port: 80 }] } },
  { metadata: { namespace: "shop", name: "headless" }, spec: { clusterIP: "None", ports: [{ port: 80 }] } },
];

const pod = (container: Container, extra: Partial<Pod["spec"]> = {}): Pod => ({
  metadata: { name: "web-1", namespace: "shop", uid: "uid-1", labels: { app: "web" } },
  spec: { nodeName: "n1", serviceAccountName: "sa", containers: [container], ...extra },
});

function input(
  container: Container,
  extra: Partial<EnvInput> = {},
  podExtra: Partial<Pod["spec"]> = {},
): EnvInput {
  return {
    pod: pod(container, podExtra),
    container,
    image: { entrypoint: ["x"], cmd: [] },
    services,
    facts: { podIPs: ["10.244.1.5"], hostIPs: ["10.240.0.11"] },
    allocatable: { cpu: "8", memory: "16Gi", "ephemeral-storage": "100Gi" },
    configMaps: new Map([["cfg", { metadata: { name: "cfg" }, data: { LEVEL: "debug", "bad key": "x" } }]]),
    secrets: new Map([
      ["sec", { metadata: { name: "sec" }, data: { TOKEN: Buffer.from("s3cret").toString("base64") } }],
    ]),
    hostname: "web-1",
    box: { boxId: "box1", node: "n1" },
    ...extra,
  };
}

describe("kubernetesEnv", () => {
  it("resolves values, fieldRefs, configMap and secret keys, with $(VAR) expansion in order", () => {
    const c: Container = {
      name: "app",
      env: [
        { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        { name: "POD_UID", valueFrom: { fieldRef: { fieldPath: "metadata.uid" } } },
        { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
        { name: "HOST_IP", valueFrom: { fieldRef: { fieldPath: "status.hostIP" } } },
        { name: "NODE", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } },
        { name: "APP", valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
        { name: "LEVEL", valueFrom: { configMapKeyRef: { name: "cfg", key: "LEVEL" } } },
        { name: "TOKEN", valueFrom: { secretKeyRef: { name: "sec", key: "TOKEN" } } },
        { name: "URL", value: "http://$(POD_IP):8080/$(LATER)" },
        { name: "LATER", value: "x" },
        { name: "CART", value: "$(CART_API_SERVICE_HOST)" },
        { name: "CPU", valueFrom: { resourceFieldRef: { resource: "limits.cpu" } } },
      ],
    };
    const env = kubernetesEnv(input(c));
    expect(env).toMatchObject({
      POD_NAME: "web-1",
      POD_NAMESPACE: "shop",
      POD_UID: "uid-1",
      POD_IP: "10.244.1.5",
      HOST_IP: "10.240.0.11",
      NODE: "n1",
      APP: "web",
      LEVEL: "debug",
      TOKEN: "s3cret",
      URL: "http://10.244.1.5:8080/$(LATER)",
      CART: "10.96.0.20",
      CPU: "8",
    });
  });

  it("adds service links for the pod's namespace and always for kubernetes", () => {
    const env = kubernetesEnv(input({ name: "app" }));
    expect(env.KUBERNETES_SERVICE_HOST).toBe("10.96.0.1");
    expect(env.KUBERNETES_SERVICE_PORT).toBe("443");
    expect(env.KUBERNETES_SERVICE_PORT_HTTPS).toBe("443");
    expect(env.KUBERNETES_PORT).toBe("tcp://10.96.0.1:443");
    expect(env.CART_API_SERVICE_HOST).toBe("10.96.0.20");
    expect(env.FOO_SERVICE_HOST).toBeUndefined();
    expect(env.HEADLESS_SERVICE_HOST).toBeUndefined();
    const noLinks = kubernetesEnv(input({ name: "app" }, {}, { enableServiceLinks: false }));
    expect(noLinks.CART_API_SERVICE_HOST).toBeUndefined();
    expect(noLinks.KUBERNETES_SERVICE_HOST).toBe("10.96.0.1");
  });

  it("lets container env win over service links", () => {
    const env = kubernetesEnv(input({ name: "app", env: [{ name: "KUBERNETES_SERVICE_HOST", value: "x" }] }));
    expect(env.KUBERNETES_SERVICE_HOST).toBe("x");
  });

  it("imports envFrom with prefix and skips invalid names", () => {
    const env = kubernetesEnv(
      input({
        name: "app",
        envFrom: [{ configMapRef: { name: "cfg" }, prefix: "CFG_" }, { secretRef: { name: "sec" } }],
      }),
    );
    expect(env.CFG_LEVEL).toBe("debug");
    expect(env.TOKEN).toBe("s3cret");
    expect(Object.keys(env).some((k) => k.includes(" "))).toBe(false);
  });

  it("fails for missing references unless optional", () => {
    const missing: Container = {
      name: "app",
      env: [{ name: "X", valueFrom: { configMapKeyRef: { name: "nope", key: "k" } } }],
    };
    expect(() => kubernetesEnv(input(missing, { configMaps: new Map([["nope", null]]) }))).toThrow(EnvError);
    const optional: Container = {
      name: "app",
      env: [{ name: "X", valueFrom: { secretKeyRef: { name: "sec", key: "absent", optional: true } } }],
    };
    expect(kubernetesEnv(input(optional)).X).toBeUndefined();
    expect(() =>
      kubernetesEnv(
        input({
          name: "app",
          env: [{ name: "X", valueFrom: { secretKeyRef: { name: "sec", key: "absent" } } }],
        }),
      ),
    ).toThrow(/couldn't find key absent in Secret sec/);
  });

  it("lists what must be fetched", () => {
    const refs = envReferences({
      name: "app",
      envFrom: [{ configMapRef: { name: "a" } }],
      env: [{ name: "X", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }],
    });
    expect([...refs.configMaps]).toEqual(["a"]);
    expect([...refs.secrets]).toEqual(["s"]);
  });
});

describe("processEnv", () => {
  it("adds PATH with the node binary dir, HOSTNAME and the box markers", () => {
    const env = processEnv(input({ name: "app" }));
    expect(env.PATH?.split(":")[0]).toBe(dirname(process.execPath));
    expect(env.HOSTNAME).toBe("web-1");
    expect(env.TRELLIS_BOX).toBe("box1");
    expect(env.TRELLIS_NODE).toBe("n1");
    expect(env.TRELLIS_POD_UID).toBe("uid-1");
    expect(env.TRELLIS_CONTAINER).toBe("app");
  });

  it("does not let a pod override the box markers", () => {
    const env = processEnv(input({ name: "app", env: [{ name: "TRELLIS_POD_UID", value: "fake" }] }));
    expect(env.TRELLIS_POD_UID).toBe("uid-1");
  });
});

describe("serviceEnvVars", () => {
  it("produces docker-link variables", () => {
    expect(
      serviceEnvVars({
        metadata: { namespace: "a", name: "redis-master" },
        spec: { clusterIP: "10.0.0.11", ports: [{ name: "redis", port: 6379, protocol: "TCP" }] },
      }),
    ).toEqual({
      REDIS_MASTER_SERVICE_HOST: "10.0.0.11",
      REDIS_MASTER_SERVICE_PORT: "6379",
      REDIS_MASTER_SERVICE_PORT_REDIS: "6379",
      REDIS_MASTER_PORT: "tcp://10.0.0.11:6379",
      REDIS_MASTER_PORT_6379_TCP: "tcp://10.0.0.11:6379",
      REDIS_MASTER_PORT_6379_TCP_PROTO: "tcp",
      REDIS_MASTER_PORT_6379_TCP_PORT: "6379",
      REDIS_MASTER_PORT_6379_TCP_ADDR: "10.0.0.11",
    });
  });
});
