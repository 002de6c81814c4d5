// Starts the controller's agent channel: CA from its Secret (created on first
// start), a server certificate for the names agents dial, the gRPC server with
// the AgentStream service, and TokenReview-backed authentication.
import * as grpc from "@grpc/grpc-js";
import type { KubeConfig } from "@kubernetes/client-node";
import { AgentStreamService, type NodeTable, type TableVersion } from "@trellis/api";
import type { Logger } from "pino";
import { makeAgentAuthenticator } from "../kube/agent-authenticator.ts";
import { loadOrCreateCA, publishCABundle } from "../kube/ca-secret.ts";
import { AgentRegistry } from "./agent-registry.ts";
import { AGENT_CHANNEL_OPTIONS, AgentStreamHub, type AuthenticateAgent } from "./agent-stream-hub.ts";
import { BackendStatsWindow } from "./backend-stats-window.ts";
import { issueServerCert } from "./channel-pki.ts";

export interface AgentChannelOptions {
  kc: KubeConfig;
  log: Logger;
  /** host:port to serve agents on. */
  address: string;
  namespace: string;
  caSecret: string;
  caBundleConfigMap: string;
  /** Names and IPs agents may dial; all go into the server certificate. */
  serverNames: readonly string[];
  agentServiceAccounts: readonly string[];
  currentTable: (node: string) => NodeTable | undefined;
  onNack?: (node: string, version: TableVersion, reason: string) => void;
  onAck?: (node: string, version: TableVersion) => void;
  /** Replaces TokenReview (tests of the channel itself). */
  authenticate?: AuthenticateAgent;
  statsWindowMs?: number;
}

export interface AgentChannel {
  hub: AgentStreamHub;
  registry: AgentRegistry;
  stats: BackendStatsWindow;
  port: number;
  caPem: string;
  stop(): Promise<void>;
}

const isIP = (s: string) => /^\d+\.\d+\.\d+\.\d+$/.test(s) || s.includes(":");

export async function startAgentChannel(o: AgentChannelOptions): Promise<AgentChannel> {
  const ca = await loadOrCreateCA(o.kc, o.namespace, o.caSecret);
  await publishCABundle(o.kc, o.namespace, o.caBundleConfigMap, ca.certPem);
  const cert = await issueServerCert(ca, {
    dns: o.serverNames.filter((n) => !isIP(n)),
    ips: o.serverNames.filter(isIP),
  });
  const registry = new AgentRegistry();
  const stats = new BackendStatsWindow(o.statsWindowMs ?? 60_000);
  const hub = new AgentStreamHub({
    log: o.log,
    registry,
    stats,
    currentTable: o.currentTable,
    authenticate:
      o.authenticate ?? makeAgentAuthenticator(o.kc, { agentServiceAccounts: o.agentServiceAccounts }),
    ...(o.onNack ? { onNack: o.onNack } : {}),
    ...(o.onAck ? { onAck: o.onAck } : {}),
  });
  const server = new grpc.Server(AGENT_CHANNEL_OPTIONS);
  server.addService(AgentStreamService, hub.service());
  const creds = grpc.ServerCredentials.createSsl(null, [
    { private_key: Buffer.from(cert.keyPem), cert_chain: Buffer.from(cert.certPem) },
  ]);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(o.address, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );
  o.log.info({ address: o.address, port, serverNames: o.serverNames }, "agent channel listening");
  return {
    hub,
    registry,
    stats,
    port,
    caPem: ca.certPem,
    stop: async () => {
      // Agents reconnect (to another replica or to this one restarted); no need to drain.
      server.forceShutdown();
    },
  };
}
