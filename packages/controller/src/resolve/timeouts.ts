// HTTPRoute rule timeouts → milliseconds (0 = none). Trellis adds no default
// timeout of its own: an unset timeout means none, like "0s".
import type { Timeouts } from "@trellis/api";
import type { FieldProblem, HTTPRouteRuleSpec } from "../snapshot/snapshot.ts";
import { parseGatewayDuration } from "./duration.ts";

export function translateTimeouts(
  spec: HTTPRouteRuleSpec["timeouts"],
  field: string,
): { readonly timeouts: Timeouts | undefined; readonly problems: readonly FieldProblem[] } {
  if (!spec) return { timeouts: undefined, problems: [] };
  const problems: FieldProblem[] = [];
  const read = (text: string | undefined, key: string): number => {
    if (text === undefined) return 0;
    const parsed = parseGatewayDuration(text);
    if (parsed.ok) return parsed.ms;
    problems.push({ field: `${field}.timeouts.${key}`, message: parsed.message });
    return 0;
  };
  const requestMs = read(spec.request, "request");
  const backendRequestMs = read(spec.backendRequest, "backendRequest");
  if (requestMs > 0 && backendRequestMs > requestMs) {
    problems.push({
      field: `${field}.timeouts.backendRequest`,
      message: `(${spec.backendRequest}) must not exceed timeouts.request (${spec.request}); lower it or raise the request timeout`,
    });
  }
  if (problems.length > 0) return { timeouts: undefined, problems };
  return { timeouts: { requestMs, backendRequestMs }, problems };
}
