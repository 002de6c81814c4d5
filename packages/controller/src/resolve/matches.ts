// Route matches → table matches plus their precedence rank. Problems name the
// field and make the rule invalid.
import {
  type GrpcMatch,
  type HeaderMatch,
  type HttpMatch,
  MatchType,
  type QueryParamMatch,
} from "@trellis/api";
import type { FieldProblem, GRPCMatchSpec, HTTPMatchSpec, StringMatchSpec } from "../snapshot/snapshot.ts";
import type { GrpcMatchRank, HttpMatchRank } from "./precedence.ts";

export const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const GRPC_SERVICE = /^(?:[A-Za-z_][A-Za-z_0-9]*\.)*[A-Za-z_][A-Za-z_0-9]*$/;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

export type MatchResult<M, R> =
  | { readonly ok: true; readonly match: M; readonly rank: R; readonly text: string }
  | { readonly ok: false; readonly problems: readonly FieldProblem[] };

/**
 * Regular expressions are JavaScript RegExp sources matched against the whole
 * value; the agent compiles them exactly like this.
 */
export function regexProblem(pattern: string, field: string): FieldProblem | undefined {
  try {
    new RegExp(`^(?:${pattern})$`);
    return undefined;
  } catch (error) {
    return {
      field,
      message: `is not a valid JavaScript regular expression (${(error as Error).message}); fix the pattern (it must match the whole value)`,
    };
  }
}

/** PathPrefix matching is segment-aware, so a trailing slash changes nothing. */
export function normalizePrefix(value: string): string {
  const trimmed = value.replace(/\/+$/, "");
  return trimmed === "" ? "/" : trimmed;
}

export function translateHttpMatch(spec: HTTPMatchSpec): MatchResult<HttpMatch, HttpMatchRank> {
  const problems: FieldProblem[] = [];
  const pathField = `${spec.field}.path`;
  let type: MatchType = MatchType.MATCH_TYPE_PREFIX;
  let value = spec.path.value;
  let pathType: HttpMatchRank["pathType"] = "prefix";
  switch (spec.path.type) {
    case "Exact":
      type = MatchType.MATCH_TYPE_EXACT;
      pathType = "exact";
      break;
    case "PathPrefix":
      value = normalizePrefix(value);
      break;
    case "RegularExpression": {
      type = MatchType.MATCH_TYPE_REGEX;
      pathType = "regex";
      const problem = regexProblem(value, `${pathField}.value`);
      if (problem) problems.push(problem);
      break;
    }
    default:
      problems.push({
        field: `${pathField}.type`,
        message: `"${spec.path.type}" is not supported; use Exact, PathPrefix or RegularExpression`,
      });
  }
  if (pathType !== "regex" && !value.startsWith("/")) {
    problems.push({ field: `${pathField}.value`, message: `"${spec.path.value}" must start with "/"` });
  }
  if (spec.method !== undefined && !HTTP_METHODS.includes(spec.method)) {
    problems.push({
      field: `${spec.field}.method`,
      message: `"${spec.method}" is not an HTTP method; use one of ${HTTP_METHODS.join(", ")}`,
    });
  }
  const headers = translateStringMatches(spec.headers, "header", problems).map(
    (h): HeaderMatch => ({ ...h, name: h.name.toLowerCase() }),
  );
  const queryParams: QueryParamMatch[] = translateStringMatches(spec.queryParams, "query", problems);
  if (problems.length > 0) return { ok: false, problems };

  const match: HttpMatch = { path: { type, value }, method: spec.method ?? "", headers, queryParams };
  return {
    ok: true,
    match,
    rank: {
      kind: "http",
      pathType,
      pathLength: value.length,
      hasMethod: spec.method !== undefined,
      headers: headers.length,
      queryParams: queryParams.length,
    },
    text: describeHttpMatch(match),
  };
}

