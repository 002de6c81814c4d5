// Gives each node's table a version that changes exactly when the table's
// content changes. Pure bookkeeping: compile is versionless, so the bytes of
// a table without its version decide whether a node gets a new version.
import { createHash } from "node:crypto";
import { NodeTable } from "@trellis/api";

export interface VersionedTable {
  readonly table: NodeTable;
  readonly digest: string;
}

export class VersionedTables {
  readonly epoch: number;
  #counter = 0;
  #byNode = new Map<string, VersionedTable>();

  /** The epoch makes versions of a restarted controller distinguishable (numbers restart). */
  constructor(epoch: number) {
    this.epoch = epoch;
  }

  /** Stores the new tables; returns the nodes whose table changed (new version), removed nodes included. */
  update(tables: ReadonlyMap<string, NodeTable>): { changed: string[]; removed: string[] } {
    const changed: string[] = [];
    for (const [node, table] of tables) {
      const unversioned = NodeTable.encode({ ...table, version: undefined }).finish();
      const digest = createHash("sha256").update(unversioned).digest("hex").slice(0, 16);
      if (this.#byNode.get(node)?.digest === digest) continue;
      this.#counter++;
      this.#byNode.set(node, {
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
