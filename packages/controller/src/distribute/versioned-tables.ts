// Gives each node's table a version that changes exactly when the table's
// content changes. Compile is versionless; this is where versions are made.
//
// A table passed again as the same object is unchanged (RoutingState replaces
// a node's table object only when its content changed), so most nodes cost a
// comparison. Any other table is compared by content digest, which
// table-bytes.ts builds from the table's shared parts.
import type { NodeTable } from "@trellis/api";
import { tableDigest } from "./table-bytes.ts";

export interface VersionedTable {
  /** The table with its version set. */
  readonly table: NodeTable;
  /** Content digest of the table without its version. */
  readonly digest: string;
}

interface Entry extends VersionedTable {
  /** The unversioned table this version was made from. */
  source: NodeTable;
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
      const previous = this.#byNode.get(node);
      if (previous?.source === table) continue;
      const digest = tableDigest(table);
      if (previous?.digest === digest) {
        previous.source = table;
        continue;
      }
      this.#counter++;
      this.#byNode.set(node, {
        source: table,
        digest,
        table: { ...table, version: { epoch: this.epoch, number: this.#counter } },
      });
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
