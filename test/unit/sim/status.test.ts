import { describe, expect, it } from "vitest";
import type { Pod } from "../../cluster/sim/k8s-types.ts";
import {
  type ContainerObservation,
  computePhase,
  computePodStatus,
  containerStatus,
  type PodObservation,
  sameStatus,
} from "../../cluster/sim/status.ts";

const t0 = new Date("2026-01-01T00:00:00.000Z");
const t1 = new Date("2026-01-01T00:00:10.000Z");

function pod(extra: Partial<Pod["spec"]> = {}, status?: Pod["status"]): Pod {
  return {
    metadata: { name: "web", namespace: "shop", uid: "u1" },
    spec: { containers: [{ name: "app", image: "trellis.local/echo" }], ...extra },
    ...(status ? { status } : {}),
  };
}

const running = (name: string, ready = true): ContainerObservation => ({
  name,
  image: "trellis.local/echo",
  state: { kind: "running", startedAt: t0, containerId: "c1" },
  restartCount: 0,
  ready,
  started: true,
});

const exited = (name: string, exitCode: number): ContainerObservation => ({
  name,
  image: "trellis.local/echo",
  state: {
    kind: "terminated",
    exitCode,
    reason: exitCode ? "Error" : "Completed",
    startedAt: t0,
    finishedAt: t1,
    containerId: "c1",
  },
  restartCount: 0,
  ready: false,
  started: false,
});

function obs(containers: ContainerObservation[], extra: Partial<PodObservation> = {}): PodObservation {
  return {
    sandboxReady: true,
    podIPs: ["10.244.1.5"],
    hostIPs: ["10.240.0.11"],
    startTime: t0,
    initContainers: [],
    containers,
    ...extra,
  };
}

const cond = (s: ReturnType<typeof computePodStatus>, type: string) =>
  s.conditions?.find((c) => c.type === type);

describe("computePhase", () => {
  it("is Pending while a container was never started", () => {
    expect(computePhase(pod().spec, obs([]))).toBe("Pending");
    expect(
      computePhase(
        pod().spec,
        obs([{ ...running("app"), state: { kind: "waiting", reason: "ContainerCreating" } }]),
      ),
    ).toBe("Pending");
  });

  it("is Running with a running container", () => {
    expect(computePhase(pod().spec, obs([running("app")]))).toBe("Running");
  });

  it("follows restartPolicy once everything stopped", () => {
    expect(computePhase(pod({ restartPolicy: "Always" }).spec, obs([exited("app", 0)]))).toBe("Running");
    expect(computePhase(pod({ restartPolicy: "Never" }).spec, obs([exited("app", 0)]))).toBe("Succeeded");
    expect(computePhase(pod({ restartPolicy: "Never" }).spec, obs([exited("app", 1)]))).toBe("Failed");
    expect(computePhase(pod({ restartPolicy: "OnFailure" }).spec, obs([exited("app", 1)]))).toBe("Running");
    expect(computePhase(pod({ restartPolicy: "OnFailure" }).spec, obs([exited("app", 0)]))).toBe("Succeeded");
  });

  it("counts a crash-looping container as stopped, not waiting", () => {
    const looping: ContainerObservation = {
      ...running("app"),
      state: { kind: "waiting", reason: "CrashLoopBackOff" },
      lastTerminated: { exitCode: 1, reason: "Error", startedAt: t0, finishedAt: t1, containerId: "c1" },
    };
    expect(computePhase(pod().spec, obs([looping]))).toBe("Running");
  });

  it("is Pending until init containers succeeded, Failed if one fails with Never", () => {
    const spec = pod({ initContainers: [{ name: "init" }] }).spec;
    expect(computePhase(spec, obs([], { initContainers: [running("init")] }))).toBe("Pending");
    expect(computePhase(spec, obs([running("app")], { initContainers: [exited("init", 0)] }))).toBe(
      "Running",
    );
    expect(
      computePhase({ ...spec, restartPolicy: "Never" }, obs([], { initContainers: [exited("init", 2)] })),
    ).toBe("Failed");
  });
});

