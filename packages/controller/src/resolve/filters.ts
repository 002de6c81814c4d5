// Route and backend filters → table filters. A filter Trellis cannot apply
// must not be skipped (Gateway API): it makes its rule invalid, so matching
// requests get 500 instead of silently unfiltered behaviour.
import {
  type HeaderModifier,
  type PathRewrite,
  PathRewriteType,
  type RequestMirror,
  type RequestRedirect,
  type URLRewrite,
} from "@trellis/api";
import type {
  FilterSpec,
  HeaderModifierSpec,
  PathModifierSpec,
  RouteKindName,
} from "../snapshot/snapshot.ts";
import type { BackendRefResolver } from "./backends.ts";
import type { RefIssue, RuleIssue } from "./rule-issues.ts";
import { article } from "./wording.ts";

export interface TranslatedFilters {
  readonly requestHeaders: HeaderModifier | undefined;
  readonly responseHeaders: HeaderModifier | undefined;
  readonly redirect: RequestRedirect | undefined;
  readonly urlRewrite: URLRewrite | undefined;
  readonly mirrors: readonly RequestMirror[];
}

export interface FilterContext {
  readonly routeKind: RouteKindName;
  readonly level: "rule" | "backend";
  readonly ruleIndex: number;
  /** Whether every match of the rule is a PathPrefix (ReplacePrefixMatch needs one to replace). */
  readonly prefixMatchesOnly: boolean;
  readonly catalog: BackendRefResolver;
}

const CONFIG_KEYS = {
  RequestHeaderModifier: "requestHeaderModifier",
  ResponseHeaderModifier: "responseHeaderModifier",
  RequestRedirect: "requestRedirect",
  URLRewrite: "urlRewrite",
  RequestMirror: "requestMirror",
} as const;
type SupportedType = keyof typeof CONFIG_KEYS;

const ALLOWED: Readonly<Record<string, readonly SupportedType[]>> = {
  "HTTPRoute/rule": [
    "RequestHeaderModifier",
    "ResponseHeaderModifier",
    "RequestRedirect",
    "URLRewrite",
    "RequestMirror",
  ],
  "GRPCRoute/rule": ["RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror"],
  "HTTPRoute/backend": ["RequestHeaderModifier", "ResponseHeaderModifier"],
  "GRPCRoute/backend": ["RequestHeaderModifier", "ResponseHeaderModifier"],
};

const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
const REDIRECT_CODES = [301, 302, 303, 307, 308];

export function translateFilters(
  filters: readonly FilterSpec[],
  ctx: FilterContext,
): {
  readonly filters: TranslatedFilters;
  readonly ruleIssues: readonly RuleIssue[];
  readonly refIssues: readonly RefIssue[];
} {
  const ruleIssues: RuleIssue[] = [];
  const refIssues: RefIssue[] = [];
  const problem = (reason: RuleIssue["reason"], field: string, message: string) => {
    ruleIssues.push({ reason, ruleIndex: ctx.ruleIndex, field, message });
  };
  const allowed = ALLOWED[`${ctx.routeKind}/${ctx.level}`] ?? [];
  const seen = new Map<string, string>();
  let requestHeaders: HeaderModifier | undefined;
  let responseHeaders: HeaderModifier | undefined;
  let redirect: RequestRedirect | undefined;
  let urlRewrite: URLRewrite | undefined;
  const mirrors: RequestMirror[] = [];

  for (const filter of filters) {
    const type = filter.type;
    if (!allowed.includes(type as SupportedType)) {
      problem("UnsupportedValue", `${filter.field}.type`, unsupportedTypeMessage(type, ctx, allowed));
      continue;
    }
    const supported = type as SupportedType;
    const configKey = CONFIG_KEYS[supported];
    const strayKeys = Object.values(CONFIG_KEYS).filter((k) => k !== configKey && filter[k] !== undefined);
    if (filter[configKey] === undefined) {
      problem("UnsupportedValue", `${filter.field}.${configKey}`, `is required for type ${type}`);
      continue;
    }
    if (strayKeys.length > 0) {
      problem(
        "UnsupportedValue",
        filter.field,
        `type ${type} takes only ${configKey}; remove ${strayKeys.join(", ")}`,
      );
      continue;
    }
    if (supported !== "RequestMirror") {
      const first = seen.get(supported);
      if (first !== undefined) {
        problem(
          "IncompatibleFilters",
          filter.field,
          `repeats filter type ${type} (first at ${first}); merge them into one filter`,
        );
        continue;
      }
      seen.set(supported, filter.field);
    }
    switch (supported) {
      case "RequestHeaderModifier":
      case "ResponseHeaderModifier": {
        const spec = (
          supported === "RequestHeaderModifier" ? filter.requestHeaderModifier : filter.responseHeaderModifier
        )!;
        const modifier = translateHeaderModifier(spec, `${filter.field}.${configKey}`, problem);
        if (supported === "RequestHeaderModifier") requestHeaders = modifier;
        else responseHeaders = modifier;
        break;
      }
      case "RequestRedirect": {
        const spec = filter.requestRedirect!;
        const field = `${filter.field}.requestRedirect`;
        if (spec.scheme !== undefined && spec.scheme !== "http" && spec.scheme !== "https") {
          problem(
            "UnsupportedValue",
            `${field}.scheme`,
            `"${spec.scheme}" is not supported; use http or https`,
          );
        }
        if (!REDIRECT_CODES.includes(spec.statusCode)) {
          problem(
            "UnsupportedValue",
            `${field}.statusCode`,
            `${spec.statusCode} is not a redirect code; use ${REDIRECT_CODES.join(", ")}`,
          );
        }
        redirect = {
          scheme: spec.scheme ?? "",
          hostname: spec.hostname ?? "",
          port: spec.port ?? 0,
          path: translatePathModifier(spec.path, field, ctx, problem),
          statusCode: spec.statusCode,
        };
        break;
      }
      case "URLRewrite": {
        const spec = filter.urlRewrite!;
        const field = `${filter.field}.urlRewrite`;
        urlRewrite = {
          hostname: spec.hostname ?? "",
          path: translatePathModifier(spec.path, field, ctx, problem),
        };
        break;
      }
      case "RequestMirror": {
        const spec = filter.requestMirror!;
        const field = `${filter.field}.requestMirror`;
        if (spec.percent !== undefined && spec.fraction !== undefined) {
          problem("UnsupportedValue", field, "set percent or fraction, not both");
          break;
        }
        if (spec.fraction && spec.fraction.numerator > spec.fraction.denominator) {
          problem("UnsupportedValue", `${field}.fraction`, "numerator must not exceed denominator");
          break;
        }
        const resolved = ctx.catalog.resolve(spec.backendRef, ctx.routeKind);
        if (!resolved.ok) {
          // A mirror never affects the response, so an unresolved one is
          // dropped rather than failing the rule; status still says so.
          refIssues.push({ reason: resolved.reason, message: `${resolved.message} (mirror dropped)` });
          break;
        }
        const numerator = spec.fraction?.numerator ?? spec.percent ?? 100;
        const denominator = spec.fraction?.denominator ?? 100;
        if (numerator > 0) mirrors.push({ backendId: resolved.backendId, numerator, denominator });
        break;
      }
    }
  }

  if (redirect && urlRewrite) {
    problem(
      "IncompatibleFilters",
      `${seen.get("URLRewrite")}`,
      `URLRewrite cannot be combined with RequestRedirect (${seen.get("RequestRedirect")}) in one rule; keep one of them`,
    );
  }
  return {
    filters: { requestHeaders, responseHeaders, redirect, urlRewrite, mirrors },
    ruleIssues,
    refIssues,
  };
}

