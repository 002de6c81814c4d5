// Gives each node's table a version that changes exactly when the table's
// content changes. Compile is versionless; this is where versions are made.
//
// Contract with the caller: a node's table is passed again as the *same
// object* as long as its content is unchanged, and as a new object when it
// changed. RoutingState guarantees exactly that (property-tested), which makes
// change detection a pointer comparison; no table is encoded or hashed on the
// way. The content digest is computed when someone asks for it (admin
// endpoint), from the table's shared parts (table-bytes.ts).
import type { NodeTable } from "@trellis/api";
import { tableDigest } from "./table-bytes.ts";

export interface VersionedTable {
  /** The table with its version set. */
  readonly table: NodeTable;
  /** Content digest of the table without its version (computed on first use). */
  readonly digest: string;
}

class Entry implements VersionedTable {
  readonly source: NodeTable;
  readonly table: NodeTable;
  #digest: string | undefined;

  constructor(source: NodeTable, table: NodeTable) {
    this.source = source;
    this.table = table;
  }

  get digest(): string {
    this.#digest ??= tableDigest(this.source);
    return this.#digest;
  }
}

export class VersionedTables {
  readonly epoch: number;
  #counter = 0;
  #byNode = new Map<string, Entry>();

  /** The epoch makes versions of a restarted controller distinguishable (numbers restart). */
  constructor(epoch: number) {
    this.epoch = epoch;
  }

  /** Stores the new tables; returns the nodes whose table changed (new version) and the nodes that are gone. */
  update(tables: ReadonlyMap<string, NodeTable>): { changed: string[]; removed: string[] } {
    const changed: string[] = [];
    for (const [node, table] of tables) {
      if (this.#byNode.get(node)?.source === table) continue;
      this.#counter++;
      this.#byNode.set(
        node,
        new Entry(table, { ...table, version: { epoch: this.epoch, number: this.#counter } }),
      );
      changed.push(node);
    }
    const removed = [...this.#byNode.keys()].filter((n) => !tables.has(n));
    for (const n of removed) this.#byNode.delete(n);
    return { changed, removed };
  }

  get(node: string): VersionedTable | undefined {
    return this.#byNode.get(node);
  }

  nodes(): string[] {
    return [...this.#byNode.keys()].sort();
  }
}
