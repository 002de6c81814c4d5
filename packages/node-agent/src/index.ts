// Public surface of the node agent.
export { startAdminServer } from "./admin.ts";
export { Agent, type AgentOptions, type ApplyResult, type EndpointInfo, type PortMapEntry } from "./agent.ts";
export type { BreakerSettings } from "./endpoints/breaker.ts";
export { AgentMetrics } from "./metrics.ts";
export { TableError } from "./table/compile.ts";
export { type ControllerSourceOptions, ControllerTableSource } from "./table/controller-source.ts";
export { decodeTable, FileTableSource, readTableFile, type TableSource } from "./table/source.ts";
