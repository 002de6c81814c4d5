// GAMMA precedence across all rules of all routes in one group: the first
// difference decides. Ranks are per match (matches of one rule are ORed, so
// each competes on its own).
import { compareStrings } from "../sort-order.ts";

export interface HttpMatchRank {
  readonly kind: "http";
  readonly pathType: "exact" | "prefix" | "regex";
  /** Prefix length without a trailing slash; pattern length for regex. */
  readonly pathLength: number;
  readonly hasMethod: boolean;
  readonly headers: number;
  readonly queryParams: number;
}

export interface GrpcMatchRank {
  readonly kind: "grpc";
  /** Characters of the service (0 = any); a regex counts its pattern length. */
  readonly serviceLength: number;
  readonly serviceRegex: boolean;
  readonly methodLength: number;
  readonly methodRegex: boolean;
  readonly headers: number;
}

export type MatchRank = HttpMatchRank | GrpcMatchRank;

/** Where a match comes from: the tie-breaks after the match itself. */
export interface MatchOrigin {
  /** +Infinity when unknown: such a route counts as the newest. */
  readonly createdAtMs: number;
  readonly namespace: string;
  readonly name: string;
  readonly ruleIndex: number;
  readonly matchIndex: number;
}

export interface RankedMatch {
  readonly rank: MatchRank;
  readonly origin: MatchOrigin;
  /** The match spelled out, only to make the order total among otherwise equal entries. */
  readonly text: string;
}

const PATH_TYPE_ORDER = { exact: 0, prefix: 1, regex: 2 } as const;

/** Negative when a wins over b. */
export function compareMatchRanks(a: MatchRank, b: MatchRank): number {
  if (a.kind === "http" && b.kind === "http") return compareHttp(a, b);
  if (a.kind === "grpc" && b.kind === "grpc") return compareGrpc(a, b);
  // Never in one group (HTTPRoute and GRPCRoute conflict); order them anyway.
  return a.kind === "grpc" ? -1 : 1;
}

function compareHttp(a: HttpMatchRank, b: HttpMatchRank): number {
  // Exact beats every prefix or regex; after that the longer path wins, and at
  // equal length a prefix beats a regex.
  const exactA = a.pathType === "exact" ? 0 : 1;
  const exactB = b.pathType === "exact" ? 0 : 1;
  return (
    exactA - exactB ||
    b.pathLength - a.pathLength ||
    PATH_TYPE_ORDER[a.pathType] - PATH_TYPE_ORDER[b.pathType] ||
    Number(b.hasMethod) - Number(a.hasMethod) ||
    b.headers - a.headers ||
    b.queryParams - a.queryParams
  );
}

function compareGrpc(a: GrpcMatchRank, b: GrpcMatchRank): number {
  return (
    b.serviceLength - a.serviceLength ||
    Number(a.serviceRegex) - Number(b.serviceRegex) ||
    b.methodLength - a.methodLength ||
    Number(a.methodRegex) - Number(b.methodRegex) ||
    b.headers - a.headers
  );
}

/** Oldest route first, then namespace/name, then rule order, then match order. */
export function compareOrigins(a: MatchOrigin, b: MatchOrigin): number {
  return (
    compareTimes(a.createdAtMs, b.createdAtMs) ||
    compareStrings(`${a.namespace}/${a.name}`, `${b.namespace}/${b.name}`) ||
    a.ruleIndex - b.ruleIndex ||
    a.matchIndex - b.matchIndex
  );
}

function compareTimes(a: number, b: number): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/** A total order: 0 only for entries with equal rank, origin and text. */
export function compareRankedMatches(a: RankedMatch, b: RankedMatch): number {
  return (
    compareMatchRanks(a.rank, b.rank) || compareOrigins(a.origin, b.origin) || compareStrings(a.text, b.text)
  );
}
