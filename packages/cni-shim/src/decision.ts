// Whether a pod may start: the agent's answer when there is one, else the
// captured-namespaces file (fail closed only for captured namespaces, so a
// down agent never holds back pods that Trellis does not touch).

import type { AgentAnswer } from "./agent-client.ts";
import type { CapturedNamespaces } from "./captured-namespaces.ts";
import { ErrorCode } from "./cni-result.ts";
import type { ShimSettings } from "./net-conf.ts";

export type Verdict =
  | { kind: "pass"; captured: boolean | undefined; note?: string }
  | { kind: "fail"; code: number; msg: string; details?: string };

export interface VerdictInput {
  agent: AgentAnswer;
  namespaces: CapturedNamespaces;
  podNamespace: string;
  podName: string;
  settings: Pick<ShimSettings, "socketPath" | "capturedNamespacesFile">;
}

export function isListedCaptured(namespaces: CapturedNamespaces, podNamespace: string): boolean {
  return namespaces.kind === "listed" && namespaces.namespaces.has(podNamespace);
}

/**
 * Pods of captured namespaces wait as long as programming capture may take;
 * the others wait only briefly, since the agent has nothing to program for
 * them and they start uncaptured either way.
 */
export function agentWaitMs(
  settings: Pick<ShimSettings, "timeoutSeconds" | "uncapturedTimeoutSeconds">,
  namespaces: CapturedNamespaces,
  podNamespace: string,
): number {
  const s = isListedCaptured(namespaces, podNamespace)
    ? settings.timeoutSeconds
    : Math.min(settings.timeoutSeconds, settings.uncapturedTimeoutSeconds);
  return Math.round(s * 1000);
}

/**
 * A file we cannot read counts as absent (pods start): the agent writes it
 * atomically, so a broken file was written by something else, and failing
 * closed on it would stop every pod on the node while the agent is away.
 */
export function verdict(input: VerdictInput): Verdict {
  const { agent, namespaces, podNamespace, podName, settings } = input;
  const pod = `${podNamespace}/${podName}`;
  switch (agent.kind) {
    case "done":
      return { kind: "pass", captured: agent.captured };
    case "refused":
      return {
        kind: "fail",
        code: ErrorCode.agentRefused,
        msg: `Trellis agent refused pod ${pod}: ${agent.message}`,
        details: `HTTP ${agent.status} from ${settings.socketPath}`,
      };
    case "unavailable":
      if (isListedCaptured(namespaces, podNamespace))
        return {
          kind: "fail",
          code: ErrorCode.tryAgainLater,
          msg:
            `Trellis agent at ${settings.socketPath} is not reachable and namespace ${podNamespace} is captured: ` +
            `pod ${pod} cannot start uncaptured; the runtime will retry the sandbox`,
          details: `${agent.reason}; captured namespaces from ${settings.capturedNamespacesFile}`,
        };
      return {
        kind: "pass",
        captured: false,
        note:
          namespaces.kind === "unusable"
            ? `agent unavailable (${agent.reason}) and ${settings.capturedNamespacesFile} unusable (${namespaces.reason}): treated as absent, pod starts uncaptured`
            : `agent unavailable (${agent.reason}); namespace ${podNamespace} not listed as captured (${namespaces.kind}): pod starts uncaptured`,
      };
  }
}
