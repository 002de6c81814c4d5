// The canary adapter: once a second, on the leader only, observe each Canary
// (its route, whether every connected agent ACKed a table carrying the
// status's weights, the canary and stable backends' traffic since the step
// was applied), ask the pure state machine (canary.ts) what to do, make the
// webhook calls it asks for and ask again with their answers, then write the
// status it returns, record its events and tell Rollback webhooks. The
// weights themselves reach the tables through the controller's overlay, which
// reads the status written here.
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
  type WebhookCall,
} from "./canary.ts";
import { callWebhooks, type PostWebhook, postWebhook } from "./webhook.ts";

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
  /** The HTTP POST of webhooks; tests replace it. */
  postWebhook?: PostWebhook;
}

/** A decision may ask for PreStep and Analysis webhooks in one tick; more rounds mean a bug. */
const MAX_WEBHOOK_ROUNDS = 3;

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
  const summary = (b: { name: string; port: number }) => {
    if (since === undefined || !window) return undefined;
    const x = window.summary(backendId(c.namespace, b.name, b.port), now, since);
    return { requests: x.requests, failures: x.failures, p99Ms: x.p99Ms };
  };
  return {
    targetProblem,
    applied: appliedByAgents(c.status, o.canaryApplied(`${c.namespace}/${c.name}`), o.agents()),
    stats: spec && summary(spec.canary),
    stableStats: spec?.compare ? summary(spec.stable) : undefined,
  };
}

export function startCanaryLoop(o: CanaryLoopOptions): RunningCanaryLoop {
  const api = o.kc.makeApiClient(CustomObjectsApi);
  const core = o.kc.makeApiClient(CoreV1Api);
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
  const post = o.postWebhook ?? postWebhook;
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
    let observation = observeCanary(c, o, now);
    let decision = decideCanary(c, observation, now);
    for (let round = 0; decision.call && round < MAX_WEBHOOK_ROUNDS; round++) {
      const call = decision.call;
      const results = await callWebhooks(call, post);
      o.log.info(
        { canary: key, webhookType: call.type, step: call.body.step, weight: call.body.weight, results },
        "canary webhooks called",
      );
      observation = {
        ...observation,
        webhooks: [...(observation.webhooks ?? []), { type: call.type, results }],
      };
      decision = decideCanary(c, observation, now);
    }
    if (decision.call) {
      o.log.error(
        { canary: key, webhookType: decision.call.type },
        "canary decision kept asking for webhooks",
      );
      return;
    }
    if (statusFingerprint(decision.status) === statusFingerprint(c.status)) return;
    const s = decision.status;
    // A merge patch removes a field only when it is null.
    const status = {
      ...s,
      stepAppliedAt: s.stepAppliedAt ?? null,
      message: s.message ?? null,
      lastAnalysis: s.lastAnalysis ?? null,
      webhooks: s.webhooks ?? null,
      lastGate: s.lastGate ?? null,
      invalidAction: s.invalidAction ?? null,
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
    if (decision.notify) await notify(c, decision.notify);
  };

  /** Rollback webhooks only inform: their answers go to Events and the log, never to the decision. */
  const notify = async (c: CanaryObject, call: WebhookCall) => {
    const results = await callWebhooks(call, post);
    o.log.info(
      { canary: `${c.namespace}/${c.name}`, webhookType: call.type, results },
      "canary webhooks called",
    );
    for (const r of results)
      await record(c, {
        type: r.ok ? "Normal" : "Warning",
        reason: r.ok ? "WebhookCalled" : "WebhookFailed",
        message: `${call.type} webhook ${r.name}: ${r.message}`,
      });
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
