// Problems found while resolving one route, kept apart by what they mean for
// status: invalid rules (PartiallyInvalid; the rule answers 500) and
// unresolved references (ResolvedRefs=False; the backend's share answers 500).
import type { InvalidRuleReason } from "./resolution.ts";

export interface RuleIssue {
  readonly reason: InvalidRuleReason;
  readonly ruleIndex: number;
  readonly field: string;
  readonly message: string;
}

export interface RefIssue {
  readonly reason: "BackendNotFound" | "InvalidKind" | "UnsupportedProtocol";
  /** The field path is part of the message, which comes from BackendRefResolver. */
  readonly message: string;
}
