// The whole pure core in one call: watched objects → snapshot → resolution
// (routes and statuses) → one NodeTable per node. This is the from-scratch
// reference; the controller runs RoutingState, which must agree with it.
import type { NodeTable } from "@trellis/api";
import { type CompileOptions, compileNodeTables } from "./compile/compile-node-tables.ts";
import type { Resolution } from "./resolve/resolution.ts";
import { resolveRoutes } from "./resolve/resolve-routes.ts";
import { buildSnapshot } from "./snapshot/build-snapshot.ts";
import type { Snapshot } from "./snapshot/snapshot.ts";

export interface ComputedTables {
  readonly snapshot: Snapshot;
  readonly resolution: Resolution;
  readonly tables: ReadonlyMap<string, NodeTable>;
}

export function computeTables(objects: readonly unknown[], options: CompileOptions = {}): ComputedTables {
  const snapshot = buildSnapshot(objects);
  const resolution = resolveRoutes(snapshot);
  return { snapshot, resolution, tables: compileNodeTables(resolution, snapshot, options) };
}
