// TableDelta (agent.proto): a table version as edits to the previous one on
// the same stream. Both ends live here so they cannot drift: the controller
// makes deltas with tableDelta, the agent rebuilds the table with
// applyTableDelta, and applyTableDelta(base, tableDelta(base, next)) is
// exactly `next` (same lists in the same order), whatever the tables hold.
//
// Edits are found by object identity: the controller's tables share their
// parts (Service, Backend, LocalPod messages are immutable and reused across
// versions and nodes), so an unchanged part is the same object in both
// versions, and a run of unchanged parts becomes one Copy. Tables whose parts
// are not shared still give correct deltas, only larger ones.
import type { BackendEdit, Copy, LocalPodEdit, ServiceEdit, TableDelta } from "./gen/trellis/v1/agent.ts";
import type { Backend, LocalPod, NodeTable, Service } from "./gen/trellis/v1/node_table.ts";

export class TableDeltaError extends Error {
  override name = "TableDeltaError";
}

type Edit<T> = { $case: "copy"; copy: Copy } | { $case: "insert"; insert: T };

/** Index of each part in a list, cached per list (lists are immutable and shared between tables). */
const indexes = new WeakMap<readonly object[], Map<object, number>>();
/** Edits from one list to another, cached per pair (many nodes share both lists). */
const editCache = new WeakMap<readonly object[], WeakMap<readonly object[], readonly Edit<object>[]>>();

function indexOf(list: readonly object[]): Map<object, number> {
  let index = indexes.get(list);
  if (!index) {
    index = new Map();
    for (let i = 0; i < list.length; i++) if (!index.has(list[i]!)) index.set(list[i]!, i);
    indexes.set(list, index);
  }
  return index;
}

/** How far past the expected position a part is looked for before the index is consulted. */
const LOOKAHEAD = 4;

function edits<T extends object>(base: readonly T[], next: readonly T[]): Edit<T>[] {
  let byNext = editCache.get(base);
  const cached = byNext?.get(next);
  if (cached) return cached as Edit<T>[];
  // Versions mostly keep their lists' order and replace, add or drop a few
  // parts: look for each part where the previous run ends (or a little
  // further). A part not found there is inserted; only a longer stretch of
  // misses (parts moved) makes it worth indexing the whole base list.
  // Inserting a part the base holds elsewhere is correct, just larger.
  let index = indexes.get(base);
  const out: Edit<T>[] = [];
  let run: Copy | null = null;
  let expected = 0;
  let misses = 0;
  for (const item of next) {
    let at = -1;
    for (let k = expected; k < Math.min(base.length, expected + LOOKAHEAD + 1); k++) {
      if (base[k] === item) {
        at = k;
        break;
      }
    }
    if (at < 0 && (index !== undefined || misses >= LOOKAHEAD)) {
      index ??= indexOf(base);
      at = index.get(item) ?? -1;
    }
    if (at < 0) {
      misses++;
      run = null;
      out.push({ $case: "insert", insert: item });
      continue;
    }
    misses = 0;
    if (run !== null && run.from + run.count === at) run.count++;
    else {
      run = { from: at, count: 1 };
      out.push({ $case: "copy", copy: run });
    }
    expected = at + 1;
  }
  if (!byNext) {
    byNext = new WeakMap();
    editCache.set(base, byNext);
  }
  byNext.set(next, out);
  return out;
}

function rebuild<T>(
  base: readonly T[],
  list: readonly ({ edit?: Edit<T> | undefined } | undefined)[],
  what: string,
): T[] {
  const out: T[] = [];
  for (const e of list) {
    const edit = e?.edit;
    if (edit?.$case === "insert") out.push(edit.insert);
    else if (edit?.$case === "copy") {
      const { from, count } = edit.copy;
      if (from + count > base.length)
        throw new TableDeltaError(
          `${what}: copy of ${count} from ${from} past the base list of ${base.length}`,
        );
      for (let i = from; i < from + count; i++) out.push(base[i]!);
    } else throw new TableDeltaError(`${what}: empty edit`);
  }
  return out;
}

/** The delta that turns `base` (what the agent holds) into `next`. Both must be versioned. */
export function tableDelta(base: NodeTable, next: NodeTable): TableDelta {
  return {
    base: base.version,
    version: next.version,
    settings: next.settings,
    services: edits<Service>(base.services, next.services).map((edit): ServiceEdit => ({ edit })),
    backends: edits<Backend>(base.backends, next.backends).map((edit): BackendEdit => ({ edit })),
    localPods: edits<LocalPod>(base.localPods, next.localPods).map((edit): LocalPodEdit => ({ edit })),
    capturedNamespaces: sameStrings(base.capturedNamespaces, next.capturedNamespaces)
      ? undefined
      : { names: next.capturedNamespaces },
  };
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

/** The table `delta` describes, built on `base`; throws TableDeltaError when `base` is not the delta's base. */
export function applyTableDelta(base: NodeTable, delta: TableDelta): NodeTable {
  const b = base.version;
  const want = delta.base;
  if (!b || !want || b.epoch !== want.epoch || b.number !== want.number)
    throw new TableDeltaError(
      `delta for base ${want ? `${want.epoch}.${want.number}` : "-"}, but the last table received is ${b ? `${b.epoch}.${b.number}` : "-"}`,
    );
  return {
    version: delta.version,
    node: base.node,
    settings: delta.settings,
    services: rebuild(base.services, delta.services, "services"),
    backends: rebuild(base.backends, delta.backends, "backends"),
    localPods: rebuild(base.localPods, delta.localPods, "local pods"),
    capturedNamespaces: delta.capturedNamespaces ? delta.capturedNamespaces.names : base.capturedNamespaces,
  };
}