describe("computePodStatus", () => {
  it("reports a ready running pod", () => {
    const s = computePodStatus(pod(), obs([running("app")]), t1);
    expect(s.phase).toBe("Running");
    expect(s.podIP).toBe("10.244.1.5");
    expect(s.podIPs).toEqual([{ ip: "10.244.1.5" }]);
    expect(s.hostIP).toBe("10.240.0.11");
    expect(s.hostIPs).toEqual([{ ip: "10.240.0.11" }]);
    expect(s.startTime).toBe("2026-01-01T00:00:00Z");
    expect(s.qosClass).toBe("BestEffort");
    expect(s.conditions?.map((c) => `${c.type}=${c.status}`)).toEqual([
      "PodReadyToStartContainers=True",
      "Initialized=True",
      "Ready=True",
      "ContainersReady=True",
      "PodScheduled=True",
    ]);
    expect(s.containerStatuses).toEqual([
      {
        name: "app",
        image: "trellis.local/echo",
        imageID: expect.stringMatching(/^trellis\.local\/echo@sha256:[0-9a-f]{64}$/),
        containerID: "trellis://c1",
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: "2026-01-01T00:00:00Z" } },
        lastState: {},
      },
    ]);
  });

  it("says which containers are not ready", () => {
    const p = pod({ containers: [{ name: "a" }, { name: "b" }] });
    const s = computePodStatus(p, obs([running("a"), running("b", false)]), t1);
    expect(cond(s, "Ready")).toMatchObject({
      status: "False",
      reason: "ContainersNotReady",
      message: "containers with unready status: [b]",
    });
    expect(cond(s, "ContainersReady")?.status).toBe("False");
  });

  it("keeps transition times of unchanged conditions and conditions owned by others", () => {
    const first = computePodStatus(pod(), obs([running("app")]), t0);
    const withOther = pod(
      {},
      { ...first, conditions: [...(first.conditions ?? []), { type: "example.com/Custom", status: "True" }] },
    );
    const second = computePodStatus(withOther, obs([running("app")]), t1);
    expect(cond(second, "Ready")?.lastTransitionTime).toBe("2026-01-01T00:00:00Z");
    expect(cond(second, "example.com/Custom")?.status).toBe("True");
    const third = computePodStatus(withOther, obs([running("app", false)]), t1);
    expect(cond(third, "Ready")?.lastTransitionTime).toBe("2026-01-01T00:00:10Z");
  });

  it("holds Ready back until readiness gates are True", () => {
    const p = pod({ readinessGates: [{ conditionType: "trellis.dev/captured" }] });
    const s = computePodStatus(p, obs([running("app")]), t1);
    expect(cond(s, "ContainersReady")?.status).toBe("True");
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "ReadinessGatesNotReady" });
    const gated = pod(
      { readinessGates: [{ conditionType: "trellis.dev/captured" }] },
      { conditions: [{ type: "trellis.dev/captured", status: "True" }] },
    );
    expect(cond(computePodStatus(gated, obs([running("app")]), t1), "Ready")?.status).toBe("True");
  });

  it("never leaves a terminal phase and keeps the pod IP after the sandbox is gone", () => {
    const p = pod(
      { restartPolicy: "Never" },
      { phase: "Succeeded", podIP: "10.244.1.5", podIPs: [{ ip: "10.244.1.5" }] },
    );
    const s = computePodStatus(p, obs([exited("app", 0)], { podIPs: [], sandboxReady: false }), t1);
    expect(s.phase).toBe("Succeeded");
    expect(s.podIP).toBe("10.244.1.5");
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "PodCompleted" });
    expect(cond(s, "PodReadyToStartContainers")?.status).toBe("False");
  });

  it("shows containers that were not created yet as waiting", () => {
    const s = computePodStatus(pod(), obs([], { sandboxReady: false, podIPs: [] }), t1);
    expect(s.phase).toBe("Pending");
    expect(s.podIP).toBeUndefined();
    expect(s.containerStatuses?.[0]).toMatchObject({
      ready: false,
      started: false,
      imageID: "",
      state: { waiting: { reason: "ContainerCreating" } },
    });
  });

  it("compares statuses regardless of key order", () => {
    const s = computePodStatus(pod(), obs([running("app")]), t1);
    const reordered = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(s).reverse())));
    expect(sameStatus(s, reordered)).toBe(true);
    expect(sameStatus(s, { ...s, phase: "Pending" })).toBe(false);
  });
});

describe("containerStatus", () => {
  it("reports the last termination of a restarted container", () => {
    const cs = containerStatus({
      ...running("app"),
      restartCount: 2,
      lastTerminated: {
        exitCode: 137,
        signal: 9,
        reason: "Error",
        startedAt: t0,
        finishedAt: t1,
        containerId: "old",
      },
    });
    expect(cs.restartCount).toBe(2);
    expect(cs.lastState).toEqual({
      terminated: {
        exitCode: 137,
        signal: 9,
        reason: "Error",
        startedAt: "2026-01-01T00:00:00Z",
        finishedAt: "2026-01-01T00:00:10Z",
        containerID: "trellis://old",
      },
    });
  });
});
