// The canary adapter: once a second, on the leader only, observe each Canary
// (its route, whether every connected agent ACKed a table carrying the
// status's weights, the canary backend's traffic since the step was applied),
// ask the pure state machine (canary.ts) what to do, write the status it
// returns and record its events. The weights themselves reach the tables
// through the controller's overlay, which reads the status written here.
import {
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { CanaryApplied } from "../controller.ts";
import type { AgentState } from "../distribute/agent-registry.ts";
import type { BackendStatsWindow } from "../distribute/backend-stats-window.ts";
import { backendId } from "../resolve/backends.ts";
import {
  type CanaryEvent,
  type CanaryObject,
  type CanaryObservation,
  type CanaryStatus,
  decideCanary,
  overlayProblem,
  overlayWeight,
  statusFingerprint,
} from "./canary.ts";

export interface CanaryLoopOptions {
  kc: KubeConfig;
  log: Logger;
  isLeader(): boolean;
  canaries(): CanaryObject[];
  route(kind: string, namespace: string, name: string): Record<string, unknown> | undefined;
  canaryApplied(key: string): CanaryApplied | undefined;
  agents(): AgentState[];
  stats(): BackendStatsWindow | undefined;
  tickMs?: number;
}

export interface RunningCanaryLoop {
  stop(): Promise<void>;
}

/** Whether every connected agent ACKed a table carrying the weight the status asks for. */
export function appliedByAgents(
  status: CanaryStatus,
  applied: CanaryApplied | undefined,
  agents: readonly AgentState[],
): CanaryObservation["applied"] {
  const connected = agents.filter((a) => a.connected);
  if (!applied || applied.weight !== overlayWeight(status))
    return { done: false, acked: 0, agents: connected.length };
  const acked = connected.filter((a) => {
    const want = applied.versions.get(a.node);
    if (!want) return true; // no table for that node: nothing to apply there
    const got = a.lastAcked;
    return !!got && got.epoch === want.epoch && got.number >= want.number;
  }).length;
  return { done: connected.length > 0 && acked === connected.length, acked, agents: connected.length };
}

export function observeCanary(c: CanaryObject, o: CanaryLoopOptions, now: number): CanaryObservation {
  const spec = c.spec;
  const route = spec && o.route(spec.targetKind, c.namespace, spec.targetName);
  const targetProblem = !spec ? undefined : !route ? "not found" : overlayProblem(route, spec);
  const since = c.status.stepAppliedAt ? Date.parse(c.status.stepAppliedAt) : undefined;
  const window = o.stats();
  const summary =
    spec && since !== undefined && window
      ? window.summary(backendId(c.namespace, spec.canary.name, spec.canary.port), now, since)
      : undefined;
  return {
    targetProblem,
    applied: appliedByAgents(c.status, o.canaryApplied(`${c.namespace}/${c.name}`), o.agents()),
    stats: summary && { requests: summary.requests, failures: summary.failures, p99Ms: summary.p99Ms },
  };
}

export function startCanaryLoop(o: CanaryLoopOptions): RunningCanaryLoop {
  const api = o.kc.makeApiClient(CustomObjectsApi);
  const core = o.kc.makeApiClient(CoreV1Api);
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  /** resourceVersion a Canary had when we last wrote it: until the informer moves past it, it is stale. */
  const wroteFrom = new Map<string, string>();
  let running: Promise<void> | undefined;
  let stopped = false;

  const record = async (c: CanaryObject, e: CanaryEvent) => {
    const now = new Date();
    try {
      await core.createNamespacedEvent({
        namespace: c.namespace,
        body: {
          metadata: { generateName: `${c.name}.` },
          involvedObject: {
            kind: "Canary",
            apiVersion: "trellis.dev/v1alpha1",
            namespace: c.namespace,
            name: c.name,
            uid: c.uid,
          },
          type: e.type,
          reason: e.reason,
          message: e.message,
          source: { component: "trellis-controller" },
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      o.log.warn({ canary: `${c.namespace}/${c.name}`, err: errText(err) }, "cannot record canary event");
    }
  };

  const tickOne = async (c: CanaryObject, now: number) => {
    const key = `${c.namespace}/${c.name}`;
    if (wroteFrom.get(key) === c.resourceVersion) return;
    wroteFrom.delete(key);
    const decision = decideCanary(c, observeCanary(c, o, now), now);
    if (statusFingerprint(decision.status) === statusFingerprint(c.status)) return;
    const s = decision.status;
    // A merge patch removes a field only when it is null.
    const status = {
      ...s,
      stepAppliedAt: s.stepAppliedAt ?? null,
      message: s.message ?? null,
      lastAnalysis: s.lastAnalysis ?? null,
    };
    try {
      await api.patchNamespacedCustomObjectStatus(
        {
          group: "trellis.dev",
          version: "v1alpha1",
          plural: "canaries",
          namespace: c.namespace,
          name: c.name,
          body: { metadata: { resourceVersion: c.resourceVersion }, status },
        },
        mergePatch,
      );
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code !== 409 && code !== 404)
        o.log.warn({ canary: key, err: errText(err) }, "canary status write failed");
      return;
    }
    wroteFrom.set(key, c.resourceVersion);
    if (s.phase !== c.status.phase || s.step !== c.status.step)
      o.log.info(
        { canary: key, phase: s.phase, step: s.step, canaryWeight: s.canaryWeight, message: s.message },
        "canary advanced",
      );
    for (const e of decision.events) await record(c, e);
  };

  const tick = async () => {
    if (stopped || !o.isLeader()) return;
    const now = Date.now();
    for (const c of o.canaries()) await tickOne(c, now);
  };

  const timer = setInterval(() => {
    if (running) return;
    running = tick()
      .catch((err: unknown) => o.log.error({ err: errText(err) }, "canary loop failed"))
      .finally(() => {
        running = undefined;
      });
  }, o.tickMs ?? 1000);

  return {
    stop: async () => {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
