// Starts the controller's agent channel: CA from its Secret (created on first
// start), a server certificate for the names agents dial, the gRPC server with
// the AgentStream service, and TokenReview-backed authentication.
// serveAgentChannel is the same server without the Kubernetes parts (CA given,
// authentication injected), for benchmarks and tests of the channel itself.
import * as grpc from "@grpc/grpc-js";
import type { KubeConfig } from "@kubernetes/client-node";
import type { NodeTable, TableVersion } from "@trellis/api";
import type { Logger } from "pino";
import { makeAgentAuthenticator } from "../kube/agent-authenticator.ts";
import { loadOrCreateCA, publishCABundle } from "../kube/ca-secret.ts";
import { AgentRegistry } from "./agent-registry.ts";
import {
  AGENT_CHANNEL_OPTIONS,
  AGENT_STREAM_SERVICE,
  AgentStreamHub,
  type AuthenticateAgent,
} from "./agent-stream-hub.ts";
import { BackendStatsWindow } from "./backend-stats-window.ts";
import { issueServerCert, type PemPair } from "./channel-pki.ts";

interface ChannelCommonOptions {
  log: Logger;
  /** host:port to serve agents on. */
  address: string;
  /** Names and IPs agents may dial; all go into the server certificate. */
  serverNames: readonly string[];
  currentTable: (node: string) => NodeTable | undefined;
  onNack?: (node: string, version: TableVersion, reason: string) => void;
  onAck?: (node: string, version: TableVersion) => void;
  statsWindowMs?: number;
  /** Send every version as a full table, never as a delta (for comparison in benchmarks). */
  fullTables?: boolean;
}

export interface AgentChannelOptions extends ChannelCommonOptions {
  kc: KubeConfig;
  namespace: string;
  caSecret: string;
  caBundleConfigMap: string;
  agentServiceAccounts: readonly string[];
  /** Replaces TokenReview (tests of the channel itself). */
  authenticate?: AuthenticateAgent;
}

export interface AgentChannelServerOptions extends ChannelCommonOptions {
  /** The CA that signs the server certificate (agents pin it). */
  ca: PemPair;
  authenticate: AuthenticateAgent;
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
  return serveAgentChannel({
    ...o,
    ca,
    authenticate:
      o.authenticate ?? makeAgentAuthenticator(o.kc, { agentServiceAccounts: o.agentServiceAccounts }),
  });
}

/** The agent channel's gRPC server with a given CA and authentication; no Kubernetes API involved. */
export async function serveAgentChannel(o: AgentChannelServerOptions): Promise<AgentChannel> {
  const cert = await issueServerCert(o.ca, {
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
    authenticate: o.authenticate,
    ...(o.onNack ? { onNack: o.onNack } : {}),
    ...(o.onAck ? { onAck: o.onAck } : {}),
    ...(o.fullTables ? { fullTables: true } : {}),
  });
  const server = new grpc.Server(AGENT_CHANNEL_OPTIONS);
  server.addService(AGENT_STREAM_SERVICE, hub.service());
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
    caPem: o.ca.certPem,
    stop: async () => {
      // Agents reconnect (to another replica or to this one restarted); no need to drain.
      server.forceShutdown();
    },
  };
}
