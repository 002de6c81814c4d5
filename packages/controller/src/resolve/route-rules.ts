// One route's rules → table rules and ranked matches. Independent of the
// parent the route binds to, so it runs once per route.
import type { DirectResponse, Rule, RuleMatch, WeightedBackend } from "@trellis/api";
import { RouteKind } from "@trellis/api";
import type {
  BackendRefSpec,
  GRPCMatchSpec,
  HTTPMatchSpec,
  HTTPRouteRuleSpec,
  RouteObject,
  ServiceObject,
} from "../snapshot/snapshot.ts";
import { compareStrings } from "../sort-order.ts";
import { BackendRefResolver } from "./backends.ts";
import { translateFilters } from "./filters.ts";
import { translateGrpcMatch, translateHttpMatch } from "./matches.ts";
import type { RankedMatch } from "./precedence.ts";
import { translateRetry } from "./retry.ts";
import type { RefIssue, RuleIssue } from "./rule-issues.ts";
import { translateTimeouts } from "./timeouts.ts";

export const GRPC_UNIMPLEMENTED = 12;
export const GRPC_UNAVAILABLE = 14;

export interface CompiledEntry {
  readonly match: RuleMatch["match"];
  readonly ranked: RankedMatch;
}

export interface CompiledRule {
  readonly rule: Rule;
  /** Empty when no match of the rule could be read: the rule then never applies. */
  readonly entries: readonly CompiledEntry[];
}

export interface CompiledRoute {
  readonly route: RouteObject;
  readonly rules: readonly CompiledRule[];
  readonly ruleIssues: readonly RuleIssue[];
  readonly refIssues: readonly RefIssue[];
  /** Services the backendRefs and mirrors named, with what was found: the result holds while these are unchanged. */
  readonly serviceDeps: ReadonlyMap<string, ServiceObject | undefined>;
  /** Backends the rules refer to (forward targets and mirrors), sorted. */
  readonly backendIds: readonly string[];
}

export function routeLabel(route: RouteObject): string {
  return `${route.kind} ${route.namespace}/${route.name}`;
}

/**
 * Everything about a route that does not depend on its parents: table rules,
 * ranked matches, and the problems for status. Reads only the route and the
 * Services its backendRefs name.
 */
