// A container's environment, as kubelet builds it (makeEnvironmentVariables),
// plus what the runtime and the cluster-in-a-box add. Pure: ConfigMaps and
// Secrets are fetched by the caller (see envReferences) and passed in.
import { dirname } from "node:path";
import type { ImageSpec } from "../images.ts";
import { expandVars } from "./command.ts";
import {
  type NodeAllocatable,
  type PodRuntimeFacts,
  resolveFieldRef,
  resolveResourceFieldRef,
} from "./downward-api.ts";
import { serviceClusterIPs } from "./hosts-file.ts";
import type { ConfigMap, Container, Pod, Secret, Service } from "./k8s-types.ts";

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export type EnvReferences = { configMaps: Set<string>; secrets: Set<string> };

/** The ConfigMaps and Secrets a container's env refers to. */
export function envReferences(container: Container): EnvReferences {
  const refs: EnvReferences = { configMaps: new Set(), secrets: new Set() };
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef?.name) refs.configMaps.add(from.configMapRef.name);
    if (from.secretRef?.name) refs.secrets.add(from.secretRef.name);
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom?.configMapKeyRef?.name) refs.configMaps.add(e.valueFrom.configMapKeyRef.name);
    if (e.valueFrom?.secretKeyRef?.name) refs.secrets.add(e.valueFrom.secretKeyRef.name);
  }
  return refs;
}

function envName(serviceName: string): string {
  return serviceName.toUpperCase().replace(/-/g, "_");
}

/** Docker-link style variables for one Service (FromServices in kubelet's envvars package). */
export function serviceEnvVars(svc: Service): Record<string, string> {
  const ip = serviceClusterIPs(svc)[0];
  const ports = svc.spec.ports ?? [];
  const first = ports[0];
  if (!ip || !first || !svc.metadata.name) return {};
  const name = envName(svc.metadata.name);
  const out: Record<string, string> = {
    [`${name}_SERVICE_HOST`]: ip,
    [`${name}_SERVICE_PORT`]: String(first.port),
  };
  for (const p of ports) {
    if (p.name) out[`${name}_SERVICE_PORT_${envName(p.name)}`] = String(p.port);
  }
  const host = ip.includes(":") ? `[${ip}]` : ip;
  out[`${name}_PORT`] = `${(first.protocol ?? "TCP").toLowerCase()}://${host}:${first.port}`;
  for (const p of ports) {
    const proto = (p.protocol ?? "TCP").toUpperCase();
    const prefix = `${name}_PORT_${p.port}_${proto}`;
    out[prefix] = `${proto.toLowerCase()}://${host}:${p.port}`;
    out[`${prefix}_PROTO`] = proto.toLowerCase();
    out[`${prefix}_PORT`] = String(p.port);
    out[`${prefix}_ADDR`] = ip;
  }
  return out;
}

/** Service links: the pod namespace's Services (if enabled) and always default/kubernetes. */
export function serviceLinkEnv(pod: Pod, services: readonly Service[]): Record<string, string> {
  const chosen = new Map<string, Service>();
  const enabled = pod.spec.enableServiceLinks !== false;
  for (const svc of services) {
    const { name, namespace } = svc.metadata;
    if (!name || serviceClusterIPs(svc).length === 0) continue;
    if (namespace === pod.metadata.namespace && enabled) chosen.set(name, svc);
  }
  const master = services.find((s) => s.metadata.namespace === "default" && s.metadata.name === "kubernetes");
  if (master && !chosen.has("kubernetes")) chosen.set("kubernetes", master);
  const out: Record<string, string> = {};
  for (const svc of chosen.values()) Object.assign(out, serviceEnvVars(svc));
  return out;
}

export type EnvInput = {
  pod: Pod;
  container: Container;
  image: ImageSpec;
  services: readonly Service[];
  facts: PodRuntimeFacts;
  allocatable: NodeAllocatable;
  /** Fetched objects by name; null = does not exist. */
  configMaps: ReadonlyMap<string, ConfigMap | null>;
  secrets: ReadonlyMap<string, Secret | null>;
  hostname: string;
  box: { boxId: string; node: string };
};

