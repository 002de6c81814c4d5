// Writes route status.parents through the /status subresource, only when
// mergeRouteParents says something changed. Each PATCH carries the
// resourceVersion it was computed from, so a concurrent writer (another
// controller on the same route) makes it fail with 409 instead of being
// overwritten; the next recompute then merges again.
import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { RouteStatus } from "../resolve/resolution.ts";
import { mergeRouteParents, readParents } from "../status/route-parent-status.ts";

const GROUP = "gateway.networking.k8s.io";
const PLURALS = { HTTPRoute: "httproutes", GRPCRoute: "grpcroutes" } as const;

export interface StatusWriteResult {
  patched: number;
  conflicts: number;
  errors: number;
}

export interface RouteObjectView {
  metadata?: { resourceVersion?: string; generation?: number };
  status?: unknown;
}

export function makeStatusWriter(kc: KubeConfig, log: Logger) {
  const api = kc.makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

  /** `current` looks up the route as last seen by the informer (plain JSON). */
  return async function writeStatuses(
    statuses: readonly RouteStatus[],
    current: (kind: string, namespace: string, name: string) => RouteObjectView | undefined,
  ): Promise<StatusWriteResult> {
    const result: StatusWriteResult = { patched: 0, conflicts: 0, errors: 0 };
    const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    for (const s of statuses) {
      const obj = current(s.kind, s.namespace, s.name);
      if (!obj?.metadata?.resourceVersion) continue;
      // A status computed from an older generation than the informer holds is
      // about to be replaced by the next recompute; writing it would flap.
      if ((obj.metadata.generation ?? 0) !== s.generation) continue;
      const parents = mergeRouteParents(readParents(obj.status), s.parents, now);
      if (!parents) continue;
      try {
        await api.patchNamespacedCustomObjectStatus(
          {
            group: GROUP,
            version: "v1",
            plural: PLURALS[s.kind],
            namespace: s.namespace,
            name: s.name,
            body: { metadata: { resourceVersion: obj.metadata.resourceVersion }, status: { parents } },
          },
          mergePatch,
        );
        result.patched++;
        log.info(
          { route: `${s.kind}/${s.namespace}/${s.name}`, parents: s.parents.length },
          "route status written",
        );
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        if (code === 409) {
          result.conflicts++;
        } else if (code !== 404) {
          result.errors++;
          log.warn(
            {
              route: `${s.kind}/${s.namespace}/${s.name}`,
              err: err instanceof Error ? err.message : String(err),
            },
            "route status write failed",
          );
        }
      }
    }
    return result;
  };
}