export function translateGrpcMatch(spec: GRPCMatchSpec): MatchResult<GrpcMatch, GrpcMatchRank> {
  const problems: FieldProblem[] = [];
  let type: MatchType = MatchType.MATCH_TYPE_UNSPECIFIED;
  const service = spec.method?.service ?? "";
  const method = spec.method?.method ?? "";
  const methodField = `${spec.field}.method`;
  if (spec.method) {
    if (service === "" && method === "") {
      problems.push({ field: methodField, message: "needs a service, a method or both" });
    }
    if (spec.method.type === "Exact") {
      type = MatchType.MATCH_TYPE_EXACT;
      if (service !== "" && !GRPC_SERVICE.test(service)) {
        problems.push({
          field: `${methodField}.service`,
          message: `"${service}" is not a gRPC service name`,
        });
      }
      if (method !== "" && !GRPC_METHOD.test(method)) {
        problems.push({ field: `${methodField}.method`, message: `"${method}" is not a gRPC method name` });
      }
    } else if (spec.method.type === "RegularExpression") {
      type = MatchType.MATCH_TYPE_REGEX;
      for (const [part, pattern] of [
        ["service", service],
        ["method", method],
      ] as const) {
        const problem = pattern === "" ? undefined : regexProblem(pattern, `${methodField}.${part}`);
        if (problem) problems.push(problem);
      }
    } else {
      problems.push({
        field: `${methodField}.type`,
        message: `"${spec.method.type}" is not supported; use Exact or RegularExpression`,
      });
    }
  }
  const headers = translateStringMatches(spec.headers, "header", problems).map(
    (h): HeaderMatch => ({ ...h, name: h.name.toLowerCase() }),
  );
  if (problems.length > 0) return { ok: false, problems };

  const regex = type === MatchType.MATCH_TYPE_REGEX;
  const match: GrpcMatch = { type, service, method, headers };
  return {
    ok: true,
    match,
    rank: {
      kind: "grpc",
      serviceLength: service.length,
      serviceRegex: regex && service !== "",
      methodLength: method.length,
      methodRegex: regex && method !== "",
      headers: headers.length,
    },
    text: describeGrpcMatch(match),
  };
}

function translateStringMatches(
  specs: readonly StringMatchSpec[],
  what: "header" | "query",
  problems: FieldProblem[],
): { name: string; type: MatchType; value: string }[] {
  const out: { name: string; type: MatchType; value: string }[] = [];
  const seen = new Set<string>();
  for (const spec of specs) {
    if (what === "header" && !HEADER_NAME.test(spec.name)) {
      problems.push({ field: `${spec.field}.name`, message: `"${spec.name}" is not a valid header name` });
      continue;
    }
    if (what === "query" && spec.name === "") {
      problems.push({ field: `${spec.field}.name`, message: "must not be empty" });
      continue;
    }
    let type: MatchType;
    if (spec.type === "Exact") type = MatchType.MATCH_TYPE_EXACT;
    else if (spec.type === "RegularExpression") {
      type = MatchType.MATCH_TYPE_REGEX;
      const problem = regexProblem(spec.value, `${spec.field}.value`);
      if (problem) {
        problems.push(problem);
        continue;
      }
    } else {
      problems.push({
        field: `${spec.field}.type`,
        message: `"${spec.type}" is not supported; use Exact or RegularExpression`,
      });
      continue;
    }
    // Gateway API: of equivalent names only the first entry counts.
    const key = what === "header" ? spec.name.toLowerCase() : spec.name;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ name: spec.name, type, value: spec.value });
  }
  return out;
}

function describeStringMatches(
  kind: string,
  list: readonly { name: string; type: MatchType; value: string }[],
): string[] {
  return list.map((m) => `${kind} ${m.name}${m.type === MatchType.MATCH_TYPE_REGEX ? " ~ " : "="}${m.value}`);
}

export function describeHttpMatch(match: HttpMatch): string {
  const parts: string[] = [];
  const path = match.path;
  if (path) {
    const word =
      path.type === MatchType.MATCH_TYPE_PREFIX
        ? "PathPrefix"
        : path.type === MatchType.MATCH_TYPE_EXACT
          ? "Exact"
          : "Regex";
    parts.push(`${word} ${path.value}`);
  }
  if (match.method) parts.push(`method ${match.method}`);
  parts.push(
    ...describeStringMatches("header", match.headers),
    ...describeStringMatches("query", match.queryParams),
  );
  return parts.join(", ");
}

export function describeGrpcMatch(match: GrpcMatch): string {
  const parts: string[] = [];
  if (match.service !== "" || match.method !== "") {
    const regex = match.type === MatchType.MATCH_TYPE_REGEX ? " (regex)" : "";
    parts.push(`${match.service || "*"}/${match.method || "*"}${regex}`);
  } else {
    parts.push("any method");
  }
  parts.push(...describeStringMatches("header", match.headers));
  return parts.join(", ");
}
