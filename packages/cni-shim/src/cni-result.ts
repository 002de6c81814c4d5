// What the plugin prints on stdout: the CNI spec's result, error and version
// shapes. stdout carries exactly one of these and nothing else, because the
// runtime parses it as the plugin's answer.

/** Versions whose result shape is prevResult-compatible with what we pass through. */
export const SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
export const DEFAULT_VERSION = "1.0.0";

/** CNI spec error codes (0–99 are the spec's, 100+ are this plugin's). */
export const ErrorCode = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodeFailure: 6,
  invalidNetworkConfig: 7,
  tryAgainLater: 11,
  agentRefused: 100,
  internal: 999,
} as const;

export interface CniError {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export function isSupportedVersion(v: unknown): v is string {
  return typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** CHECK exists since 0.4.0; older configs must be told so (as the reference skel does). */
export function versionAllowsCheck(v: string): boolean {
  return v !== "0.3.0" && v !== "0.3.1";
}

export function cniError(cniVersion: string, code: number, msg: string, details?: string): CniError {
  return details === undefined ? { cniVersion, code, msg } : { cniVersion, code, msg, details };
}

/** The spec says VERSION answers with the cniVersion it was asked in, when it knows it. */
export function versionResult(requested: unknown): { cniVersion: string; supportedVersions: string[] } {
  return {
    cniVersion: isSupportedVersion(requested) ? requested : DEFAULT_VERSION,
    supportedVersions: [...SUPPORTED_VERSIONS],
  };
}

/**
 * The chained plugin's result is its input's prevResult, unchanged except that
 * it is stamped with the config's version. Keys keep their order, so the
 * output is the same JSON the previous plugin produced.
 */
export function passThroughResult(
  prevResult: Record<string, unknown>,
  cniVersion: string,
): Record<string, unknown> {
  return { ...prevResult, cniVersion };
}
