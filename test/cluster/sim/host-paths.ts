// Simulated nodes share the machine's filesystem, but some host paths belong
// to one node on a real cluster: its CNI configuration and plugins, and the
// Trellis runtime directory (the agent's socket and state). Those paths map
// to directories under the node's state dir, for hostPath volumes and for
// the CNI plugins the node runs, so two nodes never see each other's files.
import { join } from "node:path";

export type HostPathMapping = { hostPath: string; nodePath: string };

export function nodeHostPaths(stateDir: string): HostPathMapping[] {
  return [
    { hostPath: "/etc/cni/net.d", nodePath: join(stateDir, "cni", "net.d") },
    { hostPath: "/opt/cni/bin", nodePath: join(stateDir, "cni", "bin") },
    { hostPath: "/var/run/trellis", nodePath: join(stateDir, "run", "trellis") },
    { hostPath: "/run/trellis", nodePath: join(stateDir, "run", "trellis") },
    { hostPath: "/var/lib/trellis", nodePath: join(stateDir, "lib", "trellis") },
    // The runtime's CNI result cache (cni-runtime.ts keeps it there).
    { hostPath: "/var/lib/cni", nodePath: join(stateDir, "cni", "cache") },
  ];
}

/** Where a host path of this node really is (itself when no mapping covers it). */
export function resolveHostPath(mappings: readonly HostPathMapping[], path: string): string {
  const p = path.replace(/\/+$/, "") || "/";
  for (const m of mappings) {
    if (p === m.hostPath) return m.nodePath;
    if (p.startsWith(`${m.hostPath}/`)) return join(m.nodePath, p.slice(m.hostPath.length + 1));
  }
  return path;
}
