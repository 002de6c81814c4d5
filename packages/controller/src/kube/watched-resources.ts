// What the controller watches, and how to list each kind. List results of the
// typed client are class instances with Date fields, while watch events are
// plain JSON; `toPlainObject` makes both the same plain JSON the snapshot
// builder reads, with kind and apiVersion stamped (list items carry neither).
// ReferenceGrants are read at v1beta1, the version every Gateway API release
// since v0.6 serves (v1 only since v1.5); they do not change routing in the
// mesh (GEP-1294), so the older version loses nothing.
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";

export interface WatchedResource {
  kind: string;
  apiVersion: string;
  /** Watch path, cluster-wide. */
  path: string;
  list(kc: KubeConfig): () => Promise<KubernetesListObject<KubernetesObject>>;
}

function custom(group: string, version: string, plural: string, kind: string): WatchedResource {
  return {
    kind,
    apiVersion: `${group}/${version}`,
    path: `/apis/${group}/${version}/${plural}`,
    list: (kc) => {
      const api = kc.makeApiClient(CustomObjectsApi);
      return async () =>
        (await api.listClusterCustomObject({
          group,
          version,
          plural,
        })) as KubernetesListObject<KubernetesObject>;
    },
  };
}

export const WATCHED_RESOURCES: readonly WatchedResource[] = [
  {
    kind: "Namespace",
    apiVersion: "v1",
    path: "/api/v1/namespaces",
    list: (kc) => {
      const api = kc.makeApiClient(CoreV1Api);
      return () => api.listNamespace();
    },
  },
  {
    kind: "Service",
    apiVersion: "v1",
    path: "/api/v1/services",
    list: (kc) => {
      const api = kc.makeApiClient(CoreV1Api);
      return () => api.listServiceForAllNamespaces();
    },
  },
  {
    kind: "Pod",
    apiVersion: "v1",
    path: "/api/v1/pods",
    list: (kc) => {
      const api = kc.makeApiClient(CoreV1Api);
      return () => api.listPodForAllNamespaces();
    },
  },
  {
    kind: "Node",
    apiVersion: "v1",
    path: "/api/v1/nodes",
    list: (kc) => {
      const api = kc.makeApiClient(CoreV1Api);
      return () => api.listNode();
    },
  },
  {
    kind: "EndpointSlice",
    apiVersion: "discovery.k8s.io/v1",
    path: "/apis/discovery.k8s.io/v1/endpointslices",
    list: (kc) => {
      const api = kc.makeApiClient(DiscoveryV1Api);
      return () => api.listEndpointSliceForAllNamespaces();
    },
  },
  custom("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute"),
  custom("gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute"),
  custom("gateway.networking.k8s.io", "v1beta1", "referencegrants", "ReferenceGrant"),
];

/**
 * Canaries (our own CRD). Watched only when the CRD is installed (main.ts
 * asks the API first), so a cluster without it still gets tables.
 */
export const CANARY_RESOURCE: WatchedResource = custom("trellis.dev", "v1alpha1", "canaries", "Canary");

export function toPlainObject(resource: WatchedResource, obj: KubernetesObject): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(obj)) as Record<string, unknown>;
  plain.kind = resource.kind;
  plain.apiVersion = resource.apiVersion;
  // managedFields is often the largest part of an object and nothing here
  // reads it; the informer's own cache keeps the original.
  const meta = plain.metadata;
  if (typeof meta === "object" && meta !== null) delete (meta as Record<string, unknown>).managedFields;
  return plain;
}
