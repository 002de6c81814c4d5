// Route status conditions for one parentRef (GAMMA.md "Status"). Messages say
// where the problem is and what to change.
import type { ParentRefSpec, RouteObject } from "../snapshot/snapshot.ts";
import type { ParentBinding } from "./binding.ts";
import {
  CONTROLLER_NAME,
  type RouteCondition,
  type RouteParentStatus,
  type StatusParentRef,
} from "./resolution.ts";
import type { RefIssue, RuleIssue } from "./rule-issues.ts";

export type ParentOutcome =
  | { readonly state: "bound"; readonly binding: Extract<ParentBinding, { ok: true }> }
  | { readonly state: "unbound"; readonly binding: Extract<ParentBinding, { ok: false }> }
  | { readonly state: "conflicted"; readonly winner: string; readonly where: string }
  | { readonly state: "unreadable" };

export function statusParentRef(ref: ParentRefSpec): StatusParentRef {
  return {
    group: ref.group,
    kind: ref.kind,
    ...(ref.namespace !== undefined ? { namespace: ref.namespace } : {}),
    name: ref.name,
    ...(ref.port !== undefined ? { port: ref.port } : {}),
    ...(ref.sectionName !== undefined ? { sectionName: ref.sectionName } : {}),
  };
}

export function parentStatus(
  route: RouteObject,
  ref: ParentRefSpec,
  outcome: ParentOutcome,
  ruleIssues: readonly RuleIssue[],
  refIssues: readonly RefIssue[],
): RouteParentStatus {
  const condition = (
    type: RouteCondition["type"],
    ok: boolean,
    reason: string,
    message: string,
  ): RouteCondition => ({
    type,
    status: ok ? "True" : "False",
    reason,
    message,
    observedGeneration: route.generation,
  });
  const conditions: RouteCondition[] = [acceptedCondition(route, outcome, ruleIssues, condition)];

  if (refIssues.length === 0) {
    conditions.push(condition("ResolvedRefs", true, "ResolvedRefs", "All references resolved"));
  } else {
    conditions.push(
      condition("ResolvedRefs", false, refIssues[0]!.reason, refIssues.map((i) => i.message).join("; ")),
    );
  }
  if (ruleIssues.length > 0) {
    const rules = [...new Set(ruleIssues.map((i) => i.ruleIndex))].sort((a, b) => a - b);
    conditions.push({
      type: "PartiallyInvalid",
      status: "True",
      reason: ruleIssues[0]!.reason,
      message: `Rule${rules.length > 1 ? "s" : ""} ${rules.join(", ")} answer${rules.length > 1 ? "" : "s"} ${route.kind === "GRPCRoute" ? "gRPC UNAVAILABLE" : "HTTP 500"} until fixed: ${ruleIssues
        .map((i) => `${i.field}: ${i.message}`)
        .join("; ")}`,
      observedGeneration: route.generation,
    });
  }
  return { parentRef: statusParentRef(ref), controllerName: CONTROLLER_NAME, conditions };
}

function acceptedCondition(
  route: RouteObject,
  outcome: ParentOutcome,
  ruleIssues: readonly RuleIssue[],
  condition: (type: RouteCondition["type"], ok: boolean, reason: string, message: string) => RouteCondition,
): RouteCondition {
  switch (outcome.state) {
    case "unreadable":
      return condition(
        "Accepted",
        false,
        "UnsupportedValue",
        `The route cannot be read: ${route.problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`,
      );
    case "unbound":
      return condition("Accepted", false, outcome.binding.reason, outcome.binding.message);
    case "conflicted":
      return condition(
        "Accepted",
        false,
        "Conflicted",
        `GRPCRoute ${outcome.winner} is attached to ${outcome.where} for the same clients and wins over HTTPRoutes; attach this HTTPRoute to another port or remove one of the two`,
      );
    case "bound": {
      const b = outcome.binding;
      const ports = b.ports.map((p) => (p.name ? `${p.port} (${p.name})` : `${p.port}`)).join(", ");
      const who =
        b.clientGroup === "*"
          ? "a producer route for every client"
          : `a consumer route for clients in namespace ${b.clientGroup}`;
      const parts = [
        `Bound to Service ${b.service.namespace}/${b.service.name} port${b.ports.length > 1 ? "s" : ""} ${ports} as ${who}`,
      ];
      if (b.skipped.length > 0) parts.push(`Skipped ${b.skipped.join("; ")}`);
      parts.push(...route.notes);
      if (ruleIssues.length > 0) parts.push("Some rules are invalid, see PartiallyInvalid");
      return condition("Accepted", true, "Accepted", `${parts.join(". ")}.`);
    }
  }
}