export function compileRoute(
  route: RouteObject,
  services: ReadonlyMap<string, ServiceObject>,
): CompiledRoute {
  const catalog = new BackendRefResolver(services);
  const ruleIssues: RuleIssue[] = [];
  const refIssues: RefIssue[] = [];
  const rules = route.rules.map((spec): CompiledRule => {
    const issues: RuleIssue[] = spec.problems.map((p) => ({
      reason: "UnsupportedValue",
      ruleIndex: spec.index,
      field: p.field,
      message: p.message,
    }));
    const origin = (matchIndex: number) => ({
      createdAtMs: route.createdAtMs,
      namespace: route.namespace,
      name: route.name,
      ruleIndex: spec.index,
      matchIndex,
    });

    // A rule without matches matches everything: PathPrefix "/" for HTTP, any method for gRPC.
    const entries: CompiledEntry[] = [];
    let prefixMatchesOnly = true;
    if (route.kind === "HTTPRoute") {
      const matches: readonly HTTPMatchSpec[] =
        spec.matches.length > 0
          ? (spec.matches as readonly HTTPMatchSpec[])
          : [
              {
                field: `${spec.field}.matches`,
                path: { type: "PathPrefix", value: "/" },
                method: undefined,
                headers: [],
                queryParams: [],
              },
            ];
      matches.forEach((m, i) => {
        if (m.path.type !== "PathPrefix") prefixMatchesOnly = false;
        const result = translateHttpMatch(m);
        if (result.ok) {
          entries.push({
            match: { $case: "http", http: result.match },
            ranked: { rank: result.rank, origin: origin(i), text: result.text },
          });
        } else {
          for (const p of result.problems)
            issues.push({ reason: "UnsupportedValue", ruleIndex: spec.index, ...p });
        }
      });
    } else {
      const matches: readonly GRPCMatchSpec[] =
        spec.matches.length > 0
          ? (spec.matches as readonly GRPCMatchSpec[])
          : [{ field: `${spec.field}.matches`, method: undefined, headers: [] }];
      matches.forEach((m, i) => {
        const result = translateGrpcMatch(m);
        if (result.ok) {
          entries.push({
            match: { $case: "grpc", grpc: result.match },
            ranked: { rank: result.rank, origin: origin(i), text: result.text },
          });
        } else {
          for (const p of result.problems)
            issues.push({ reason: "UnsupportedValue", ruleIndex: spec.index, ...p });
        }
      });
    }

    const ctx = { routeKind: route.kind, ruleIndex: spec.index, prefixMatchesOnly, catalog };
    const filters = translateFilters(spec.filters, { ...ctx, level: "rule" });
    issues.push(...filters.ruleIssues);
    refIssues.push(...filters.refIssues);

    const backends: WeightedBackend[] = [];
    for (const ref of spec.backendRefs) {
      const backend = compileBackendRef(ref, route, catalog, ctx);
      issues.push(...backend.ruleIssues);
      refIssues.push(...backend.refIssues);
      if (backend.entry) backends.push(backend.entry);
    }

    let timeouts: Rule["timeouts"];
    let retry: Rule["retry"];
    if (route.kind === "HTTPRoute") {
      const httpSpec = spec as HTTPRouteRuleSpec;
      const t = translateTimeouts(httpSpec.timeouts, spec.field);
      const r = translateRetry(httpSpec.retry, spec.field);
      for (const p of [...t.problems, ...r.problems]) {
        issues.push({ reason: "UnsupportedValue", ruleIndex: spec.index, ...p });
      }
      timeouts = t.timeouts;
      retry = r.retry;
    }

    const base = {
      route: {
        kind: route.kind === "HTTPRoute" ? RouteKind.ROUTE_KIND_HTTP : RouteKind.ROUTE_KIND_GRPC,
        namespace: route.namespace,
        name: route.name,
      },
      ruleIndex: spec.index,
      ruleName: spec.name,
    };
    ruleIssues.push(...issues);
    if (issues.length > 0) {
      const first = issues[0]!;
      const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
      return {
        rule: {
          ...base,
          action: {
            $case: "direct",
            direct: direct(
              500,
              GRPC_UNAVAILABLE,
              `${routeLabel(route)} rule ${spec.index} is invalid: ${first.field}: ${first.message}${more}`,
            ),
          },
          mirrors: [],
        },
        entries,
      };
    }

    const f = filters.filters;
    let action: Rule["action"];
    if (f.redirect) {
      action = { $case: "redirect", redirect: f.redirect };
    } else if (spec.backendRefs.length === 0) {
      action = {
        $case: "direct",
        direct: direct(500, GRPC_UNIMPLEMENTED, `${routeLabel(route)} rule ${spec.index} has no backendRefs`),
      };
    } else if (backends.length === 0) {
      action = {
        $case: "direct",
        direct: direct(
          500,
          GRPC_UNAVAILABLE,
          `${routeLabel(route)} rule ${spec.index}: every backendRef has weight 0`,
        ),
      };
    } else {
      action = { $case: "forward", forward: { backends } };
    }
    const rule: Rule = {
      ...base,
      action,
      requestHeaders: f.requestHeaders,
      responseHeaders: f.responseHeaders,
      urlRewrite: f.urlRewrite,
      mirrors: [...f.mirrors],
      timeouts,
      retry,
    };
    return { rule, entries };
  });
  return {
    route,
    rules,
    ruleIssues,
    refIssues,
    serviceDeps: catalog.lookedUp,
    backendIds: [...catalog.backendIds].sort(compareStrings),
  };
}

function compileBackendRef(
  ref: BackendRefSpec,
  route: RouteObject,
  catalog: BackendRefResolver,
  ctx: { routeKind: RouteObject["kind"]; ruleIndex: number; prefixMatchesOnly: boolean },
): { entry: WeightedBackend | undefined; ruleIssues: readonly RuleIssue[]; refIssues: readonly RefIssue[] } {
  const refIssues: RefIssue[] = [];
  const resolved = catalog.resolve(ref, route.kind);
  const filters = translateFilters(ref.filters, { ...ctx, level: "backend", catalog });
  refIssues.push(...filters.refIssues);
  if (!resolved.ok) {
    const harmless =
      ref.weight === 0
        ? " (weight 0: no requests are affected)"
        : " (its share of requests gets HTTP 500 / gRPC UNAVAILABLE)";
    refIssues.push({ reason: resolved.reason, message: `${resolved.message}${harmless}` });
  }
  if (ref.weight === 0) return { entry: undefined, ruleIssues: filters.ruleIssues, refIssues };
  const entry: WeightedBackend = {
    weight: ref.weight,
    target: resolved.ok
      ? { $case: "backendId", backendId: resolved.backendId }
      : {
          $case: "direct",
          direct: direct(500, GRPC_UNAVAILABLE, `${routeLabel(route)}: ${resolved.message}`),
        },
    requestHeaders: filters.filters.requestHeaders,
    responseHeaders: filters.filters.responseHeaders,
  };
  return { entry, ruleIssues: filters.ruleIssues, refIssues };
}

function direct(httpStatus: number, grpcStatus: number, message: string): DirectResponse {
  return { httpStatus, grpcStatus, message };
}
