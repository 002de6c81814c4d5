// Lease-based leader election (coordination.k8s.io/v1) with client-go's
// leaderelection semantics:
// - A Lease held by someone else counts as expired only after it has stayed
//   unchanged for leaseDurationSeconds *as measured on this replica's clock*
//   from when this replica first saw that record. Comparing renewTime with the
//   local clock instead would let a skewed clock steal a live lease.
// - The holder acts as leader only while its last successful renewal is
//   younger than the renew deadline (lease duration minus one renew period),
//   so a leader cut off from the API stops writing before anyone else may
//   take over.
// - Optimistic concurrency (resourceVersion on replace) settles races; the
//   loser gets 409 and stays a follower.
// - stop() releases the Lease (empty holder), so a standby takes over at its
//   next attempt instead of after the lease duration.
import { CoordinationV1Api, type KubeConfig, type V1Lease } from "@kubernetes/client-node";
import type { Logger } from "pino";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds: number;
  renewEverySeconds: number;
}

export interface LeaderElection {
  /** True while this replica holds a Lease it renewed within the renew deadline. */
  isLeader(): boolean;
  stop(): Promise<void>;
}

/**
 * Lease times are MicroTime, which the apiserver parses with exactly six
 * fractional digits. client-node types them as Date but (having no V1MicroTime
 * serialiser) passes values through untouched, so a Date would go out with
 * toISOString's three digits and get 400; hand it a padded string instead.
 */
function microTime(ms: number): Date {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z") as unknown as Date;
}

function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/** What identifies a version of the record, to notice that the holder renewed it. */
function recordKey(lease: V1Lease): string {
  const s = lease.spec;
  return JSON.stringify([s?.holderIdentity ?? "", String(s?.renewTime ?? ""), s?.leaseTransitions ?? 0]);
}

export function startLeaderElection(
  kc: KubeConfig,
  opts: LeaderElectionOptions,
  log: Logger,
  onChange: (leader: boolean) => void,
  now: () => number = Date.now,
): LeaderElection {
  const api = kc.makeApiClient(CoordinationV1Api);
  const durationMs = opts.leaseDurationSeconds * 1000;
  const renewMs = opts.renewEverySeconds * 1000;
  const renewDeadlineMs = Math.max(renewMs, durationMs - renewMs);
  let leader = false;
  let renewedAt = 0;
  let observed: { key: string; at: number } | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;

  const setLeader = (value: boolean) => {
    if (value === leader) return;
    leader = value;
    log.info({ lease: `${opts.namespace}/${opts.name}`, leader }, "leadership changed");
    onChange(leader);
  };

  const renewed = () => {
    renewedAt = now();
    setLeader(true);
    // Step down on our own if renewals stop succeeding (API unreachable or hung).
    clearTimeout(deadlineTimer);
    deadlineTimer = setTimeout(() => {
      if (leader && now() - renewedAt >= renewDeadlineMs) {
        log.warn({ lease: `${opts.namespace}/${opts.name}` }, "lease not renewed within the deadline");
        setLeader(false);
      }
    }, renewDeadlineMs);
  };

  const attempt = async () => {
    const t = now();
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name: opts.name, namespace: opts.namespace });
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
    }
    if (!lease) {
      await api.createNamespacedLease({
        namespace: opts.namespace,
        body: {
          metadata: { name: opts.name, namespace: opts.namespace },
          spec: {
            holderIdentity: opts.identity,
            leaseDurationSeconds: opts.leaseDurationSeconds,
            acquireTime: microTime(t),
            renewTime: microTime(t),
            leaseTransitions: 0,
          },
        },
      });
      renewed();
      return;
    }
    const key = recordKey(lease);
    if (observed?.key !== key) observed = { key, at: t };
    const holder = lease.spec?.holderIdentity ?? "";
    const mine = holder === opts.identity;
    const holderDurationMs = (lease.spec?.leaseDurationSeconds ?? opts.leaseDurationSeconds) * 1000;
    if (!mine && holder !== "" && observed.at + holderDurationMs > t) {
      setLeader(false);
      return;
    }
    const body: V1Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: opts.identity,
        leaseDurationSeconds: opts.leaseDurationSeconds,
        acquireTime: mine && lease.spec?.acquireTime ? microTimeOf(lease.spec.acquireTime) : microTime(t),
        renewTime: microTime(t),
        leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    if (!mine) log.info({ previousHolder: holder || "(released)" }, "taking over the lease");
    const written = await api.replaceNamespacedLease({ name: opts.name, namespace: opts.namespace, body });
    observed = { key: recordKey(written), at: t };
    renewed();
  };

  const loop = async () => {
    if (stopped) return;
    try {
      await attempt();
    } catch (err) {
      // A lost race (409) means someone else holds the lease now; anything
      // else (API unreachable) is retried, and the renew deadline decides
      // when a leader that keeps failing steps down.
      const code = httpCode(err);
      if (code === 409) setLeader(false);
      log.warn({ code, err: err instanceof Error ? err.message : String(err) }, "lease attempt failed");
    }
    if (!stopped) timer = setTimeout(loop, renewMs);
  };
  void loop();

  return {
    isLeader: () => leader && now() - renewedAt < renewDeadlineMs,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      clearTimeout(deadlineTimer);
      if (!leader) return;
      setLeader(false);
      try {
        const lease = await api.readNamespacedLease({ name: opts.name, namespace: opts.namespace });
        if (lease.spec?.holderIdentity === opts.identity) {
          await api.replaceNamespacedLease({
            name: opts.name,
            namespace: opts.namespace,
            body: {
              ...lease,
              spec: {
                ...lease.spec,
                holderIdentity: "",
                leaseDurationSeconds: 1,
                acquireTime: lease.spec.acquireTime ? microTimeOf(lease.spec.acquireTime) : undefined,
                renewTime: microTime(now()),
              },
            },
          });
        }
      } catch {
        // Best effort: the lease expires by itself.
      }
    },
  };
}

/** A MicroTime read back from the API (string or Date, depending on the path) in the wire form. */
function microTimeOf(value: Date | string): Date {
  // A string is exactly what the API sent (microseconds intact): send it back as is.
  return typeof value === "string" ? (value as unknown as Date) : microTime(value.getTime());
}
