// HTTPRoute rule retry (experimental channel) → table retry. Defaults where the
// spec leaves them to the implementation: one retry, 25 ms backoff.
import type { Retry } from "@trellis/api";
import type { FieldProblem, HTTPRouteRuleSpec } from "../snapshot/snapshot.ts";
import { parseGatewayDuration } from "./duration.ts";

export const DEFAULT_RETRY_ATTEMPTS = 1;
export const DEFAULT_RETRY_BACKOFF_MS = 25;

export function translateRetry(
  spec: HTTPRouteRuleSpec["retry"],
  field: string,
): { readonly retry: Retry | undefined; readonly problems: readonly FieldProblem[] } {
  if (!spec) return { retry: undefined, problems: [] };
  const problems: FieldProblem[] = [];
  spec.codes.forEach((code, i) => {
    if (code < 400 || code > 599) {
      problems.push({
        field: `${field}.retry.codes[${i}]`,
        message: `${code} is not a 4xx or 5xx status code`,
      });
    }
  });
  let backoffMs = DEFAULT_RETRY_BACKOFF_MS;
  if (spec.backoff !== undefined) {
    const parsed = parseGatewayDuration(spec.backoff);
    if (parsed.ok) backoffMs = parsed.ms;
    else problems.push({ field: `${field}.retry.backoff`, message: parsed.message });
  }
  if (problems.length > 0) return { retry: undefined, problems };
  return {
    retry: {
      codes: [...new Set(spec.codes)].sort((a, b) => a - b),
      attempts: spec.attempts ?? DEFAULT_RETRY_ATTEMPTS,
      backoffMs,
    },
    problems,
  };
}
