// Who is on the other end of an agent stream: the bearer token is a projected
// ServiceAccount token with audience "trellis", checked by the apiserver
// (TokenReview). The token is bound to the agent's pod; the pod says which
// node the agent runs on, so an agent can only ever get its own node's table.
import { AuthenticationV1Api, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { AgentIdentity, AuthenticateAgent } from "../distribute/agent-stream-hub.ts";

export const AGENT_TOKEN_AUDIENCE = "trellis";
const POD_NAME = "authentication.kubernetes.io/pod-name";
const NODE_NAME = "authentication.kubernetes.io/node-name";

export interface AgentAuthOptions {
  /** ServiceAccounts agents run as, "namespace/name". */
  agentServiceAccounts: readonly string[];
  /** How long a successful review is reused for the same token. */
  cacheMs?: number;
}

export function makeAgentAuthenticator(kc: KubeConfig, opts: AgentAuthOptions): AuthenticateAgent {
  const authn = kc.makeApiClient(AuthenticationV1Api);
  const core = kc.makeApiClient(CoreV1Api);
  const allowed = new Set(
    opts.agentServiceAccounts.map((sa) => `system:serviceaccount:${sa.replace("/", ":")}`),
  );
  const cache = new Map<string, { identity: AgentIdentity; until: number }>();

  return async (token) => {
    const hit = cache.get(token);
    if (hit && hit.until > Date.now()) return hit.identity;
    const review = await authn.createTokenReview({
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, audiences: [AGENT_TOKEN_AUDIENCE] },
      },
    });
    const status = review.status;
    if (!status?.authenticated) {
      throw new Error(
        `the apiserver did not accept the token for audience ${AGENT_TOKEN_AUDIENCE}: ${status?.error ?? "not authenticated"}`,
      );
    }
    if (!status.audiences?.includes(AGENT_TOKEN_AUDIENCE)) {
      throw new Error(`token audience is not ${AGENT_TOKEN_AUDIENCE}`);
    }
    const username = status.user?.username ?? "";
    if (!allowed.has(username)) {
      throw new Error(
        `${username || "this identity"} is not an agent ServiceAccount (${[...allowed].join(", ")})`,
      );
    }
    const extra = status.user?.extra ?? {};
    const podName = extra[POD_NAME]?.[0];
    if (!podName)
      throw new Error("the token is not bound to a pod: use a projected serviceAccountToken volume");
    const namespace = username.split(":")[2] ?? "";
    // Newer apiservers put the node in the token; otherwise ask the pod.
    let node = extra[NODE_NAME]?.[0];
    if (!node) {
      const pod = await core.readNamespacedPod({ name: podName, namespace });
      node = pod.spec?.nodeName;
    }
    if (!node) throw new Error(`agent pod ${namespace}/${podName} is not bound to a node`);
    const identity = { node, pod: `${namespace}/${podName}` };
    cache.set(token, { identity, until: Date.now() + (opts.cacheMs ?? 60_000) });
    return identity;
  };
}
