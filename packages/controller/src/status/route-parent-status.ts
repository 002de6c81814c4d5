// Merges Trellis's status.parents entries into what a route already carries.
// Pure: the status writer decides from the result whether a PATCH is needed.
//
// Rules (GAMMA.md "Status"): entries of other controllers are kept as they
// are; entries are compared without regard to order, so two controllers that
// order the list differently never fight; lastTransitionTime moves only when
// a condition's status changes; nothing is written when nothing changed.
import { CONTROLLER_NAME, type RouteParentStatus } from "../resolve/resolution.ts";

export interface ApiCondition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface ApiParentStatus {
  parentRef: Record<string, unknown>;
  controllerName: string;
  conditions: ApiCondition[];
}

/** Gateway API allows at most 32 parents in status. */
const MAX_PARENTS = 32;

function isApiParent(v: unknown): v is ApiParentStatus {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.controllerName === "string" && typeof o.parentRef === "object" && Array.isArray(o.conditions)
  );
}

export function readParents(status: unknown): ApiParentStatus[] {
  if (typeof status !== "object" || status === null) return [];
  const parents = (status as Record<string, unknown>).parents;
  return Array.isArray(parents) ? parents.filter(isApiParent) : [];
}

function refKey(ref: Record<string, unknown>): string {
  // Defaults as the API applies them, so `group: ""` and a missing group compare equal.
  const norm = {
    group: ref.group ?? "gateway.networking.k8s.io",
    kind: ref.kind ?? "Gateway",
    namespace: ref.namespace ?? "",
    name: ref.name ?? "",
    port: ref.port ?? "",
    sectionName: ref.sectionName ?? "",
  };
  return JSON.stringify(norm);
}

function comparable(p: ApiParentStatus): string {
  const conditions = [...p.conditions]
    .map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason,
      message: c.message,
      observedGeneration: c.observedGeneration ?? 0,
    }))
    .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  return JSON.stringify([p.controllerName, refKey(p.parentRef), conditions]);
}

function sameParents(a: readonly ApiParentStatus[], b: readonly ApiParentStatus[]): boolean {
  if (a.length !== b.length) return false;
  const x = a.map(comparable).sort();
  const y = b.map(comparable).sort();
  return x.every((v, i) => v === y[i]);
}

/**
 * Returns the parents list to write, or undefined when the route's status
 * already says exactly this (ignoring order and transition times).
 */
export function mergeRouteParents(
  existing: readonly ApiParentStatus[],
  ours: readonly RouteParentStatus[],
  now: string,
): ApiParentStatus[] | undefined {
  const others = existing.filter((p) => p.controllerName !== CONTROLLER_NAME);
  const previous = new Map(
    existing.filter((p) => p.controllerName === CONTROLLER_NAME).map((p) => [refKey(p.parentRef), p]),
  );
  const mine: ApiParentStatus[] = ours.map((o) => {
    const parentRef: Record<string, unknown> = { ...o.parentRef };
    const before = previous.get(refKey(parentRef));
    return {
      parentRef,
      controllerName: o.controllerName,
      conditions: o.conditions.map((c) => {
        const old = before?.conditions.find((x) => x.type === c.type);
        return {
          type: c.type,
          status: c.status,
          reason: c.reason,
          message: c.message,
          observedGeneration: c.observedGeneration,
          lastTransitionTime: old && old.status === c.status ? old.lastTransitionTime : now,
        };
      }),
    };
  });
  const merged = [...others, ...mine].slice(0, MAX_PARENTS);
  return sameParents(existing, merged) ? undefined : merged;
}
