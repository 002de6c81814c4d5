// Wires the stages: informers → object store → (debounced) computeTables →
// versioned tables (for distribution) and route statuses (for the leader's
// status writer). The pure core does all GAMMA work; this file only schedules.
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { computeTables } from "./compute-tables.ts";
import { VersionedTables } from "./distribute/versioned-tables.ts";
import { startInformers } from "./kube/informers.ts";
import { type LeaderElection, startLeaderElection } from "./kube/leader-election.ts";
import { ObjectStore } from "./kube/object-store.ts";
import { makeStatusWriter, type RouteObjectView } from "./kube/status-writer.ts";
import { WATCHED_RESOURCES } from "./kube/watched-resources.ts";
import type { ControllerMetrics } from "./metrics.ts";
import type { Resolution } from "./resolve/resolution.ts";

export interface ControllerOptions {
  kc: KubeConfig;
  log: Logger;
  metrics: ControllerMetrics;
  /** Quiet time after the last change before recomputing. */
  debounceMs: number;
  /** Upper bound on how long a stream of changes can delay a recompute. */
  maxDelayMs: number;
  lease: { namespace: string; name: string; identity: string; durationSeconds: number; renewSeconds: number };
  /** Called after each recompute with the nodes whose table got a new version. */
  onTables?: (changed: readonly string[], removed: readonly string[]) => void;
}

export interface RunningController {
  readonly tables: VersionedTables;
  resolution(): Resolution | undefined;
  ready(): boolean;
  isLeader(): boolean;
  stop(): Promise<void>;
}

export function startController(opts: ControllerOptions): RunningController {
  const { log, metrics } = opts;
  const store = new ObjectStore();
  const tables = new VersionedTables(Date.now());
  const writeStatuses = makeStatusWriter(opts.kc, log);
  let resolution: Resolution | undefined;
  let computed = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let firstPending = 0;
  let writing: Promise<void> | undefined;
  let writeAgain = false;

  const informers = startInformers(opts.kc, WATCHED_RESOURCES, store, log, (kind) => {
    metrics.errors.inc({ stage: "watch" });
    log.debug({ kind }, "watch error counted");
  });

  const routeView = (kind: string, namespace: string, name: string): RouteObjectView | undefined =>
    store.get(kind, namespace, name) as RouteObjectView | undefined;

  const writeStatusesIfLeader = () => {
    if (!election.isLeader() || !resolution) return;
    if (writing) {
      writeAgain = true;
      return;
    }
    const statuses = resolution.statuses;
    writing = writeStatuses(statuses, routeView)
      .then((r) => {
        if (r.patched) metrics.statusPatches.inc({ result: "ok" }, r.patched);
        if (r.conflicts) metrics.statusPatches.inc({ result: "conflict" }, r.conflicts);
        if (r.errors) {
          metrics.statusPatches.inc({ result: "error" }, r.errors);
          metrics.errors.inc({ stage: "status" }, r.errors);
        }
      })
      .catch((err: unknown) => {
        metrics.errors.inc({ stage: "status" });
        log.error({ err: err instanceof Error ? err.message : String(err) }, "status writer failed");
      })
      .finally(() => {
        writing = undefined;
        if (writeAgain) {
          writeAgain = false;
          writeStatusesIfLeader();
        }
      });
  };

  const recompute = () => {
    timer = undefined;
    firstPending = 0;
    // A partial view would report parents as missing and drop routes from tables.
    if (stopped || !informers.synced()) return;
    const end = metrics.recomputeSeconds.startTimer();
    try {
      const result = computeTables(store.snapshot());
      resolution = result.resolution;
      const { changed, removed } = tables.update(result.tables);
      computed = true;
      metrics.tables.set(tables.nodes().length);
      metrics.tableVersions.inc(changed.length);
      for (const [kind, n] of store.countByKind()) metrics.watchedObjects.set({ kind }, n);
      for (const issue of result.snapshot.issues) log.debug({ issue }, "object skipped");
      if (changed.length || removed.length) {
        log.info({ changed, removed, seconds: end() }, "node tables recomputed");
      } else {
        end();
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

  const schedule = () => {
    if (stopped) return;
    const now = Date.now();
    if (!firstPending) firstPending = now;
    clearTimeout(timer);
    const wait = Math.max(0, Math.min(opts.debounceMs, firstPending + opts.maxDelayMs - now));
    timer = setTimeout(recompute, wait);
  };
  store.onChange(schedule);
  // Informers that finish their first list without any object still need a first compute.
  const syncPoll = setInterval(() => {
    if (informers.synced() && !computed) schedule();
  }, 100);

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
    tables,
    resolution: () => resolution,
    ready: () => computed,
    isLeader: () => election.isLeader(),
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      clearInterval(syncPoll);
      await election.stop();
      await informers.stop();
      await writing;
    },
  };
}
