// Wires the stages: informers → pending changes → (debounced) RoutingState →
// versioned tables (for distribution) and route statuses (for the leader's
// status writer). The pure core does all GAMMA work; this file schedules.
import type { KubeConfig } from "@kubernetes/client-node";
import type { AgentSettings, NodeTable, TableVersion } from "@trellis/api";
import type { Logger } from "pino";
import { type CanaryObject, overlayRoute, overlaysFor, overlayWeight, readCanary } from "./canary/canary.ts";
import { type VersionedTable, VersionedTables } from "./distribute/versioned-tables.ts";
import { startInformers } from "./kube/informers.ts";
import { type LeaderElection, startLeaderElection } from "./kube/leader-election.ts";
import { makeStatusWriter } from "./kube/status-writer.ts";
import { CANARY_RESOURCE, WATCHED_RESOURCES } from "./kube/watched-resources.ts";
import type { ControllerMetrics } from "./metrics.ts";
import type { Resolution } from "./resolve/resolution.ts";
import { type ObjectChange, RoutingState } from "./routing-state.ts";
import { objectIdentity } from "./snapshot/build-snapshot.ts";

export interface ControllerOptions {
  kc: KubeConfig;
  log: Logger;
  metrics: ControllerMetrics;
  /** Quiet time after the last change before recomputing. */
  debounceMs: number;
  /** Upper bound on how long a stream of changes can delay a recompute. */
  maxDelayMs: number;
  lease: { namespace: string; name: string; identity: string; durationSeconds: number; renewSeconds: number };
  /** Agent settings every table carries (listener port range, fail mode); defaults when absent. */
  agentSettings?: AgentSettings;
  /** Watch Canaries (the CRD must be installed) and overlay their weights on their routes. */
  canaries?: boolean;
  /** Called after each recompute with the nodes whose table got a new version, and the nodes that are gone. */
  onTables?: (changed: readonly string[], removed: readonly string[]) => void;
}

export interface RunningController {
  /** Node names with a table, sorted. */
  nodes(): string[];
  table(node: string): VersionedTable | undefined;
  /** Every node's current (versioned) table. */
  tables(): ReadonlyMap<string, NodeTable>;
  /** The current resolution (built on demand; for inspection). */
  resolution(): Resolution;
  ready(): boolean;
  isLeader(): boolean;
  /** Canaries as last seen, sorted by namespace/name. */
  canaries(): CanaryObject[];
  /** A route as the informer last saw it (as the user wrote it, never overlaid). */
  route(kind: string, namespace: string, name: string): Record<string, unknown> | undefined;
  /**
   * The canary weight the tables carry for a Canary ("ns/name") and, per node,
   * the first table version that carries it; undefined before any recompute saw it.
   */
  canaryApplied(key: string): CanaryApplied | undefined;
  stop(): Promise<void>;
}

export interface CanaryApplied {
  /** Overlay weight (undefined: route as written). */
  readonly weight: number | undefined;
  readonly versions: ReadonlyMap<string, TableVersion>;
}

const STATUS_RETRY_MIN_MS = 1000;
const STATUS_RETRY_MAX_MS = 30_000;

