// HTTPRoute / GRPCRoute JSON → typed route specs. Applies the defaults the
// Gateway API CRDs declare, so objects read from a user's YAML and from the
// API server look the same. Shape problems inside a rule stay with that rule
// (it becomes invalid); problems with the route as a whole stay with the route.
import {
  integerField,
  type JsonObject,
  listField,
  objectField,
  objectListField,
  reportUnsupportedFields,
  stringField,
  stringListField,
} from "./read-json.ts";
import type {
  BackendObjectRefSpec,
  BackendRefSpec,
  FieldProblem,
  FilterSpec,
  GRPCMatchSpec,
  GRPCRouteRuleSpec,
  HeaderModifierSpec,
  HTTPMatchSpec,
  HTTPRouteRuleSpec,
  ParentRefSpec,
  PathModifierSpec,
  RouteKindName,
  RouteObject,
  StringMatchSpec,
} from "./snapshot.ts";

const PORT = { min: 1, max: 65535 };
const GATEWAY_GROUP = "gateway.networking.k8s.io";

interface RouteMeta {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly creationTimestamp: string;
}

export function parseRoute(kind: RouteKindName, meta: RouteMeta, obj: JsonObject): RouteObject {
  const routeProblems: FieldProblem[] = [];
  const notes: string[] = [];
  const spec = objectField(obj, "spec", "", routeProblems) ?? {};
  if (obj.spec === undefined || obj.spec === null)
    routeProblems.push({ field: "spec", message: "is missing" });

  const parentRefs = objectListField(spec, "parentRefs", "spec", routeProblems).map(({ item, field }) =>
    parseParentRef(item, field, routeProblems),
  );
  if (spec.hostnames !== undefined && spec.hostnames !== null) {
    notes.push(
      "spec.hostnames has no effect on Service parents: the cluster IP and port of the Service decide",
    );
  }
  for (const key of Object.keys(spec).sort()) {
    if (!["parentRefs", "hostnames", "rules"].includes(key)) {
      notes.push(`spec.${key} is not used by Trellis for Service parents`);
    }
  }

  const createdAtMs = Date.parse(meta.creationTimestamp);
  const common = {
    namespace: meta.namespace,
    name: meta.name,
    generation: meta.generation,
    creationTimestamp: meta.creationTimestamp,
    createdAtMs: Number.isNaN(createdAtMs) ? Number.POSITIVE_INFINITY : createdAtMs,
    parentRefs,
    notes,
    problems: routeProblems,
  };

  const ruleItems = objectListField(spec, "rules", "spec", routeProblems);
  if (kind === "HTTPRoute") {
    // The HTTPRoute CRD defaults an absent rules list to one rule matching PathPrefix "/".
    const items =
      spec.rules === undefined || spec.rules === null ? [{ item: {}, field: "spec.rules[0]" }] : ruleItems;
    return {
      ...common,
      kind,
      rules: items.map(({ item, field }, index) => parseHTTPRule(item, field, index, meta.namespace)),
    };
  }
  return {
    ...common,
    kind,
    rules: ruleItems.map(({ item, field }, index) => parseGRPCRule(item, field, index, meta.namespace)),
  };
}

function parseParentRef(item: JsonObject, field: string, problems: FieldProblem[]): ParentRefSpec {
  const name = stringField(item, "name", field, problems);
  if (name === undefined) problems.push({ field: `${field}.name`, message: "is required" });
  return {
    field,
    // CRD defaults: a parentRef without group/kind points at a Gateway.
    group: stringField(item, "group", field, problems) ?? GATEWAY_GROUP,
    kind: stringField(item, "kind", field, problems) ?? "Gateway",
    namespace: stringField(item, "namespace", field, problems),
    name: name ?? "",
    port: integerField(item, "port", field, problems, PORT),
    sectionName: stringField(item, "sectionName", field, problems),
  };
}

function parseHTTPRule(
  item: JsonObject,
  field: string,
  index: number,
  routeNamespace: string,
): HTTPRouteRuleSpec {
  const problems: FieldProblem[] = [];
  reportUnsupportedFields(
    item,
    ["name", "matches", "filters", "backendRefs", "timeouts", "retry"],
    field,
    problems,
  );
  const matches = objectListField(item, "matches", field, problems).map((m) =>
    parseHTTPMatch(m.item, m.field, problems),
  );
  const timeoutsObj = objectField(item, "timeouts", field, problems);
  let timeouts: HTTPRouteRuleSpec["timeouts"];
  if (timeoutsObj) {
    reportUnsupportedFields(timeoutsObj, ["request", "backendRequest"], `${field}.timeouts`, problems);
    timeouts = {
      request: stringField(timeoutsObj, "request", `${field}.timeouts`, problems),
      backendRequest: stringField(timeoutsObj, "backendRequest", `${field}.timeouts`, problems),
    };
  }
  const retryObj = objectField(item, "retry", field, problems);
  let retry: HTTPRouteRuleSpec["retry"];
  if (retryObj) {
    const retryField = `${field}.retry`;
    reportUnsupportedFields(retryObj, ["codes", "attempts", "backoff"], retryField, problems);
    const codes: number[] = [];
    listField(retryObj, "codes", retryField, problems).forEach((code, i) => {
      if (typeof code === "number" && Number.isInteger(code)) codes.push(code);
      else problems.push({ field: `${retryField}.codes[${i}]`, message: "must be an HTTP status code" });
    });
    retry = {
      codes,
      attempts: integerField(retryObj, "attempts", retryField, problems, { min: 0, max: 1000 }),
      backoff: stringField(retryObj, "backoff", retryField, problems),
    };
  }
  return {
    index,
    field,
    name: stringField(item, "name", field, problems) ?? "",
    matches,
    filters: parseFilters(item, field, routeNamespace, problems),
    backendRefs: parseBackendRefs(item, field, routeNamespace, problems),
    timeouts,
    retry,
    problems,
  };
}

