// The contract between the cni-shim (a chained CNI plugin on the host) and the
// node agent: JSON over HTTP/1.1 on a unix socket. Types and pure validation
// only, so the shim's single executable bundles no gRPC or protobuf code.
import { isIP } from "node:net";

/** Where the agent listens and the shim connects, as the host sees it. */
export const CNI_SOCKET_PATH = "/var/run/trellis/cni.sock";

/**
 * File the agent rewrites (atomically) whenever the set of captured
 * namespaces changes. The shim reads it only when the agent cannot be reached:
 * a pod of a namespace listed there must not start uncaptured (fail closed),
 * a pod of any other namespace starts without waiting on the agent.
 */
export const CAPTURED_NAMESPACES_FILE = "/var/run/trellis/captured-namespaces.json";

/** Path of the one endpoint: `POST /v1/cni` with a CniRequest body. */
export const CNI_REQUEST_PATH = "/v1/cni";

export type CniCommand = "ADD" | "DEL" | "CHECK";

export interface CniRequest {
  command: CniCommand;
  containerId: string;
  /** Path of the pod's network namespace (may be empty on DEL). */
  netns: string;
  ifName: string;
  podNamespace: string;
  podName: string;
  podUid: string;
  /** Pod addresses from prevResult, without prefix length. Empty on DEL when unknown. */
  ips: string[];
}

/**
 * 200 answer. On ADD it comes only once the pod's capture state is
 * programmed in nftables; on CHECK it confirms the programmed state.
 */
export interface CniResponse {
  /** Whether the pod's traffic is captured (false: namespace not labelled, or opt-out pod). */
  captured: boolean;
}

/** Any non-200 answer carries this body; the shim reports `error` as the CNI error message. */
export interface CniErrorResponse {
  error: string;
}

/** Written to CAPTURED_NAMESPACES_FILE. */
export interface CapturedNamespacesFile {
  /** Sorted namespace names labelled `trellis.dev/capture=enabled`. */
  namespaces: string[];
  /** When the agent wrote the file (RFC 3339). */
  updatedAt: string;
}

/** Validates a decoded request body; returns the reason it is unusable, or undefined. */
export function cniRequestProblem(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return "body must be a JSON object";
  const b = body as Record<string, unknown>;
  if (b.command !== "ADD" && b.command !== "DEL" && b.command !== "CHECK")
    return "command must be ADD, DEL or CHECK";
  for (const k of ["containerId", "netns", "ifName", "podNamespace", "podName", "podUid"] as const)
    if (typeof b[k] !== "string") return `${k} must be a string`;
  if (!Array.isArray(b.ips) || !b.ips.every((ip) => typeof ip === "string"))
    return "ips must be an array of strings";
  // Addresses end up in nftables: refuse anything that does not parse as one.
  const bad = (b.ips as string[]).find((ip) => isIP(ip) === 0);
  if (bad !== undefined) return `ips: ${JSON.stringify(bad)} is not an IP address`;
  if (b.command !== "DEL" && (b.podNamespace === "" || b.podName === ""))
    return "podNamespace and podName are required (K8S_POD_NAMESPACE/K8S_POD_NAME in CNI_ARGS)";
  return undefined;
}
