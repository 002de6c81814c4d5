// The network config the runtime writes on stdin: the conflist's cniVersion
// and name, this plugin's own entry from the conflist, and (when chained) the
// previous plugin's result.

import { CAPTURED_NAMESPACES_FILE, CNI_SOCKET_PATH } from "@trellis/api/cni";
import { ErrorCode, isSupportedVersion } from "./cni-result.ts";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Kubelet's runtime request timeout is 2 minutes and containerd/CRI-O give a
 * sandbox about as long; a wait close to that would be cut off by the runtime
 * with a less useful error than ours.
 */
export const MAX_TIMEOUT_SECONDS = 100;

export interface ShimSettings {
  socketPath: string;
  capturedNamespacesFile: string;
  /** Longest wait for the agent's answer when the pod's namespace is captured. */
  timeoutSeconds: number;
  /** Longest wait for pods of namespaces not listed as captured: they must not queue behind the agent. */
  uncapturedTimeoutSeconds: number;
  logLevel: LogLevel;
  logFile: string | undefined;
}

export const DEFAULT_SETTINGS: ShimSettings = {
  socketPath: CNI_SOCKET_PATH,
  capturedNamespacesFile: CAPTURED_NAMESPACES_FILE,
  timeoutSeconds: 30,
  uncapturedTimeoutSeconds: 2,
  logLevel: "info",
  logFile: undefined,
};

export interface NetConf {
  cniVersion: string;
  name: string;
  prevResult: Record<string, unknown> | undefined;
  settings: ShimSettings;
}

export type NetConfResult =
  | { ok: true; conf: NetConf }
  | { ok: false; code: number; msg: string; details?: string; cniVersion?: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The plugin keys of a config entry, defaults filled in; a string says what is wrong. */
export function readSettings(c: Record<string, unknown>): string | ShimSettings {
  const s = { ...DEFAULT_SETTINGS };
  for (const k of ["socketPath", "capturedNamespacesFile", "logFile"] as const) {
    const v = c[k];
    if (v === undefined) continue;
    if (typeof v !== "string" || v === "") return `${k} must be a non-empty string`;
    s[k] = v;
  }
  for (const k of ["timeoutSeconds", "uncapturedTimeoutSeconds"] as const) {
    const v = c[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !(v > 0) || v > MAX_TIMEOUT_SECONDS)
      return `${k} must be a number of seconds in (0, ${MAX_TIMEOUT_SECONDS}]`;
    s[k] = v;
  }
  if (c.logLevel !== undefined) {
    if (!(LOG_LEVELS as readonly unknown[]).includes(c.logLevel))
      return `logLevel must be one of ${LOG_LEVELS.join(", ")}`;
    s.logLevel = c.logLevel as LogLevel;
  }
  return s;
}

export function parseNetConf(stdin: string): NetConfResult {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (e) {
    return {
      ok: false,
      code: ErrorCode.decodeFailure,
      msg: "network config on stdin is not JSON",
      details: String(e),
    };
  }
  if (!isObject(raw))
    return { ok: false, code: ErrorCode.decodeFailure, msg: "network config must be a JSON object" };
  if (!isSupportedVersion(raw.cniVersion))
    return {
      ok: false,
      code: ErrorCode.incompatibleVersion,
      msg: `unsupported cniVersion ${JSON.stringify(raw.cniVersion)}`,
    };
  const cniVersion = raw.cniVersion;
  const settings = readSettings(raw);
  if (typeof settings === "string")
    return { ok: false, code: ErrorCode.invalidNetworkConfig, msg: settings, cniVersion };
  const prevResult = raw.prevResult;
  if (prevResult !== undefined && !isObject(prevResult))
    return {
      ok: false,
      code: ErrorCode.invalidNetworkConfig,
      msg: "prevResult must be an object",
      cniVersion,
    };
  return {
    ok: true,
    conf: {
      cniVersion,
      name: typeof raw.name === "string" ? raw.name : "",
      prevResult,
      settings,
    },
  };
}
