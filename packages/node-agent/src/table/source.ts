// Where tables come from. The agent applies whatever a TableSource delivers;
// the file source serves tests and debugging, the controller stream (a later
// issue) implements the same interface.

import { createHash } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { NodeTable } from "@trellis/api";
import type { Logger } from "pino";

export interface TableSource {
  /** Starts delivering tables to `sink`; resolves once the first table was delivered (or failed). */
  start(sink: (table: NodeTable) => Promise<unknown>): Promise<void>;
  stop(): Promise<void>;
}

/** A NodeTable from bytes: the JSON form (NodeTable.fromJSON) when it starts with "{", else the binary form. */
export function decodeTable(bytes: Uint8Array): NodeTable {
  let i = 0;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x0a || bytes[i] === 0x0d || bytes[i] === 0x09)
  )
    i++;
  if (bytes[i] === 0x7b) {
    const json: unknown = JSON.parse(Buffer.from(bytes).toString("utf8"));
    return NodeTable.fromJSON(json);
  }
  return NodeTable.decode(bytes);
}

export async function readTableFile(path: string): Promise<NodeTable> {
  return decodeTable(await readFile(path));
}

export interface FileTableSourceOptions {
  path: string;
  log: Logger;
  /** Reload when the file changes (in addition to SIGHUP). */
  watch?: boolean;
  /** Reload on SIGHUP. */
  sighup?: boolean;
}

/** Reads a table file at start, on SIGHUP and when the file changes; identical contents are not re-applied. */
export class FileTableSource implements TableSource {
  readonly #opts: FileTableSourceOptions;
  #sink: ((table: NodeTable) => Promise<unknown>) | null = null;
  #watcher: FSWatcher | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #lastDigest = "";
  #loading: Promise<void> = Promise.resolve();
  readonly #onHup = (): void => {
    this.#opts.log.info({ path: this.#opts.path }, "SIGHUP: reloading table file");
    this.reload(true);
  };

  constructor(opts: FileTableSourceOptions) {
    this.#opts = opts;
  }

  async start(sink: (table: NodeTable) => Promise<unknown>): Promise<void> {
    this.#sink = sink;
    if (this.#opts.sighup !== false) process.on("SIGHUP", this.#onHup);
    if (this.#opts.watch !== false) {
      // Watch the directory: editors and `mv` replace the file, which ends a watch on the file itself.
      const name = basename(this.#opts.path);
      this.#watcher = watch(dirname(this.#opts.path), (_event, file) => {
        if (file !== null && file !== name) return;
        if (this.#debounce !== null) clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => this.reload(false), 50);
      });
      this.#watcher.on("error", (err) => this.#opts.log.warn({ err }, "table file watch failed"));
    }
    this.reload(false);
    await this.#loading;
  }

  /** Loads the file and hands the table to the sink; `force` re-applies identical contents. */
  reload(force: boolean): Promise<void> {
    this.#loading = this.#loading.then(() => this.#load(force));
    return this.#loading;
  }

  async #load(force: boolean): Promise<void> {
    const sink = this.#sink;
    if (sink === null) return;
    const path = this.#opts.path;
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      this.#opts.log.warn({ err, path }, "cannot read table file");
      return;
    }
    const digest = createHash("sha256").update(bytes).digest("hex");
    if (!force && digest === this.#lastDigest) return;
    let table: NodeTable;
    try {
      table = decodeTable(bytes);
    } catch (err) {
      this.#opts.log.warn({ err, path }, "cannot decode table file");
      return;
    }
    try {
      await sink(table);
      this.#lastDigest = digest;
    } catch {
      // The agent logged why and keeps its last good table.
    }
  }

  async stop(): Promise<void> {
    process.off("SIGHUP", this.#onHup);
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#debounce !== null) clearTimeout(this.#debounce);
    this.#sink = null;
    await this.#loading;
  }
}
