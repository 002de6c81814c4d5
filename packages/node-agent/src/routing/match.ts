// Request matching. The controller has already ordered the matches by GAMMA
// precedence; here each one only becomes a fast predicate.

import {
  type GrpcMatch,
  type HeaderMatch,
  type HttpMatch,
  MatchType,
  type QueryParamMatch,
} from "@trellis/api";

/** What matching needs from a request, whichever protocol it arrived on. */
export interface RequestView {
  readonly method: string;
  /** Path without the query string. */
  readonly path: string;
  /** Raw query string without "?", "" when absent. */
  readonly query: string;
  /** Header value by lower-case name; duplicates joined. */
  header(name: string): string | undefined;
}

export type Predicate = (req: RequestView) => boolean;

/** RegExp anchored to the whole value, exactly as the contract prescribes. */
export function wholeValueRegExp(source: string): RegExp {
  return new RegExp(`^(?:${source})$`);
}

/** Segment-aware prefix: "/abc" matches "/abc", "/abc/" and "/abc/x", not "/abcd"; "/" matches all. */
export function pathHasPrefix(path: string, prefix: string): boolean {
  if (prefix === "/" || prefix === "") return true;
  if (!path.startsWith(prefix)) return false;
  return path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f;
}

function stringTest(type: MatchType, value: string): (s: string) => boolean {
  if (type === MatchType.MATCH_TYPE_REGEX) {
    const re = wholeValueRegExp(value);
    return (s) => re.test(s);
  }
  return (s) => s === value;
}

function headerPredicate(h: HeaderMatch): Predicate {
  const name = h.name.toLowerCase();
  const test = stringTest(h.type, h.value);
  return (req) => {
    const v = req.header(name);
    return v !== undefined && test(v);
  };
}

function decodeQueryComponent(s: string): string {
  const plus = s.includes("+") ? s.replaceAll("+", " ") : s;
  if (!plus.includes("%")) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}

/** Decoded value of the first occurrence of `name` in a raw query string. */
export function firstQueryValue(query: string, name: string): string | undefined {
  if (query === "") return undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf("&", start);
    if (end === -1) end = query.length;
    if (end > start) {
      const eq = query.indexOf("=", start);
      const hasValue = eq !== -1 && eq < end;
      const rawName = query.slice(start, hasValue ? eq : end);
      if (decodeQueryComponent(rawName) === name) {
        return hasValue ? decodeQueryComponent(query.slice(eq + 1, end)) : "";
      }
    }
    start = end + 1;
  }
  return undefined;
}

function queryPredicate(q: QueryParamMatch): Predicate {
  const test = stringTest(q.type, q.value);
  const name = q.name;
  return (req) => {
    const v = firstQueryValue(req.query, name);
    return v !== undefined && test(v);
  };
}

function all(preds: Predicate[]): Predicate {
  if (preds.length === 0) return () => true;
  if (preds.length === 1) return preds[0] as Predicate;
  return (req) => {
    for (const p of preds) if (!p(req)) return false;
    return true;
  };
}

export interface CompiledHttpMatch {
  readonly test: Predicate;
  /** The PathPrefix value when the match is a prefix match (for ReplacePrefixMatch). */
  readonly prefix: string | null;
}

export function compileHttpMatch(m: HttpMatch): CompiledHttpMatch {
  const preds: Predicate[] = [];
  let prefix: string | null = null;
  const path = m.path;
  if (path !== undefined) {
    const value = path.value;
    if (path.type === MatchType.MATCH_TYPE_EXACT) preds.push((req) => req.path === value);
    else if (path.type === MatchType.MATCH_TYPE_PREFIX) {
      prefix = value;
      if (value !== "/" && value !== "") preds.push((req) => pathHasPrefix(req.path, value));
    } else if (path.type === MatchType.MATCH_TYPE_REGEX) {
      const re = wholeValueRegExp(value);
      preds.push((req) => re.test(req.path));
    }
  }
  if (m.method !== "") {
    const method = m.method;
    preds.push((req) => req.method === method);
  }
  for (const h of m.headers) preds.push(headerPredicate(h));
  for (const q of m.queryParams) preds.push(queryPredicate(q));
  return { test: all(preds), prefix };
}

/** Service and method of a gRPC path "/<service>/<method>"; empty strings when the path is not of that form. */
export function splitGrpcPath(path: string): { service: string; method: string } {
  const slash = path.indexOf("/", 1);
  if (path.charCodeAt(0) !== 0x2f || slash === -1 || path.indexOf("/", slash + 1) !== -1) {
    return { service: "", method: "" };
  }
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

export function compileGrpcMatch(m: GrpcMatch): CompiledHttpMatch {
  const preds: Predicate[] = [];
  if (m.service !== "" || m.method !== "") {
    const service = m.service === "" ? null : stringTest(m.type, m.service);
    const method = m.method === "" ? null : stringTest(m.type, m.method);
    preds.push((req) => {
      const p = splitGrpcPath(req.path);
      if (service !== null && !service(p.service)) return false;
      if (method !== null && !method(p.method)) return false;
      return true;
    });
  }
  for (const h of m.headers) preds.push(headerPredicate(h));
  return { test: all(preds), prefix: null };
}
