// Lease-based leader election (coordination.k8s.io/v1), the same protocol
// client-go's leaderelection uses: the holder renews spec.renewTime; anyone
// may take the lease once it is older than leaseDurationSeconds. Optimistic
// concurrency (resourceVersion on replace) makes takeovers race-free.
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
  isLeader(): boolean;
  stop(): Promise<void>;
}

/**
 * Lease times are MicroTime, which the apiserver parses with exactly six
 * fractional digits; the client serialises Dates with toISOString's three and
 * gets 400. It passes strings through untouched, so hand it a padded string.
 */
function microTime(d: Date): Date {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z") as unknown as Date;
}

function httpCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

export function startLeaderElection(
  kc: KubeConfig,
  opts: LeaderElectionOptions,
  log: Logger,
  onChange: (leader: boolean) => void,
): LeaderElection {
  const api = kc.makeApiClient(CoordinationV1Api);
  let leader = false;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const setLeader = (value: boolean) => {
    if (value === leader) return;
    leader = value;
    log.info(
      { identity: opts.identity, lease: `${opts.namespace}/${opts.name}`, leader },
      "leadership changed",
    );
    onChange(leader);
  };

  const attempt = async () => {
    const now = new Date();
    let lease: V1Lease | undefined;
    try {
      lease = await api.readNamespacedLease({ name: opts.name, namespace: opts.namespace });
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
    }
    const spec = {
      holderIdentity: opts.identity,
      leaseDurationSeconds: opts.leaseDurationSeconds,
      renewTime: microTime(now),
      acquireTime: microTime(now),
    };
    if (!lease) {
      await api.createNamespacedLease({
        namespace: opts.namespace,
        body: { metadata: { name: opts.name }, spec },
      });
      setLeader(true);
      return;
    }
    const holder = lease.spec?.holderIdentity;
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
    const duration = (lease.spec?.leaseDurationSeconds ?? opts.leaseDurationSeconds) * 1000;
    const mine = holder === opts.identity;
    if (!mine && holder && renewed + duration > now.getTime()) {
      setLeader(false);
      return;
    }
    const body: V1Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        ...spec,
        acquireTime: microTime(mine && lease.spec?.acquireTime ? new Date(lease.spec.acquireTime) : now),
        leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    await api.replaceNamespacedLease({ name: opts.name, namespace: opts.namespace, body });
    setLeader(true);
  };

  const loop = async () => {
    if (stopped) return;
    try {
      await attempt();
    } catch (err) {
      // A lost race (409) or an unreachable API: we cannot be sure we still
      // hold the lease, so stop acting as leader until the next success.
      log.warn({ err: err instanceof Error ? err.message : String(err) }, "lease renewal failed");
      setLeader(false);
    }
    if (!stopped) timer = setTimeout(loop, opts.renewEverySeconds * 1000);
  };
  void loop();

  return {
    isLeader: () => leader,
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      if (!leader) return;
      // Release so a standby takes over at once instead of after the lease duration.
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
                acquireTime: lease.spec.acquireTime ? microTime(new Date(lease.spec.acquireTime)) : undefined,
                renewTime: microTime(new Date()),
              },
            },
          });
        }
      } catch {
        // best effort: the lease expires by itself
      }
      setLeader(false);
    },
  };
}
