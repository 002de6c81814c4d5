// Pod status from what the simulator observed, as kubelet's
// generateAPIPodStatus/getPhase compute it. Pure: the caller supplies the
// observation and the clock.
import { createHash } from "node:crypto";
import { rfc3339 } from "./k8s-time.ts";
import type {
  Container,
  ContainerState,
  ContainerStatus,
  Pod,
  PodCondition,
  PodSpec,
  PodStatus,
} from "./k8s-types.ts";

export type Terminated = {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt: Date;
  finishedAt: Date;
  containerId: string;
};

export type ContainerObservation = {
  name: string;
  image: string;
  state:
    | { kind: "waiting"; reason: string; message?: string }
    | { kind: "running"; startedAt: Date; containerId: string }
    | ({ kind: "terminated" } & Terminated);
  lastTerminated?: Terminated;
  restartCount: number;
  /** Readiness probe result (true when running without a readiness probe). */
  ready: boolean;
  /** Startup probe result (true when running without a startup probe). */
  started: boolean;
};

export type PodObservation = {
  /** Sandbox (netns + network) is up: PodReadyToStartContainers. */
  sandboxReady: boolean;
  podIPs: readonly string[];
  hostIPs: readonly string[];
  /** When the simulator accepted the pod. */
  startTime: Date;
  initContainers: readonly ContainerObservation[];
  containers: readonly ContainerObservation[];
};

export const KUBELET_CONDITIONS = [
  "PodReadyToStartContainers",
  "Initialized",
  "Ready",
  "ContainersReady",
  "PodScheduled",
] as const;

export function isTerminalPhase(phase: string | undefined): boolean {
  return phase === "Succeeded" || phase === "Failed";
}

export function isSidecar(c: Container): boolean {
  return c.restartPolicy === "Always";
}

/** "trellis.local/echo" → "trellis.local/echo@sha256:<hash of the name>" (there are no real images). */
export function imageID(image: string): string {
  return `${image.split("@")[0]}@sha256:${createHash("sha256").update(image).digest("hex")}`;
}

export function containerID(id: string): string {
  return `trellis://${id}`;
}

function terminatedState(t: Terminated): ContainerState {
  return {
    terminated: {
      exitCode: t.exitCode,
      ...(t.signal !== undefined ? { signal: t.signal } : {}),
      reason: t.reason,
      ...(t.message ? { message: t.message } : {}),
      startedAt: rfc3339(t.startedAt),
      finishedAt: rfc3339(t.finishedAt),
      containerID: containerID(t.containerId),
    },
  };
}

export function containerStatus(o: ContainerObservation): ContainerStatus {
  let state: ContainerState;
  let id: string | undefined;
  switch (o.state.kind) {
    case "waiting":
      state = {
        waiting: { reason: o.state.reason, ...(o.state.message ? { message: o.state.message } : {}) },
      };
      id = o.lastTerminated?.containerId;
      break;
    case "running":
      state = { running: { startedAt: rfc3339(o.state.startedAt) } };
      id = o.state.containerId;
      break;
    case "terminated":
      state = terminatedState(o.state);
      id = o.state.containerId;
      break;
  }
  const running = o.state.kind === "running";
  return {
    name: o.name,
    image: o.image,
    imageID: o.state.kind === "waiting" && !o.lastTerminated ? "" : imageID(o.image),
    ...(id ? { containerID: containerID(id) } : {}),
    ready: running && o.ready,
    started: running && o.started,
    restartCount: o.restartCount,
    state,
    lastState: o.lastTerminated ? terminatedState(o.lastTerminated) : {},
  };
}

