// Writes route status.parents through the /status subresource, only when
// mergeRouteParents says something changed (GAMMA.md "Status").
//
// - Each PATCH carries the resourceVersion its merge was computed from, so a
//   concurrent writer (another controller on the same route) makes it fail
//   with 409 instead of being overwritten; the informer then delivers the
//   newer object and the next pass merges again.
// - Our own PATCH reaches the informer a little later than its response. Until
//   then the informer still shows the status from before the write, and a pass
//   in between would PATCH the same change again (and get 409). So the writer
//   remembers what each write produced and uses it while the informer lags.
// - Leadership is checked before every PATCH: a replica that lost the lease
//   mid-pass stops at once.
// - A (status, route object) pair that was found in agreement is not merged
//   again: with thousands of routes most passes then cost a lookup each.
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

/** The parts of a route object the writer reads (plain JSON as the informer holds it). */
export interface RouteObjectView {
  readonly metadata?: { readonly resourceVersion?: string; readonly generation?: number };
  readonly status?: unknown;
}

export type RouteLookup = (kind: string, namespace: string, name: string) => RouteObjectView | undefined;

export interface StatusWriter {
  write(
    statuses: readonly RouteStatus[],
    current: RouteLookup,
    stillLeader: () => boolean,
  ): Promise<StatusWriteResult>;
}

interface OwnWrite {
  /** resourceVersion the informer showed when we wrote. */
  readonly from: string;
  /** resourceVersion and status the API answered with. */
  readonly to: string;
  readonly status: unknown;
}

export function makeStatusWriter(kc: KubeConfig, log: Logger): StatusWriter {
  const api = kc.makeApiClient(CustomObjectsApi);
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const ownWrites = new Map<string, OwnWrite>();
  const inAgreement = new WeakMap<RouteStatus, RouteObjectView>();

  return {
    async write(statuses, current, stillLeader) {
      const result: StatusWriteResult = { patched: 0, conflicts: 0, errors: 0 };
      const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      const live = new Set<string>();
      for (const s of statuses) {
        const key = `${s.kind}/${s.namespace}/${s.name}`;
        live.add(key);
        const obj = current(s.kind, s.namespace, s.name);
        const rv = obj?.metadata?.resourceVersion;
        if (!obj || !rv) continue;
        if (inAgreement.get(s) === obj) continue;
        // A status computed from another generation than the informer holds is
        // about to be replaced by the next recompute; writing it would flap.
        if ((obj.metadata?.generation ?? 0) !== s.generation) continue;
        const own = ownWrites.get(key);
        const lagging = own !== undefined && own.from === rv;
        if (own && !lagging) ownWrites.delete(key);
        const parents = mergeRouteParents(readParents(lagging ? own.status : obj.status), s.parents, now);
        if (!parents) {
          if (!lagging) inAgreement.set(s, obj);
          continue;
        }
        if (!stillLeader()) break;
        try {
          const answer: unknown = await api.patchNamespacedCustomObjectStatus(
            {
              group: GROUP,
              version: "v1",
              plural: PLURALS[s.kind],
              namespace: s.namespace,
              name: s.name,
              body: {
                metadata: { resourceVersion: lagging ? own.to : rv },
                status: { parents },
              },
            },
            mergePatch,
          );
          result.patched++;
          const written = answer as RouteObjectView;
          const to = written.metadata?.resourceVersion;
          if (to) ownWrites.set(key, { from: rv, to, status: written.status });
          log.info({ route: key, parents: s.parents.length }, "route status written");
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (code === 409) {
            result.conflicts++;
            log.debug({ route: key }, "route changed under the status write; retrying after the next event");
          } else if (code !== 404) {
            result.errors++;
            log.warn(
              { route: key, err: err instanceof Error ? err.message : String(err) },
              "route status write failed",
            );
          }
        }
      }
      for (const key of ownWrites.keys()) if (!live.has(key)) ownWrites.delete(key);
      return result;
    },
  };
}