function parseGRPCRule(
  item: JsonObject,
  field: string,
  index: number,
  routeNamespace: string,
): GRPCRouteRuleSpec {
  const problems: FieldProblem[] = [];
  reportUnsupportedFields(item, ["name", "matches", "filters", "backendRefs"], field, problems);
  const matches = objectListField(item, "matches", field, problems).map((m) =>
    parseGRPCMatch(m.item, m.field, problems),
  );
  return {
    index,
    field,
    name: stringField(item, "name", field, problems) ?? "",
    matches,
    filters: parseFilters(item, field, routeNamespace, problems),
    backendRefs: parseBackendRefs(item, field, routeNamespace, problems),
    problems,
  };
}

function parseHTTPMatch(item: JsonObject, field: string, problems: FieldProblem[]): HTTPMatchSpec {
  reportUnsupportedFields(item, ["path", "headers", "queryParams", "method"], field, problems);
  const path = objectField(item, "path", field, problems) ?? {};
  reportUnsupportedFields(path, ["type", "value"], `${field}.path`, problems);
  return {
    field,
    path: {
      type: stringField(path, "type", `${field}.path`, problems) ?? "PathPrefix",
      value: stringField(path, "value", `${field}.path`, problems) ?? "/",
    },
    method: stringField(item, "method", field, problems),
    headers: parseStringMatches(item, "headers", field, problems),
    queryParams: parseStringMatches(item, "queryParams", field, problems),
  };
}

function parseGRPCMatch(item: JsonObject, field: string, problems: FieldProblem[]): GRPCMatchSpec {
  reportUnsupportedFields(item, ["method", "headers"], field, problems);
  const method = objectField(item, "method", field, problems);
  if (method) reportUnsupportedFields(method, ["type", "service", "method"], `${field}.method`, problems);
  return {
    field,
    method: method && {
      type: stringField(method, "type", `${field}.method`, problems) ?? "Exact",
      service: stringField(method, "service", `${field}.method`, problems),
      method: stringField(method, "method", `${field}.method`, problems),
    },
    headers: parseStringMatches(item, "headers", field, problems),
  };
}

function parseStringMatches(
  obj: JsonObject,
  key: string,
  field: string,
  problems: FieldProblem[],
): readonly StringMatchSpec[] {
  return objectListField(obj, key, field, problems).map(({ item, field: itemField }) => {
    reportUnsupportedFields(item, ["type", "name", "value"], itemField, problems);
    const name = stringField(item, "name", itemField, problems);
    const value = stringField(item, "value", itemField, problems);
    if (name === undefined) problems.push({ field: `${itemField}.name`, message: "is required" });
    if (value === undefined) problems.push({ field: `${itemField}.value`, message: "is required" });
    return {
      field: itemField,
      type: stringField(item, "type", itemField, problems) ?? "Exact",
      name: name ?? "",
      value: value ?? "",
    };
  });
}