export function startController(opts: ControllerOptions): RunningController {
  const { log, metrics } = opts;
  const state = new RoutingState(opts.agentSettings ? { settings: opts.agentSettings } : {});
  const tables = new VersionedTables(Date.now());
  const writer = makeStatusWriter(opts.kc, log);
  /** Changes not yet applied, coalesced per object (the last one wins). */
  const pending = new Map<string, ObjectChange>();
  /** Routes as the informers last saw them, for the status writer. */
  const routes = new Map<string, Record<string, unknown>>();
  /** Canaries by "ns/name". */
  const canaries = new Map<string, CanaryObject>();
  /** Overlay weights handed to RoutingState since the last recompute, by Canary. */
  const overlaysPending = new Map<string, number | undefined>();
  /** Per Canary: the weight the tables carry and the first versions carrying it. */
  const canaryApplied = new Map<string, CanaryApplied>();
  let computed = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let firstPending = 0;
  let writing: Promise<void> | undefined;
  let writeAgain = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryDelay = STATUS_RETRY_MIN_MS;

  /** Hands a route to RoutingState with the weights of the Canaries targeting it overlaid. */
  const submitRoute = (kind: string, namespace: string, name: string) => {
    for (const c of canaries.values()) {
      if (c.spec && c.namespace === namespace && c.spec.targetKind === kind && c.spec.targetName === name)
        overlaysPending.set(`${c.namespace}/${c.name}`, overlayWeight(c.status));
    }
    const obj = routes.get(`${kind}/${namespace}/${name}`);
    const id = obj && objectIdentity(obj);
    if (!obj || !id) return;
    pending.set(id.key, { object: overlayRoute(obj, overlaysFor(canaries.values(), kind, namespace, name)) });
  };
  const canaryChanged = (key: string, before: CanaryObject | undefined, after: CanaryObject | undefined) => {
    const target = (c: CanaryObject | undefined) =>
      c?.spec ? `${c.spec.targetKind}/${c.namespace}/${c.spec.targetName}` : undefined;
    const overlay = (c: CanaryObject | undefined) =>
      c?.spec
        ? JSON.stringify([overlayWeight(c.status), c.spec.rule, c.spec.stable, c.spec.canary])
        : undefined;
    if (target(before) === target(after) && overlay(before) === overlay(after)) return false;
    if (!after) overlaysPending.set(key, undefined);
    for (const c of [before, after])
      if (c?.spec) submitRoute(c.spec.targetKind, c.namespace, c.spec.targetName);
    return true;
  };

  const informers = startInformers(
    opts.kc,
    opts.canaries ? [...WATCHED_RESOURCES, CANARY_RESOURCE] : WATCHED_RESOURCES,
    {
      upsert: (resource, obj) => {
        const id = objectIdentity(obj);
        if (!id) return;
        if (resource.kind === "Canary") {
          const c = readCanary(obj);
          if (!c) return;
          const key = `${c.namespace}/${c.name}`;
          const before = canaries.get(key);
          canaries.set(key, c);
          if (canaryChanged(key, before, c)) schedule();
          return;
        }
        if (resource.kind === "HTTPRoute" || resource.kind === "GRPCRoute") {
          routes.set(`${resource.kind}/${id.namespace}/${id.name}`, obj);
          submitRoute(resource.kind, id.namespace, id.name);
        } else pending.set(id.key, { object: obj });
        schedule();
      },
      remove: (resource, obj) => {
        const id = objectIdentity(obj);
        if (!id) return;
        if (resource.kind === "Canary") {
          const key = `${id.namespace}/${id.name}`;
          const before = canaries.get(key);
          canaries.delete(key);
          canaryApplied.delete(key);
          if (canaryChanged(key, before, undefined)) schedule();
          return;
        }
        routes.delete(`${resource.kind}/${id.namespace}/${id.name}`);
        pending.set(id.key, { object: obj, deleted: true });
        schedule();
      },
      synced: () => {
        log.info("every watched kind is listed");
        schedule();
      },
      error: () => {
        metrics.errors.inc({ stage: "watch" });
      },
    },
    log,
  );

  const writeStatusesIfLeader = () => {
    if (stopped || !election.isLeader() || !computed) return;
    if (writing) {
      writeAgain = true;
      return;
    }
    clearTimeout(retryTimer);
    writing = writer
      .write(
        state.statuses(),
        (kind, namespace, name) => routes.get(`${kind}/${namespace}/${name}`),
        () => election.isLeader(),
      )
      .then((r) => {
        if (r.patched) metrics.statusPatches.inc({ result: "ok" }, r.patched);
        if (r.conflicts) metrics.statusPatches.inc({ result: "conflict" }, r.conflicts);
        if (r.errors) {
          metrics.statusPatches.inc({ result: "error" }, r.errors);
          metrics.errors.inc({ stage: "status" }, r.errors);
        }
        // Conflicts resolve themselves with the next watch event; failed
        // writes get no event, so retry them with backoff.
        if (r.errors) scheduleRetry();
        else retryDelay = STATUS_RETRY_MIN_MS;
      })
      .catch((err: unknown) => {
        metrics.errors.inc({ stage: "status" });
        log.error({ err: err instanceof Error ? err.message : String(err) }, "status writer failed");
        scheduleRetry();
      })
      .finally(() => {
        writing = undefined;
        if (writeAgain) {
          writeAgain = false;
          writeStatusesIfLeader();
        }
      });
  };

  const scheduleRetry = () => {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(writeStatusesIfLeader, retryDelay);
    retryDelay = Math.min(STATUS_RETRY_MAX_MS, retryDelay * 2);
  };

  const recompute = () => {
    timer = undefined;
    firstPending = 0;
    // A partial view would report parents as missing and drop routes from tables.
    if (stopped || !informers.synced()) return;
    const end = metrics.recomputeSeconds.startTimer();
    const changes = [...pending.values()];
    pending.clear();
    try {
      const update = state.apply(changes);
      const { changed, removed } = tables.update(state.tables());
      if (overlaysPending.size) {
        const versions = new Map(tables.nodes().map((n) => [n, tables.get(n)!.table.version!] as const));
        for (const [key, weight] of overlaysPending) {
          if (!canaries.has(key)) continue;
          const prev = canaryApplied.get(key);
          if (!prev || prev.weight !== weight) canaryApplied.set(key, { weight, versions });
        }
        overlaysPending.clear();
      }
      const seconds = end();
      computed = true;
      metrics.tables.set(tables.nodes().length);
      metrics.tableVersions.inc(changed.length);
      const counts = state.counts();
      for (const r of WATCHED_RESOURCES)
        metrics.watchedObjects.set({ kind: r.kind }, counts.get(r.kind) ?? 0);
      for (const issue of update.issues) log.debug({ issue }, "object skipped or partly read");
      if (changed.length || removed.length || update.changedRoutes.length) {
        log.info(
          { objects: changes.length, changed, removed, routeStatuses: update.changedRoutes.length, seconds },
          "node tables recomputed",
        );
      }
      opts.onTables?.(changed, removed);
    } catch (err) {
      end();
      // The pure core must not throw on any input; if it does, keep the last
      // good tables and say loudly which invariant broke.
      metrics.errors.inc({ stage: "recompute" });
      log.error({ err: err instanceof Error ? (err.stack ?? err.message) : String(err) }, "recompute failed");
      return;
    }
    writeStatusesIfLeader();
  };

  function schedule() {
    if (stopped) return;
    const now = Date.now();
    if (!firstPending) firstPending = now;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(opts.debounceMs, firstPending + opts.maxDelayMs - now));
    timer = setTimeout(recompute, wait);
  }

  const election: LeaderElection = startLeaderElection(
    opts.kc,
    {
      namespace: opts.lease.namespace,
      name: opts.lease.name,
      identity: opts.lease.identity,
      leaseDurationSeconds: opts.lease.durationSeconds,
      renewEverySeconds: opts.lease.renewSeconds,
    },
    log,
    (leader) => {
      metrics.leader.set(leader ? 1 : 0);
      if (leader) writeStatusesIfLeader();
    },
  );

  return {
    nodes: () => tables.nodes(),
    table: (node) => tables.get(node),
    tables: () => new Map(tables.nodes().map((n) => [n, tables.get(n)!.table])),
    resolution: () => state.resolution(),
    ready: () => computed,
    isLeader: () => election.isLeader(),
    canaries: () => [...canaries.keys()].sort().map((k) => canaries.get(k)!),
    route: (kind, namespace, name) => routes.get(`${kind}/${namespace}/${name}`),
    canaryApplied: (key) => canaryApplied.get(key),
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(retryTimer);
      await election.stop();
      await informers.stop();
      await writing;
    },
  };
}
