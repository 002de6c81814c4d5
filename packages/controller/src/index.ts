// Public surface of the controller package (the binaries are src/main.ts and src/cli/trellis.ts).
export { computeTables } from "./compute-tables.ts";
export {
  type AgentChannel,
  type AgentChannelServerOptions,
  serveAgentChannel,
} from "./distribute/agent-channel.ts";
export { AgentRegistry, type AgentState, sameVersion } from "./distribute/agent-registry.ts";
export {
  AGENT_CHANNEL_OPTIONS,
  AGENT_STREAM_SERVICE,
  type AgentIdentity,
  AgentStreamHub,
  type AuthenticateAgent,
} from "./distribute/agent-stream-hub.ts";
export {
  type BackendStatsReport,
  BackendStatsWindow,
  backendStatsReport,
} from "./distribute/backend-stats-window.ts";
export { createCA, issueServerCert, type PemPair } from "./distribute/channel-pki.ts";