export class EnvError extends Error {
  override readonly name = "EnvError";
}

function secretValue(b64: string): string {
  return Buffer.from(b64, "base64").toString("utf8");
}

const envVarName = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

/** The container's env as Kubernetes defines it (no runtime additions). */
export function kubernetesEnv(input: EnvInput): Record<string, string> {
  const { pod, container } = input;
  const serviceEnv = serviceLinkEnv(pod, input.services);
  const env = new Map<string, string>();

  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? "";
    if (from.configMapRef) {
      const cm = input.configMaps.get(from.configMapRef.name);
      if (!cm) {
        if (from.configMapRef.optional) continue;
        throw new EnvError(`configmap "${from.configMapRef.name}" not found`);
      }
      for (const [k, v] of Object.entries(cm.data ?? {}))
        if (envVarName.test(prefix + k)) env.set(prefix + k, v);
    }
    if (from.secretRef) {
      const s = input.secrets.get(from.secretRef.name);
      if (!s) {
        if (from.secretRef.optional) continue;
        throw new EnvError(`secret "${from.secretRef.name}" not found`);
      }
      for (const [k, v] of Object.entries(s.data ?? {})) {
        if (envVarName.test(prefix + k)) env.set(prefix + k, secretValue(v));
      }
    }
  }

  const lookup = (name: string) => env.get(name) ?? serviceEnv[name];
  for (const e of container.env ?? []) {
    let value: string | undefined;
    const from = e.valueFrom;
    if (!from) {
      value = expandVars(e.value ?? "", lookup);
    } else if (from.fieldRef) {
      value = resolveFieldRef(pod, from.fieldRef, input.facts);
      if (value === undefined) throw new EnvError(`unsupported fieldRef ${from.fieldRef.fieldPath}`);
    } else if (from.resourceFieldRef) {
      const target = from.resourceFieldRef.containerName
        ? [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find(
            (c) => c.name === from.resourceFieldRef?.containerName,
          )
        : container;
      value = resolveResourceFieldRef(target, from.resourceFieldRef, input.allocatable);
    } else if (from.configMapKeyRef) {
      const ref = from.configMapKeyRef;
      const cm = input.configMaps.get(ref.name ?? "");
      value = cm?.data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new EnvError(
          cm ? `couldn't find key ${ref.key} in ConfigMap ${ref.name}` : `configmap "${ref.name}" not found`,
        );
      }
    } else if (from.secretKeyRef) {
      const ref = from.secretKeyRef;
      const s = input.secrets.get(ref.name ?? "");
      const b64 = s?.data?.[ref.key];
      if (b64 === undefined) {
        if (ref.optional) continue;
        throw new EnvError(
          s ? `couldn't find key ${ref.key} in Secret ${ref.name}` : `secret "${ref.name}" not found`,
        );
      }
      value = secretValue(b64);
    }
    if (value !== undefined) env.set(e.name, value);
  }

  for (const [k, v] of Object.entries(serviceEnv)) if (!env.has(k)) env.set(k, v);
  return Object.fromEntries(env);
}

/** The full process environment: image env < Kubernetes env < box identity. */
export function processEnv(input: EnvInput): Record<string, string> {
  const nodeBinDir = dirname(process.execPath);
  const base: Record<string, string> = {
    PATH: `${nodeBinDir}:${DEFAULT_PATH}`,
    HOSTNAME: input.hostname,
    ...input.image.env,
  };
  return {
    ...base,
    ...kubernetesEnv(input),
    // `down` kills every process carrying TRELLIS_BOX; the simulator finds
    // leftovers of its pods by TRELLIS_NODE + TRELLIS_POD_UID.
    TRELLIS_BOX: input.box.boxId,
    TRELLIS_NODE: input.box.node,
    TRELLIS_POD_UID: input.pod.metadata.uid ?? "",
    TRELLIS_CONTAINER: input.container.name,
  };
}
