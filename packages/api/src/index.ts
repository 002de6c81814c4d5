// The public surface of the contract: generated message types and codecs for
// the NodeTable and the agent protocol, and the grpc-js service definition.
export * from "./gen/trellis/v1/agent.ts";
export * from "./gen/trellis/v1/node_table.ts";
export { applyTableDelta, TableDeltaError, tableDelta } from "./table-delta.ts";