function unsupportedTypeMessage(type: string, ctx: FilterContext, allowed: readonly string[]): string {
  const where =
    ctx.level === "backend" ? `on ${article(ctx.routeKind)} backendRef` : `in ${article(ctx.routeKind)} rule`;
  const error = ctx.routeKind === "GRPCRoute" ? "gRPC UNAVAILABLE" : "HTTP 500";
  const consequence = `until it is removed, requests matching this rule get ${error}`;
  if (type === "ExtensionRef") {
    return `ExtensionRef filters are not supported by Trellis; remove the filter (${consequence})`;
  }
  if (type === "") return `is required; use one of ${allowed.join(", ")}`;
  return `filter type "${type}" is not supported ${where}; use ${allowed.join(", ")} (${consequence})`;
}

function translateHeaderModifier(
  spec: HeaderModifierSpec,
  field: string,
  problem: (reason: RuleIssue["reason"], field: string, message: string) => void,
): HeaderModifier {
  const checkName = (name: string, at: string) => {
    if (!HEADER_NAME.test(name)) problem("UnsupportedValue", at, `"${name}" is not a valid header name`);
    return name.toLowerCase();
  };
  return {
    set: spec.set.map((h, i) => ({ name: checkName(h.name, `${field}.set[${i}].name`), value: h.value })),
    add: spec.add.map((h, i) => ({ name: checkName(h.name, `${field}.add[${i}].name`), value: h.value })),
    remove: spec.remove.map((name, i) => checkName(name, `${field}.remove[${i}]`)),
  };
}

function translatePathModifier(
  spec: PathModifierSpec | undefined,
  field: string,
  ctx: FilterContext,
  problem: (reason: RuleIssue["reason"], field: string, message: string) => void,
): PathRewrite | undefined {
  if (!spec) return undefined;
  const pathField = `${field}.path`;
  if (spec.type === "ReplaceFullPath") {
    if (spec.replaceFullPath === undefined) {
      problem("UnsupportedValue", `${pathField}.replaceFullPath`, "is required for type ReplaceFullPath");
      return undefined;
    }
    return { type: PathRewriteType.PATH_REWRITE_TYPE_FULL_PATH, value: spec.replaceFullPath };
  }
  if (spec.type === "ReplacePrefixMatch") {
    if (spec.replacePrefixMatch === undefined) {
      problem(
        "UnsupportedValue",
        `${pathField}.replacePrefixMatch`,
        "is required for type ReplacePrefixMatch",
      );
      return undefined;
    }
    if (!ctx.prefixMatchesOnly) {
      problem(
        "UnsupportedValue",
        `${pathField}.type`,
        "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match; use ReplaceFullPath or change the matches",
      );
      return undefined;
    }
    return { type: PathRewriteType.PATH_REWRITE_TYPE_PREFIX_MATCH, value: spec.replacePrefixMatch };
  }
  problem(
    "UnsupportedValue",
    `${pathField}.type`,
    `"${spec.type}" is not supported; use ReplaceFullPath or ReplacePrefixMatch`,
  );
  return undefined;
}
