// One pod's lifecycle on this node, like kubelet's pod worker: a serialized
// reconcile loop that drives the pod towards its spec and reports status.
//
//   volumes → sandbox (netns + CNI, not for hostNetwork) → init containers in
//   order → containers (restart per restartPolicy with crash-loop backoff) →
//   probes → status (written only when it changed)
//
// On deletion (deletionTimestamp, or the object vanished): SIGTERM, grace
// period (capped), SIGKILL, CNI DEL, netns deleted, state removed, final
// status, then DELETE with gracePeriodSeconds=0 and a uid precondition.
import { statSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { lookupImage } from "../images.ts";
import { Backoff } from "./backoff.ts";
import { resolveCommand } from "./command.ts";
import type { NodeConfig } from "./config.ts";
import { ContainerRun, type ExitInfo } from "./container.ts";
import type { NodeAllocatable, PodRuntimeFacts } from "./downward-api.ts";
import { EnvError, envReferences, processEnv } from "./env.ts";
import type { EventRecorder } from "./events.ts";
import type { ConfigMap, Container, Pod, Probe, Secret } from "./k8s-types.ts";
import { isStatus, type KubeApi } from "./kube-api.ts";
import { containerMounts, launchArgv, podHostname } from "./launch.ts";
import { type ProbeKind, Prober } from "./probes.ts";
import type { Sandboxes, SandboxRecord } from "./sandbox.ts";
import type { ServiceCatalog } from "./services.ts";
import {
  type ContainerObservation,
  canonicalJSON,
  computePodStatus,
  isSidecar,
  isTerminalPhase,
  type PodObservation,
  sameStatus,
  type Terminated,
} from "./status.ts";
import { PodVolumes, podLogDir, VolumeError } from "./volumes.ts";

/** Deleting pods get at most this grace period (tests must not wait 30 s per pod). */
export const MAX_GRACE_MS = 10_000;
/** Grace when the simulator itself shuts down. */
export const SHUTDOWN_GRACE_MS = 3_000;
/** Crash-loop backoff: 1 s doubling to 60 s (kubelet's reduced decay), reset after 2 min of running. */
const crashLoop = () => new Backoff({ initialMs: 1_000, maxMs: 60_000, resetAfterMs: 120_000 });
const retryBackoff = () => new Backoff({ initialMs: 1_000, maxMs: 10_000, jitter: 0.1 });

export type WorkerDeps = {
  cfg: NodeConfig;
  api: KubeApi;
  log: Logger;
  sandboxes: Sandboxes;
  services: ServiceCatalog;
  events: EventRecorder;
  allocatable: NodeAllocatable;
};

type Slot = {
  spec: Container;
  init: boolean;
  state: ContainerObservation["state"];
  lastTerminated?: Terminated;
  restartCount: number;
  hasRun: boolean;
  run?: ContainerRun;
  env?: Record<string, string>;
  backoff: Backoff;
  notBefore: number;
  probers: Partial<Record<ProbeKind, Prober>>;
  ready: boolean;
  started: boolean;
  /** Set when we stopped it on purpose (liveness kill): its exit is not a crash to report twice. */
  stopping: boolean;
};

type Lifecycle = "active" | "terminating" | "done";

function numericRV(rv: string | undefined): number {
  const n = Number(rv);
  return Number.isFinite(n) ? n : 0;
}

export class PodWorker {
  readonly uid: string;
  readonly #deps: WorkerDeps;
  readonly #log: Logger;
  readonly #volumes: PodVolumes;
  readonly #slots: Slot[];
  readonly #startTime = new Date();
  readonly done: Promise<void>;
  #resolveDone: () => void = () => {};
  #pod: Pod;
  #gone = false;
  #lifecycle: Lifecycle = "active";
  #shutdown: { graceMs: number; reason: string } | undefined;
  #sandbox: SandboxRecord | undefined;
  #sandboxBackoff = retryBackoff();
  #sandboxNotBefore = 0;
  #sandboxError: string | undefined;
  #volumesReady = false;
  #volumeBackoff = retryBackoff();
  #volumesNotBefore = 0;
  #volumeError: string | undefined;
  #statusBackoff = retryBackoff();
  #statusNotBefore = 0;
  #lastSent = "";
  #lastEcho = "";
  #hostsDirty = true;
  #wake: NodeJS.Timeout | undefined;
  #wakeAt = Number.POSITIVE_INFINITY;
  #running = false;
  #dirty = false;

  constructor(pod: Pod, deps: WorkerDeps, adopted?: SandboxRecord) {
    this.uid = pod.metadata.uid ?? "";
    this.#pod = pod;
    this.#deps = deps;
    this.#log = deps.log.child({ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, uid: this.uid });
    this.#sandbox = adopted;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    this.#volumes = new PodVolumes(pod, {
      api: deps.api,
      cfg: deps.cfg,
      log: this.#log,
      allocatable: deps.allocatable,
      facts: () => this.#facts(),
    });
    const previous = new Map(
      [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])].map((s) => [
        s.name,
        s,
      ]),
    );
    const slot = (spec: Container, init: boolean): Slot => {
      const prev = previous.get(spec.name);
      return {
        spec,
        init,
        state: { kind: "waiting", reason: "ContainerCreating" },
        // a restarted simulator continues the counts it reported before
        restartCount: prev?.restartCount ?? 0,
        hasRun:
          prev !== undefined && (prev.state.running !== undefined || prev.state.terminated !== undefined),
        backoff: crashLoop(),
        notBefore: 0,
        probers: {},
        ready: false,
        started: false,
        stopping: false,
      };
    };
    this.#slots = [
      ...(pod.spec.initContainers ?? []).map((c) => slot(c, true)),
      ...pod.spec.containers.map((c) => slot(c, false)),
    ];
  }

  get pod(): Pod {
    return this.#pod;
  }

  update(pod: Pod): void {
    if (numericRV(pod.metadata.resourceVersion) < numericRV(this.#pod.metadata.resourceVersion)) return;
    this.#pod = pod;
    this.#volumes.update(pod);
    this.kick();
  }

  /** The API object is gone (deleted, maybe forcibly). */
  gone(): void {
    this.#gone = true;
    this.kick();
  }

  servicesChanged(): void {
    this.#hostsDirty = true;
    this.kick();
  }

  /** Simulator shutdown: stop everything quickly, leave the API object (status: node shutdown). */
  async shutdown(): Promise<void> {
    this.#shutdown ??= { graceMs: SHUTDOWN_GRACE_MS, reason: "node simulator shutting down" };
    this.kick();
    await this.done;
  }

  kick(): void {
    if (this.#lifecycle === "done") return;
    if (this.#running) {
      this.#dirty = true;
      return;
    }
    this.#running = true;
    void this.#loop();
  }

  async #loop(): Promise<void> {
    do {
      this.#dirty = false;
      try {
        await this.#sync();
      } catch (err) {
        this.#log.error(
          { err: String(err), stack: err instanceof Error ? err.stack : undefined },
          "pod sync failed",
        );
        this.#wakeIn(2_000);
      }
    } while (this.#dirty && this.#lifecycle !== "done");
    this.#running = false;
  }

  #wakeIn(ms: number): void {
    const at = Date.now() + Math.max(0, ms);
    if (at >= this.#wakeAt) return;
    clearTimeout(this.#wake);
    this.#wakeAt = at;
    this.#wake = setTimeout(() => {
      this.#wakeAt = Number.POSITIVE_INFINITY;
      this.kick();
    }, at - Date.now());
  }

  #facts(): PodRuntimeFacts {
    return {
      podIPs: this.#pod.spec.hostNetwork ? [this.#deps.cfg.underlayIP] : (this.#sandbox?.podIPs ?? []),
      hostIPs: [this.#deps.cfg.underlayIP],
    };
  }

  // ---------------------------------------------------------------- reconcile

  async #sync(): Promise<void> {
    if (this.#lifecycle === "done") return;
    const pod = this.#pod;
    if (this.#shutdown || this.#gone || pod.metadata.deletionTimestamp) return this.#terminate();
    if (isTerminalPhase(pod.status?.phase)) return this.#quiesce();

    if (!(await this.#ensureVolumes()) || !(await this.#ensureSandbox())) return this.#writeStatus();
    if (this.#hostsDirty && this.#sandbox) {
      this.#hostsDirty = false;
      await this.#deps.sandboxes.writeHosts(this.#sandbox, pod, this.#deps.services.list());
    }

    const restartPolicy = pod.spec.restartPolicy ?? "Always";
    let initDone = true;
    for (const slot of this.#slots.filter((s) => s.init)) {
      if (isSidecar(slot.spec)) {
        await this.#ensureRunning(slot, "Always");
        if (!(slot.state.kind === "running" && slot.started)) {
          initDone = false;
          break;
        }
        continue;
      }
      if (slot.state.kind === "terminated" && slot.state.exitCode === 0) continue;
      initDone = false;
      if (slot.state.kind === "terminated" && restartPolicy === "Never") break; // pod fails
      if (slot.state.kind !== "running") await this.#ensureRunning(slot, "OnFailure");
      break;
    }
    if (initDone) {
      for (const slot of this.#slots.filter((s) => !s.init)) await this.#ensureRunning(slot, restartPolicy);
    }
    await this.#writeStatus();
    if (isTerminalPhase(this.#pod.status?.phase)) this.kick();
  }

  async #ensureVolumes(): Promise<boolean> {
    if (this.#volumesReady) return true;
    if (Date.now() < this.#volumesNotBefore) {
      this.#wakeIn(this.#volumesNotBefore - Date.now());
      return false;
    }
    try {
      await this.#volumes.setUp();
      this.#volumesReady = true;
      this.#volumeError = undefined;
      this.#volumeBackoff.reset();
      return true;
    } catch (err) {
      const message = err instanceof VolumeError ? err.message : String(err);
      this.#volumeError = message;
      this.#deps.events.record(this.#pod, "Warning", "FailedMount", `MountVolume.SetUp failed: ${message}`);
      const delay = this.#volumeBackoff.next();
      this.#volumesNotBefore = Date.now() + delay;
      this.#log.warn({ err: message, retryInMs: delay }, "volume setup failed");
      this.#wakeIn(delay);
      return false;
    }
  }

  async #ensureSandbox(): Promise<boolean> {
    if (this.#pod.spec.hostNetwork || this.#sandbox) return true;
    if (Date.now() < this.#sandboxNotBefore) {
      this.#wakeIn(this.#sandboxNotBefore - Date.now());
      return false;
    }
    try {
      // Cleared before the list is read: a Service that changes while the sandbox is being
      // created marks the hosts file dirty again instead of being lost (a pod would then never
      // resolve that Service's name).
      this.#hostsDirty = false;
      this.#sandbox = await this.#deps.sandboxes.create(this.#pod, this.#deps.services.list());
      this.#sandboxError = undefined;
      this.#sandboxBackoff.reset();
      this.#log.info({ netns: this.#sandbox.netns, podIPs: this.#sandbox.podIPs }, "sandbox ready");
      return true;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#sandboxError = message;
      this.#deps.events.record(
        this.#pod,
        "Warning",
        "FailedCreatePodSandBox",
        `Failed to create pod sandbox: ${message}`,
      );
      const delay = this.#sandboxBackoff.next();
      this.#sandboxNotBefore = Date.now() + delay;
      this.#log.warn({ err: message, retryInMs: delay }, "sandbox creation failed");
      this.#wakeIn(delay);
      return false;
    }
  }

  /** Starts the container if it should run under `policy` and its backoff allows it. */
  async #ensureRunning(slot: Slot, policy: string): Promise<void> {
    if (slot.state.kind === "running") return;
    const last = slot.state.kind === "terminated" ? slot.state : slot.lastTerminated;
    if (slot.state.kind === "terminated" || (slot.state.kind === "waiting" && last)) {
      const exitCode = last?.exitCode ?? 1;
      const restart = policy === "Always" || (policy === "OnFailure" && exitCode !== 0);
      if (!restart) return;
    }
    if (Date.now() < slot.notBefore) {
      // the waiting state (CrashLoopBackOff, CreateContainerConfigError, …) was set when the attempt failed
      this.#wakeIn(slot.notBefore - Date.now());
      return;
    }
    await this.#start(slot);
  }

  async #fetchRefs(container: Container) {
    const ns = this.#pod.metadata.namespace;
    const refs = envReferences(container);
    const configMaps = new Map<string, ConfigMap | null>();
    const secrets = new Map<string, Secret | null>();
    const get = async <T>(path: string): Promise<T | null> => {
      try {
        return await this.#deps.api.get<T>(path);
      } catch (err) {
        if (isStatus(err, 404)) return null;
        throw err;
      }
    };
    for (const name of refs.configMaps) {
      configMaps.set(name, await get<ConfigMap>(`/api/v1/namespaces/${ns}/configmaps/${name}`));
    }
    for (const name of refs.secrets)
      secrets.set(name, await get<Secret>(`/api/v1/namespaces/${ns}/secrets/${name}`));
    return { configMaps, secrets };
  }

  async #start(slot: Slot): Promise<void> {
    const pod = this.#pod;
    const { cfg } = this.#deps;
    const c = slot.spec;
    const image = lookupImage(c.image ?? "");
    if (!image) {
      slot.state = {
        kind: "waiting",
        reason: "ErrImagePull",
        message: `image "${c.image}" is not in the cluster-in-a-box image map (test/cluster/images.ts)`,
      };
      this.#deps.events.record(
        pod,
        "Warning",
        "Failed",
        slot.state.message ?? "",
        `spec.containers{${c.name}}`,
      );
      return;
    }
    let argv: string[];
    let env: Record<string, string>;
    let mounts: ReturnType<typeof containerMounts>;
    const hostname = pod.spec.hostNetwork ? cfg.name : podHostname(pod);
    try {
      const { configMaps, secrets } = await this.#fetchRefs(c);
      env = processEnv({
        pod,
        container: c,
        image,
        services: this.#deps.services.list(),
        facts: this.#facts(),
        allocatable: this.#deps.allocatable,
        configMaps,
        secrets,
        hostname,
        box: { boxId: cfg.boxId, node: cfg.name },
      });
      argv = resolveCommand(image, c, env);
      mounts = containerMounts(c, (v) => this.#volumes.sourceOf(v), env, [
        cfg.trellisRoot,
        cfg.stateDir,
        dirname(process.execPath),
        // The program and scripts it runs; not directory arguments, which name mount points.
        ...argv.filter((a) => a.startsWith("/") && statSync(a, { throwIfNoEntry: false })?.isFile()),
      ]);
      for (const m of mounts) {
        // kubelet creates missing subPath directories inside the volume
        if (!(await stat(m.source).catch(() => undefined))) await mkdir(m.source, { recursive: true });
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      slot.state = { kind: "waiting", reason: "CreateContainerConfigError", message };
      this.#deps.events.record(pod, "Warning", "Failed", `Error: ${message}`, `spec.containers{${c.name}}`);
      if (!(err instanceof EnvError))
        this.#log.warn({ container: c.name, err: message }, "container config failed");
      slot.notBefore = Date.now() + slot.backoff.next();
      this.#wakeIn(slot.notBefore - Date.now());
      return;
    }
    const launch = launchArgv({
      netns: pod.spec.hostNetwork ? cfg.netns : (this.#sandbox?.netns ?? ""),
      hostname,
      workingDir: c.workingDir || image.workingDir || "/",
      mounts,
      argv,
    });
    let run: ContainerRun;
    try {
      run = await ContainerRun.start({
        argv: launch,
        env,
        logFile: join(podLogDir(cfg, pod), `${c.name}.log`),
        boxId: cfg.boxId,
        node: cfg.name,
        podUid: this.uid,
        containerName: c.name,
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      slot.state = { kind: "waiting", reason: "RunContainerError", message };
      slot.notBefore = Date.now() + slot.backoff.next();
      this.#wakeIn(slot.notBefore - Date.now());
      return;
    }
    if (slot.hasRun) slot.restartCount++;
    slot.hasRun = true;
    slot.run = run;
    slot.env = env;
    slot.stopping = false;
    slot.state = { kind: "running", startedAt: run.startedAt, containerId: run.id };
    slot.ready = !c.readinessProbe;
    slot.started = !c.startupProbe;
    this.#log.info({ container: c.name, pid: run.pid, restartCount: slot.restartCount }, "container started");
    this.#deps.events.record(
      pod,
      "Normal",
      "Started",
      `Started container ${c.name}`,
      `spec.containers{${c.name}}`,
    );
    this.#startProbers(slot, run);
    void run.exited.then((exit) => this.#onExit(slot, run, exit));
  }

  #startProbers(slot: Slot, run: ContainerRun): void {
    const c = slot.spec;
    const target = {
      host: this.#facts().podIPs[0] ?? this.#deps.cfg.underlayIP,
      ports: c.ports ?? [],
      pid: () => (slot.run === run && !run.exit ? run.pid : undefined),
      env: slot.env ?? {},
    };
    const make = (kind: ProbeKind, probe: Probe) => {
      const prober = new Prober(kind, probe, target, (ok, message) =>
        this.#onProbe(slot, run, kind, ok, message),
      );
      slot.probers[kind] = prober;
      return prober;
    };
    if (c.startupProbe) {
      make("startup", c.startupProbe).start();
      return; // readiness and liveness wait for startup success
    }
    if (c.readinessProbe) make("readiness", c.readinessProbe).start();
    if (c.livenessProbe) make("liveness", c.livenessProbe).start();
  }

  #onProbe(slot: Slot, run: ContainerRun, kind: ProbeKind, ok: boolean, message: string): void {
    if (slot.run !== run || run.exit || this.#lifecycle !== "active") return;
    const c = slot.spec;
    if (!ok) {
      const probeName = kind[0]?.toUpperCase() + kind.slice(1);
      this.#deps.events.record(
        this.#pod,
        "Warning",
        "Unhealthy",
        `${probeName} probe failed: ${message}`,
        `spec.containers{${c.name}}`,
      );
    }
    if (kind === "readiness") {
      slot.ready = ok;
    } else if (kind === "startup" && ok) {
      slot.started = true;
      if (c.readinessProbe)
        slot.probers.readiness ??= this.#newProber(slot, run, "readiness", c.readinessProbe);
      if (c.livenessProbe) slot.probers.liveness ??= this.#newProber(slot, run, "liveness", c.livenessProbe);
    } else if (!ok) {
      // liveness or startup failure: kill; the restart policy decides what follows
      const msg = `Container ${c.name} failed ${kind} probe, will be restarted`;
      this.#deps.events.record(this.#pod, "Normal", "Killing", msg, `spec.containers{${c.name}}`);
      this.#log.info({ container: c.name, kind }, "probe failed: killing container");
      slot.stopping = true;
      const probe = kind === "liveness" ? c.livenessProbe : c.startupProbe;
      void run.stop(this.#graceMs(probe?.terminationGracePeriodSeconds));
    }
    this.kick();
  }

  #newProber(slot: Slot, run: ContainerRun, kind: ProbeKind, probe: Probe): Prober {
    const prober = new Prober(
      kind,
      probe,
      {
        host: this.#facts().podIPs[0] ?? this.#deps.cfg.underlayIP,
        ports: slot.spec.ports ?? [],
        pid: () => (slot.run === run && !run.exit ? run.pid : undefined),
        env: slot.env ?? {},
      },
      (ok, message) => this.#onProbe(slot, run, kind, ok, message),
    );
    prober.start();
    return prober;
  }

  #stopProbers(slot: Slot): void {
    for (const p of Object.values(slot.probers)) p?.stop();
    slot.probers = {};
  }

  #onExit(slot: Slot, run: ContainerRun, exit: ExitInfo): void {
    if (slot.run !== run) return;
    this.#stopProbers(slot);
    // what the container left behind goes with it (a PID namespace would see to that)
    void run.killRest().catch(() => {});
    const term: Terminated = {
      exitCode: exit.exitCode,
      ...(exit.signal !== undefined ? { signal: exit.signal } : {}),
      reason: exit.exitCode === 0 ? "Completed" : "Error",
      startedAt: run.startedAt,
      finishedAt: exit.finishedAt,
      containerId: run.id,
    };
    slot.ready = false;
    slot.started = false;
    slot.backoff.ranFor(exit.finishedAt.getTime() - run.startedAt.getTime());
    if (this.#lifecycle !== "active") {
      slot.state = { kind: "terminated", ...term };
      return;
    }
    const podPolicy = this.#pod.spec.restartPolicy ?? "Always";
    let willRestart: boolean;
    if (isSidecar(slot.spec)) willRestart = true;
    else if (slot.init) willRestart = exit.exitCode !== 0 && podPolicy !== "Never";
    else willRestart = podPolicy === "Always" || (podPolicy === "OnFailure" && exit.exitCode !== 0);
    this.#log.info({ container: slot.spec.name, exitCode: exit.exitCode, willRestart }, "container exited");
    if (willRestart) {
      slot.lastTerminated = term;
      const delay = slot.backoff.next();
      slot.notBefore = Date.now() + delay;
      slot.state = {
        kind: "waiting",
        reason: "CrashLoopBackOff",
        message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${slot.spec.name} pod=${this.#pod.metadata.name}_${this.#pod.metadata.namespace}(${this.uid})`,
      };
      if (!slot.stopping) {
        this.#deps.events.record(
          this.#pod,
          "Warning",
          "BackOff",
          "Back-off restarting failed container",
          `spec.containers{${slot.spec.name}}`,
        );
      }
    } else {
      slot.state = { kind: "terminated", ...term };
    }
    this.kick();
  }

  // ------------------------------------------------------------------ status

  #observation(): PodObservation {
    const obs = (s: Slot): ContainerObservation => ({
      name: s.spec.name,
      image: s.spec.image ?? "",
      state: s.state,
      ...(s.lastTerminated ? { lastTerminated: s.lastTerminated } : {}),
      restartCount: s.restartCount,
      ready: s.ready,
      started: s.started,
    });
    const sandboxReady =
      this.#lifecycle === "active" && (this.#pod.spec.hostNetwork === true || !!this.#sandbox);
    const facts = this.#facts();
    return {
      sandboxReady,
      podIPs: facts.podIPs,
      hostIPs: facts.hostIPs,
      startTime: this.#startTime,
      initContainers: this.#slots.filter((s) => s.init).map(obs),
      containers: this.#slots.filter((s) => !s.init).map(obs),
    };
  }

  #containerCreatingMessage(): ContainerObservation["state"] {
    if (this.#volumeError)
      return { kind: "waiting", reason: "ContainerCreating", message: this.#volumeError };
    if (this.#sandboxError)
      return { kind: "waiting", reason: "ContainerCreating", message: this.#sandboxError };
    return { kind: "waiting", reason: "ContainerCreating" };
  }

  /** Computes the status and writes it when it differs from the API's (PUT with resourceVersion). */
  async #writeStatus(opts: { final?: { reason: string; message: string } } = {}): Promise<void> {
    if (this.#gone) return;
    if (!opts.final && Date.now() < this.#statusNotBefore) {
      this.#wakeIn(this.#statusNotBefore - Date.now());
      return;
    }
    for (const s of this.#slots) {
      if (s.state.kind === "waiting" && s.state.reason === "ContainerCreating" && !s.hasRun) {
        s.state = this.#containerCreatingMessage();
      }
    }
    const pod = this.#pod;
    if (opts.final) {
      // nothing runs any more: a crash-looping container ends in its last termination
      for (const s of this.#slots) {
        if (s.state.kind === "waiting" && s.lastTerminated)
          s.state = { kind: "terminated", ...s.lastTerminated };
      }
    }
    let status = computePodStatus(pod, this.#observation(), new Date());
    if (opts.final && !isTerminalPhase(status.phase)) {
      // kubelet moves pods it stopped to a terminal phase: Succeeded only if
      // every container that ran exited 0 (never after a node shutdown)
      const allZero =
        this.#slots.some((s) => s.hasRun) &&
        this.#slots.every((s) => s.state.kind !== "terminated" || s.state.exitCode === 0);
      status = {
        ...status,
        phase: opts.final.reason !== "Terminated" && allZero ? "Succeeded" : "Failed",
        ...(opts.final.reason ? { reason: opts.final.reason, message: opts.final.message } : {}),
      };
    }
    if (sameStatus(status, pod.status)) return;
    const sent = canonicalJSON(status);
    if (sent === this.#lastSent && canonicalJSON(pod.status) === this.#lastEcho) return;
    const { namespace, name } = pod.metadata;
    try {
      const updated = await this.#deps.api.request<Pod>(
        "PUT",
        `/api/v1/namespaces/${namespace}/pods/${name}/status`,
        {
          body: { ...pod, status },
          timeoutMs: opts.final ? 2_000 : 30_000,
        },
      );
      this.#lastSent = sent;
      this.#lastEcho = canonicalJSON(updated.status);
      this.#statusBackoff.reset();
      if (updated.metadata.uid === this.uid) this.update(updated);
      this.#log.debug({ phase: status.phase, podIP: status.podIP }, "pod status written");
    } catch (err) {
      if (isStatus(err, 404)) {
        this.#gone = true;
        this.kick();
        return;
      }
      if (isStatus(err, 409) && !opts.final) {
        const fresh = await this.#deps.api
          .get<Pod>(`/api/v1/namespaces/${namespace}/pods/${name}`)
          .catch(() => undefined);
        if (fresh && fresh.metadata.uid === this.uid) this.update(fresh);
        else if (fresh) this.gone();
        this.kick();
        return;
      }
      if (opts.final) {
        this.#log.warn({ err: String(err) }, "final pod status not written");
        return;
      }
      const delay = this.#statusBackoff.next();
      this.#statusNotBefore = Date.now() + delay;
      this.#log.warn({ err: String(err), retryInMs: delay }, "pod status write failed");
      this.#wakeIn(delay);
    }
  }

  // ------------------------------------------------------------- termination

  #graceMs(override?: number): number {
    const pod = this.#pod;
    const seconds =
      override ?? pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
    return Math.min(Math.max(seconds, 0) * 1000, MAX_GRACE_MS);
  }

  async #stopContainers(graceMs: number): Promise<void> {
    const running = this.#slots.filter((s) => s.run && !s.run.exit);
    for (const s of this.#slots) this.#stopProbers(s);
    for (const s of running) {
      this.#deps.events.record(
        this.#pod,
        "Normal",
        "Killing",
        `Stopping container ${s.spec.name}`,
        `spec.containers{${s.spec.name}}`,
      );
    }
    // app containers first, then sidecars (as kubelet orders termination)
    const order = (s: Slot) => (s.init ? 1 : 0);
    for (const phase of [0, 1]) {
      await Promise.all(running.filter((s) => order(s) === phase).map((s) => s.run?.stop(graceMs)));
    }
  }

  /** Removes the sandbox; the pod IPs stay in the status (computePodStatus keeps them), as with kubelet. */
  async #teardownSandbox(): Promise<void> {
    if (!this.#sandbox) return;
    const sandbox = this.#sandbox;
    this.#sandbox = undefined;
    await this.#deps.sandboxes.teardown(sandbox);
  }

  /** A pod that reached Succeeded/Failed: nothing runs any more, the sandbox goes; wait for deletion. */
  async #quiesce(): Promise<void> {
    // a pod that finished before this worker existed (e.g. before a restart):
    // its status is history, which this worker knows nothing about
    if (!this.#slots.some((s) => s.run) && !this.#sandbox) return;
    if (this.#slots.some((s) => s.run && !s.run.exit) || this.#sandbox) {
      this.#lifecycle = "terminating";
      await this.#stopContainers(this.#graceMs());
      await this.#teardownSandbox();
      this.#volumes.stop();
      this.#lifecycle = "active";
      this.#log.info({ phase: this.#pod.status?.phase }, "pod finished: sandbox removed");
    }
    await this.#writeStatus();
  }

  async #terminate(): Promise<void> {
    const shutdown = this.#shutdown;
    const graceMs = shutdown
      ? Math.min(shutdown.graceMs, this.#graceMs())
      : this.#gone
        ? Math.min(2_000, this.#graceMs())
        : this.#graceMs();
    this.#lifecycle = "terminating";
    clearTimeout(this.#wake);
    this.#log.info(
      { graceMs, reason: shutdown ? "shutdown" : this.#gone ? "object gone" : "deletion" },
      "terminating pod",
    );
    // a pod that was already finished when this worker took it over keeps its recorded status
    const keepStatus = isTerminalPhase(this.#pod.status?.phase) && !this.#slots.some((s) => s.run);
    await this.#stopContainers(graceMs);
    await this.#teardownSandbox().catch((err: unknown) =>
      this.#log.error({ err: String(err) }, "sandbox teardown failed"),
    );
    await this.#volumes
      .tearDown()
      .catch((err: unknown) => this.#log.warn({ err: String(err) }, "volume teardown failed"));
    if (!this.#gone) {
      if (keepStatus) {
        if (!shutdown) await this.#deleteObject();
      } else if (shutdown) {
        await this.#writeStatus({
          final: {
            reason: "Terminated",
            message: "Pod was terminated in response to imminent node shutdown.",
          },
        });
      } else {
        await this.#writeStatus({ final: { reason: "", message: "" } });
        await this.#deleteObject();
      }
    }
    this.#lifecycle = "done";
    this.#log.info("pod terminated");
    this.#resolveDone();
  }

  async #deleteObject(): Promise<void> {
    const { namespace, name } = this.#pod.metadata;
    try {
      await this.#deps.api.request("DELETE", `/api/v1/namespaces/${namespace}/pods/${name}`, {
        body: {
          apiVersion: "v1",
          kind: "DeleteOptions",
          gracePeriodSeconds: 0,
          preconditions: { uid: this.uid },
        },
      });
    } catch (err) {
      if (!isStatus(err, 404, 409)) this.#log.warn({ err: String(err) }, "pod deletion failed");
    }
  }
}