function parseFilters(
  obj: JsonObject,
  field: string,
  routeNamespace: string,
  problems: FieldProblem[],
): readonly FilterSpec[] {
  return objectListField(obj, "filters", field, problems).map(({ item, field: f }) => {
    const type = stringField(item, "type", f, problems);
    if (type === undefined) problems.push({ field: `${f}.type`, message: "is required" });
    const filter: {
      -readonly [K in keyof FilterSpec]: FilterSpec[K];
    } = { field: f, type: type ?? "" };
    const rhm = objectField(item, "requestHeaderModifier", f, problems);
    if (rhm) filter.requestHeaderModifier = parseHeaderModifier(rhm, `${f}.requestHeaderModifier`, problems);
    const shm = objectField(item, "responseHeaderModifier", f, problems);
    if (shm)
      filter.responseHeaderModifier = parseHeaderModifier(shm, `${f}.responseHeaderModifier`, problems);
    const redirect = objectField(item, "requestRedirect", f, problems);
    if (redirect) {
      const rf = `${f}.requestRedirect`;
      reportUnsupportedFields(redirect, ["scheme", "hostname", "path", "port", "statusCode"], rf, problems);
      filter.requestRedirect = {
        scheme: stringField(redirect, "scheme", rf, problems),
        hostname: stringField(redirect, "hostname", rf, problems),
        port: integerField(redirect, "port", rf, problems, PORT),
        path: parsePathModifier(redirect, rf, problems),
        statusCode: integerField(redirect, "statusCode", rf, problems, { min: 100, max: 599 }) ?? 302,
      };
    }
    const rewrite = objectField(item, "urlRewrite", f, problems);
    if (rewrite) {
      const rf = `${f}.urlRewrite`;
      reportUnsupportedFields(rewrite, ["hostname", "path"], rf, problems);
      filter.urlRewrite = {
        hostname: stringField(rewrite, "hostname", rf, problems),
        path: parsePathModifier(rewrite, rf, problems),
      };
    }
    const mirror = objectField(item, "requestMirror", f, problems);
    if (mirror) {
      const mf = `${f}.requestMirror`;
      reportUnsupportedFields(mirror, ["backendRef", "percent", "fraction"], mf, problems);
      const ref = objectField(mirror, "backendRef", mf, problems);
      if (!ref) problems.push({ field: `${mf}.backendRef`, message: "is required" });
      const fraction = objectField(mirror, "fraction", mf, problems);
      const numerator =
        fraction && integerField(fraction, "numerator", `${mf}.fraction`, problems, { min: 0, max: 1e6 });
      const denominator = fraction
        ? (integerField(fraction, "denominator", `${mf}.fraction`, problems, { min: 1, max: 1e6 }) ?? 100)
        : undefined;
      filter.requestMirror = {
        backendRef: parseBackendObjectRef(ref ?? {}, `${mf}.backendRef`, routeNamespace, problems),
        percent: integerField(mirror, "percent", mf, problems, { min: 0, max: 100 }),
        fraction:
          numerator !== undefined && denominator !== undefined ? { numerator, denominator } : undefined,
      };
    }
    return filter;
  });
}

function parseHeaderModifier(obj: JsonObject, field: string, problems: FieldProblem[]): HeaderModifierSpec {
  reportUnsupportedFields(obj, ["set", "add", "remove"], field, problems);
  const pairs = (key: string) =>
    objectListField(obj, key, field, problems).map(({ item, field: f }) => {
      const name = stringField(item, "name", f, problems);
      const value = stringField(item, "value", f, problems);
      if (name === undefined) problems.push({ field: `${f}.name`, message: "is required" });
      if (value === undefined) problems.push({ field: `${f}.value`, message: "is required" });
      return { name: name ?? "", value: value ?? "" };
    });
  return { set: pairs("set"), add: pairs("add"), remove: stringListField(obj, "remove", field, problems) };
}

function parsePathModifier(
  obj: JsonObject,
  field: string,
  problems: FieldProblem[],
): PathModifierSpec | undefined {
  const path = objectField(obj, "path", field, problems);
  if (!path) return undefined;
  const pf = `${field}.path`;
  reportUnsupportedFields(path, ["type", "replaceFullPath", "replacePrefixMatch"], pf, problems);
  const type = stringField(path, "type", pf, problems);
  if (type === undefined) problems.push({ field: `${pf}.type`, message: "is required" });
  return {
    type: type ?? "",
    replaceFullPath: stringField(path, "replaceFullPath", pf, problems),
    replacePrefixMatch: stringField(path, "replacePrefixMatch", pf, problems),
  };
}

function parseBackendObjectRef(
  item: JsonObject,
  field: string,
  routeNamespace: string,
  problems: FieldProblem[],
): BackendObjectRefSpec {
  const name = stringField(item, "name", field, problems);
  if (name === undefined) problems.push({ field: `${field}.name`, message: "is required" });
  return {
    field,
    group: stringField(item, "group", field, problems) ?? "",
    kind: stringField(item, "kind", field, problems) ?? "Service",
    name: name ?? "",
    namespace: stringField(item, "namespace", field, problems) ?? routeNamespace,
    port: integerField(item, "port", field, problems, PORT),
  };
}

function parseBackendRefs(
  obj: JsonObject,
  field: string,
  routeNamespace: string,
  problems: FieldProblem[],
): readonly BackendRefSpec[] {
  return objectListField(obj, "backendRefs", field, problems).map(({ item, field: f }) => {
    reportUnsupportedFields(
      item,
      ["group", "kind", "name", "namespace", "port", "weight", "filters"],
      f,
      problems,
    );
    return {
      ...parseBackendObjectRef(item, f, routeNamespace, problems),
      weight: integerField(item, "weight", f, problems, { min: 0, max: 1_000_000 }) ?? 1,
      filters: parseFilters(item, f, routeNamespace, problems),
    };
  });
}
