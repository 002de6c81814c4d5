// Path rewriting and redirects (RequestRedirect, URLRewrite).

import { type PathRewrite, PathRewriteType, type RequestRedirect } from "@trellis/api";

/**
 * Replaces the matched `prefix` of `path` with `replacement`, keeping the rest,
 * the way Gateway API's ReplacePrefixMatch is defined: "/foo/x" with prefix
 * "/foo" → "/bar" gives "/bar/x"; replacement "/" gives "/x"; "/foo" gives "/bar".
 */
export function replacePrefix(path: string, prefix: string, replacement: string): string {
  const rest = prefix === "/" || prefix === "" ? path : path.slice(prefix.length);
  if (rest === "") return replacement === "" ? "/" : replacement;
  // The match was segment-aware, so rest starts with "/".
  const joined = replacement.endsWith("/") ? replacement + rest.slice(1) : replacement + rest;
  return joined === "" ? "/" : joined;
}

/** New path for a rewrite, or the old one when the rewrite does not apply. */
export function rewritePath(
  path: string,
  rewrite: PathRewrite | undefined,
  matchedPrefix: string | null,
): string {
  if (rewrite === undefined) return path;
  if (rewrite.type === PathRewriteType.PATH_REWRITE_TYPE_FULL_PATH) return rewrite.value;
  if (rewrite.type === PathRewriteType.PATH_REWRITE_TYPE_PREFIX_MATCH && matchedPrefix !== null) {
    return replacePrefix(path, matchedPrefix, rewrite.value);
  }
  return path;
}

const WELL_KNOWN: Record<string, number> = { http: 80, https: 443 };

/** Host part of a Host / :authority value (IPv6 literals keep their brackets). */
export function hostWithoutPort(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return end === -1 ? authority : authority.slice(0, end + 1);
  }
  const colon = authority.lastIndexOf(":");
  return colon === -1 ? authority : authority.slice(0, colon);
}

export interface RedirectInput {
  /** "http" for everything the agent accepts (it terminates no TLS). */
  readonly scheme: string;
  readonly authority: string;
  readonly path: string;
  /** Raw query without "?", "" when absent. */
  readonly query: string;
  /** The service port the client connected to (Gateway API's "listener port" in the mesh). */
  readonly servicePort: number;
  readonly matchedPrefix: string | null;
}

/**
 * Location for a RequestRedirect. Port rules from Gateway API: an explicit port
 * wins; else a changed scheme implies its well-known port; else the port the
 * client connected to. The port is left out when it is the scheme's default.
 */
export function redirectLocation(r: RequestRedirect, req: RedirectInput): string {
  const scheme = r.scheme !== "" ? r.scheme : req.scheme;
  const host = r.hostname !== "" ? r.hostname : hostWithoutPort(req.authority);
  let port: number | undefined;
  if (r.port !== 0) port = r.port;
  else if (r.scheme !== "") port = WELL_KNOWN[scheme];
  else port = req.servicePort;
  const showPort = port !== undefined && port !== WELL_KNOWN[scheme];
  const path = rewritePath(req.path, r.path, req.matchedPrefix);
  const query = req.query === "" ? "" : `?${req.query}`;
  return `${scheme}://${host}${showPort ? `:${port}` : ""}${path}${query}`;
}

export function redirectStatus(r: RequestRedirect): number {
  return r.statusCode === 0 ? 302 : r.statusCode;
}