/** kubelet's getPhase. */
export function computePhase(spec: PodSpec, obs: PodObservation): string {
  const restartPolicy = spec.restartPolicy ?? "Always";
  const initByName = new Map(obs.initContainers.map((o) => [o.name, o]));
  let pendingInit = 0;
  let failedInit = false;
  for (const c of spec.initContainers ?? []) {
    const o = initByName.get(c.name);
    if (isSidecar(c)) {
      if (!(o?.state.kind === "running" && o.started)) pendingInit++;
      continue;
    }
    if (o?.state.kind === "terminated" && o.state.exitCode === 0) continue;
    pendingInit++;
    const lastFailed =
      (o?.state.kind === "terminated" && o.state.exitCode !== 0) ||
      (o?.state.kind === "waiting" && o.lastTerminated !== undefined && o.lastTerminated.exitCode !== 0);
    if (lastFailed) failedInit = true;
  }
  if (failedInit && restartPolicy === "Never") return "Failed";
  if (pendingInit > 0) return "Pending";

  let running = 0;
  let waiting = 0;
  let stopped = 0;
  let succeeded = 0;
  let unknown = 0;
  const byName = new Map(obs.containers.map((o) => [o.name, o]));
  for (const c of spec.containers) {
    const o = byName.get(c.name);
    if (!o) {
      unknown++;
      continue;
    }
    switch (o.state.kind) {
      case "running":
        running++;
        break;
      case "terminated":
        stopped++;
        if (o.state.exitCode === 0) succeeded++;
        break;
      case "waiting":
        if (o.lastTerminated) stopped++;
        else waiting++;
        break;
    }
  }
  if (waiting > 0) return "Pending";
  if (running > 0 && unknown === 0) return "Running";
  if (running === 0 && stopped > 0 && unknown === 0) {
    if (restartPolicy === "Always") return "Running";
    if (stopped === succeeded) return "Succeeded";
    if (restartPolicy === "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

function qosClass(spec: PodSpec): string {
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  const has = (c: Container) =>
    Object.keys(c.resources?.requests ?? {}).length > 0 || Object.keys(c.resources?.limits ?? {}).length > 0;
  if (!all.some(has)) return "BestEffort";
  const guaranteed = all.every((c) =>
    ["cpu", "memory"].every((r) => {
      const limit = c.resources?.limits?.[r];
      const request = c.resources?.requests?.[r] ?? limit;
      return limit !== undefined && String(limit) === String(request);
    }),
  );
  return guaranteed ? "Guaranteed" : "Burstable";
}

function condition(
  old: readonly PodCondition[],
  type: string,
  ok: boolean,
  now: Date,
  reason?: string,
  message?: string,
): PodCondition {
  const status = ok ? "True" : "False";
  const prev = old.find((c) => c.type === type);
  return {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime:
      prev && prev.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : rfc3339(now),
    ...(reason ? { reason } : {}),
    ...(message ? { message } : {}),
  };
}

export function computePodStatus(pod: Pod, obs: PodObservation, now: Date): PodStatus {
  const old = pod.status ?? {};
  const oldConditions = old.conditions ?? [];
  const phase = isTerminalPhase(old.phase) ? (old.phase as string) : computePhase(pod.spec, obs);
  const terminal = isTerminalPhase(phase);

  const incompleteInit = (pod.spec.initContainers ?? [])
    .filter((c) => {
      const o = obs.initContainers.find((x) => x.name === c.name);
      if (isSidecar(c)) return !(o?.state.kind === "running" && o.started);
      return !(o?.state.kind === "terminated" && o.state.exitCode === 0);
    })
    .map((c) => c.name);
  const initialized = incompleteInit.length === 0;

  const unready = [
    ...(pod.spec.initContainers ?? []).filter(isSidecar).map((c) => c.name),
    ...pod.spec.containers.map((c) => c.name),
  ].filter((name) => {
    const o = [...obs.initContainers, ...obs.containers].find((x) => x.name === name);
    return !(o?.state.kind === "running" && o.ready);
  });
  const containersReady = !terminal && unready.length === 0;

  const gates = (pod.spec.readinessGates ?? []).map((g) => g.conditionType);
  const missingGate = gates.find((g) => oldConditions.find((c) => c.type === g)?.status !== "True");

  const notReadyReason = terminal ? "PodCompleted" : "ContainersNotReady";
  const notReadyMessage = terminal ? undefined : `containers with unready status: [${unready.join(" ")}]`;

  let readyCondition: PodCondition;
  if (!containersReady) {
    readyCondition = condition(oldConditions, "Ready", false, now, notReadyReason, notReadyMessage);
  } else if (missingGate !== undefined) {
    readyCondition = condition(
      oldConditions,
      "Ready",
      false,
      now,
      "ReadinessGatesNotReady",
      `corresponding condition of pod readiness gate "${missingGate}" does not exist.`,
    );
  } else {
    readyCondition = condition(oldConditions, "Ready", true, now);
  }

  const conditions: PodCondition[] = [
    ...oldConditions.filter((c) => !(KUBELET_CONDITIONS as readonly string[]).includes(c.type)),
    condition(oldConditions, "PodReadyToStartContainers", obs.sandboxReady, now),
    initialized
      ? condition(oldConditions, "Initialized", true, now)
      : condition(
          oldConditions,
          "Initialized",
          false,
          now,
          "ContainersNotInitialized",
          `containers with incomplete status: [${incompleteInit.join(" ")}]`,
        ),
    readyCondition,
    containersReady
      ? condition(oldConditions, "ContainersReady", true, now)
      : condition(oldConditions, "ContainersReady", false, now, notReadyReason, notReadyMessage),
    condition(oldConditions, "PodScheduled", true, now),
  ];

  const status: PodStatus = {
    ...old,
    phase,
    conditions,
    hostIP: obs.hostIPs[0] ?? old.hostIP,
    hostIPs: obs.hostIPs.length ? obs.hostIPs.map((ip) => ({ ip })) : old.hostIPs,
    startTime: old.startTime ?? rfc3339(obs.startTime),
    qosClass: old.qosClass ?? qosClass(pod.spec),
  };
  if (obs.podIPs.length) {
    status.podIP = obs.podIPs[0];
    status.podIPs = obs.podIPs.map((ip) => ({ ip }));
  }
  const byName = (list: readonly ContainerObservation[], c: Container): ContainerStatus =>
    containerStatus(
      list.find((o) => o.name === c.name) ?? {
        name: c.name,
        image: c.image ?? "",
        state: { kind: "waiting", reason: terminal ? "PodCompleted" : "ContainerCreating" },
        restartCount: 0,
        ready: false,
        started: false,
      },
    );
  if (pod.spec.initContainers?.length) {
    status.initContainerStatuses = pod.spec.initContainers.map((c) => byName(obs.initContainers, c));
  }
  status.containerStatuses = pod.spec.containers.map((c) => byName(obs.containers, c));
  for (const k of Object.keys(status) as (keyof PodStatus)[]) if (status[k] === undefined) delete status[k];
  return status;
}

/** Key-order-insensitive JSON, for "did the status change". */
export function canonicalJSON(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJSON).join(",")}]`;
  if (v && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJSON(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export function sameStatus(a: PodStatus | undefined, b: PodStatus | undefined): boolean {
  return canonicalJSON(a ?? {}) === canonicalJSON(b ?? {});
}
