// How a container process is started, as a pure function of its inputs:
//
//   ip netns exec <netns> unshare --uts -- sh -c <LAUNCHER> sh <hostname> <workdir> \
//       [<src> <dst> <ro|rw>]... -- <argv>...
//
// `ip netns exec` enters the network namespace, unshares a private mount
// namespace (rslave, so nothing propagates back) and bind-mounts
// /etc/netns/<netns>/{hosts,resolv.conf} over /etc. `unshare --uts` gives the
// pod its own hostname. The launcher then bind-mounts the pod's volumes at
// their mountPaths and execs the container's argv, so the container process
// keeps the PID we spawned. Paths travel as positional arguments, never
// spliced into the script. Mount points that do not exist on the host are
// created there (empty directories/files), as nothing else can hold them.
import { join, normalize } from "node:path";
import { expandVars } from "./command.ts";
import type { Container, Pod } from "./k8s-types.ts";

export const LAUNCHER = [
  "set -e",
  'hostname "$1"',
  'workdir="$2"',
  "shift 2",
  'while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do',
  '  src="$1"; dst="$2"; mode="$3"; shift 3',
  '  if [ -d "$src" ]; then mkdir -p "$dst"; else mkdir -p "$(dirname "$dst")"; [ -e "$dst" ] || : >"$dst"; fi',
  '  mount --bind "$src" "$dst"',
  '  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$dst"; fi',
  "done",
  "shift",
  'cd "$workdir"',
  'exec "$@"',
].join("\n");

export type Mount = { source: string; target: string; readOnly: boolean };

/** The pod's hostname: spec.hostname or the pod name, cut to 63 characters. */
export function podHostname(pod: Pod): string {
  return (pod.spec.hostname || pod.metadata.name || "pod").slice(0, 63).replace(/[-.]+$/, "");
}

function safeSubPath(p: string): string {
  const n = normalize(p);
  if (p.startsWith("/") || n.split("/").includes("..")) throw new Error(`invalid subPath ${p}`);
  return n;
}

/** System directories a mount must never hide (there is no container root filesystem). */
export const SYSTEM_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/proc", "/sys", "/dev"];

function hides(target: string, path: string): boolean {
  const t = target.replace(/\/+$/, "") || "/";
  return t === "/" || path === t || path.startsWith(`${t}/`);
}

/**
 * The bind mounts of a container, parents before children (as runtimes sort
 * them by path depth). `sourceOf` maps a volume name to its host path.
 *
 * Containers share the host's root filesystem, so a mountPath that is (an
 * ancestor of) a path the container or the box needs would hide it: the repo
 * (node scripts), the node binary, the node's state dir (volume sources),
 * system directories, or another mount's source. Such mounts are refused.
 */
export function containerMounts(
  container: Container,
  sourceOf: (volume: string) => string | undefined,
  env: Readonly<Record<string, string>>,
  protectedPaths: readonly string[] = [],
): Mount[] {
  const mounts: Mount[] = [];
  for (const vm of container.volumeMounts ?? []) {
    const source = sourceOf(vm.name);
    if (source === undefined) throw new Error(`volume ${vm.name} is not defined in the pod`);
    let sub = vm.subPath ?? "";
    if (vm.subPathExpr) sub = expandVars(vm.subPathExpr, (n) => env[n]);
    mounts.push({
      source: sub ? join(source, safeSubPath(sub)) : source,
      target: normalize(vm.mountPath),
      readOnly: vm.readOnly ?? false,
    });
  }
  const keep = [...SYSTEM_PATHS, ...protectedPaths];
  for (const m of mounts) {
    // a mount may cover its own source (hostPath /x at /x is common), not anyone else's
    const others = mounts.filter((o) => o.source !== m.source).map((o) => o.source);
    const hidden = [...keep, ...others].find((p) => hides(m.target, p));
    if (hidden !== undefined) {
      throw new Error(
        `mountPath ${m.target} would hide ${hidden} on this host (the cluster-in-a-box has no container root filesystem); use another path`,
      );
    }
  }
  const depth = (p: string) => p.split("/").filter(Boolean).length;
  return mounts
    .map((m, i) => ({ m, i }))
    .sort((a, b) => depth(a.m.target) - depth(b.m.target) || a.i - b.i)
    .map((x) => x.m);
}

export type LaunchInput = {
  netns: string;
  hostname: string;
  workingDir: string;
  mounts: readonly Mount[];
  argv: readonly string[];
};

/** argv of the process to spawn (argv[0] = "ip"). */
export function launchArgv(input: LaunchInput): string[] {
  const mountArgs = input.mounts.flatMap((m) => [m.source, m.target, m.readOnly ? "ro" : "rw"]);
  return [
    "ip",
    "netns",
    "exec",
    input.netns,
    "unshare",
    "--uts",
    "--",
    "sh",
    "-c",
    LAUNCHER,
    "sh",
    input.hostname,
    input.workingDir,
    ...mountArgs,
    "--",
    ...input.argv,
  ];
}
